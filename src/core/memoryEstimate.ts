// The memory estimate of planned runs (schemas/estimate.schema.json, trainer/finetune_lab/memory.py):
// asking the trainer (`python -m finetune_lab estimate`, one process for all the runs of a file), and the
// words that the CLI, the CodeLens, the Problems panel and Start's confirmation show.
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Diagnostic } from './diagnostics';
import type { LoadedExperiment } from './experiment';
import type { EstimateItem, MemoryEstimate, PlannedRunEstimate } from './generated/estimate';
import { errorsText, validateEstimateItem } from './schemas';
import type { PlannedRun } from './sweep';
import { rangeOf, type PathSeg } from './yamlPositions';

export type { EstimateItem, MemoryEstimate, PlannedRunEstimate };

/** The GPU a run is checked against: doctor's smallest GPU (with its name and the count) or a setting (no name). */
export interface GpuLimit { gib: number; count?: number; name?: string }

export interface EstimateOptions {
  /** The experiment file's folder: a relative `hf:` folder is relative to it. */
  baseDir?: string;
  gpu?: GpuLimit;
  /** Re-estimate what would make a run fit (default true). */
  advice?: boolean;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** The trainer's arguments: `-m finetune_lab estimate --config - ...` (the configs go to stdin). */
export function estimateArgs(opts: EstimateOptions = {}): string[] {
  const args = ['-m', 'finetune_lab', 'estimate', '--config', '-'];
  if (opts.baseDir) args.push('--base-dir', opts.baseDir);
  if (opts.gpu && opts.gpu.gib > 0) {
    args.push('--gpu-gib', String(opts.gpu.gib));
    if (opts.gpu.count) args.push('--gpus', String(opts.gpu.count));
    if (opts.gpu.name) args.push('--gpu-name', opts.gpu.name);
  }
  if (opts.advice === false) args.push('--no-advice');
  return args;
}

/** Parses the trainer's stdout: the last line that is a JSON array, each item checked against the schema. */
export function parseEstimateOutput(stdout: string, expected: number): EstimateItem[] {
  const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('['));
  if (!line) throw new Error('the trainer printed no estimate');
  const items = JSON.parse(line) as unknown[];
  if (!Array.isArray(items) || items.length !== expected) throw new Error(`the trainer answered ${Array.isArray(items) ? items.length : 'no'} estimates for ${expected} runs`);
  const validate = validateEstimateItem();
  for (const item of items) if (!validate(item)) throw new Error(`the trainer's estimate does not match schemas/estimate.schema.json: ${errorsText(validate.errors)}`);
  return items as EstimateItem[];
}

/**
 * Runs `python -m finetune_lab estimate` once for all `configs` (resolved run configs), in a temporary
 * folder (never the workspace: Python puts the cwd first on its path). Rejects with the trainer's last
 * stderr line when it fails.
 */
export function runEstimate(python: string, trainerDir: string, configs: unknown[], opts: EstimateOptions = {}): Promise<EstimateItem[]> {
  const base = opts.env ?? process.env;
  const env = { ...base, PYTHONPATH: base.PYTHONPATH ? `${trainerDir}${path.delimiter}${base.PYTHONPATH}` : trainerDir, PYTHONUNBUFFERED: '1' };
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const child = spawn(python, estimateArgs(opts), { cwd: os.tmpdir(), env, stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 180_000 });
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.once('error', (e) => reject(new Error(`cannot run ${python}: ${e.message}`)));
    child.once('close', (code, signal) => {
      if (code !== 0) {
        const last = err.trim().split('\n').filter((l) => !/^(USDT|ERROR):/.test(l)).pop();
        reject(new Error(`memory estimate failed (${signal ? `killed: ${signal}` : `exit ${code}`}): ${last ?? 'no output'}`));
        return;
      }
      try { resolve(parseEstimateOutput(out, configs.length)); } catch (e) { reject(e); }
    });
    child.stdin.on('error', () => { /* the process ended early: its exit code says why */ });
    child.stdin.end(JSON.stringify(configs));
  });
}

// ---- words ------------------------------------------------------------------------------------

/** GiB for people: one decimal from 0.1 up, two below. */
export const gib = (x: number): string => (x >= 0.095 ? x.toFixed(1) : x.toFixed(2));

const where = (m: MemoryEstimate): string => (m.device === 'cuda' ? 'per GPU' : 'on the CPU');

/** 'weights 2.1 · grads 2.1 · optimizer 4.2 · activations 5.8' */
export function memoryParts(m: MemoryEstimate): string {
  return `weights ${gib(m.weights_gib)} · grads ${gib(m.gradients_gib)} · optimizer ${gib(m.optimizer_gib)} · activations ${gib(m.activations_gib)}`;
}

/** '≈ 14.2 GiB per GPU (weights 2.1 · grads 2.1 · optimizer 4.2 · activations 5.8)' */
export function memorySummary(m: MemoryEstimate): string {
  const devices = m.devices > 1 ? ` × ${m.devices} ${m.device === 'cuda' ? 'GPUs' : 'processes'}` : '';
  return `≈ ${gib(m.total_gib)} GiB ${where(m)}${devices} (${memoryParts(m)})`;
}

/** '74.1 GiB usable of NVIDIA H100 80GB HBM3 (79.1 GiB)' */
export function limitText(m: MemoryEstimate): string {
  if (!m.limit) return 'no limit known';
  const size = m.limit.source === 'setting' ? '' : ` (${gib(m.limit.gib)} GiB)`; // a set limit's name says its size
  return `${gib(m.limit.usable_gib)} GiB usable of ${m.limit.name}${size}`;
}

/** 'Would fit: method: lora (…) → 20.1 GiB; …' or, when nothing fits, the smallest it gets. */
export function adviceText(m: MemoryEstimate, max = 4): string {
  const fitting = m.advice.filter((a) => a.fits);
  const shown = (fitting.length ? fitting : m.advice).slice(0, max);
  if (!shown.length) return '';
  const items = shown.map((a) => `${a.text} → ${gib(a.total_gib)} GiB`).join('; ');
  return fitting.length ? `Would fit: ${items}.` : `Nothing tried fits; smallest: ${items}.`;
}

/** The warning for a run over the limit (diagnostic, CLI, Start's confirmation). */
export function overLimitMessage(m: MemoryEstimate, label?: string): string {
  const what = label ? `Run ${label} needs` : 'This run needs';
  const host = m.limit?.source === 'host' ? ' (no GPU here: the run trains on the CPU and uses host RAM)' : '';
  return `${what} ${memorySummary(m)}, over the ${limitText(m)}${host}. ${adviceText(m)}`.trim();
}

export const isOver = (m: MemoryEstimate | null | undefined): m is MemoryEstimate => !!m && m.fits === false;

/** The planned runs with their estimates: `finetune-lab run --dry-run --json`'s items. */
export function plannedRunEstimates(planned: PlannedRun[], items: EstimateItem[] | Error): PlannedRunEstimate[] {
  return planned.map((p, i) => {
    const item = items instanceof Error ? { error: items.message } : items[i];
    const base: PlannedRunEstimate = { index: i + 1, label: p.label, overrides: p.overrides, config: p.config as unknown as Record<string, unknown>, memory: null };
    return 'memory' in item ? { ...base, memory: item.memory } : { ...base, memory_error: item.error };
  });
}

/** The CodeLens line: one run's summary, or a sweep's range and how many runs are over the limit. */
export function lensTitle(runs: PlannedRunEstimate[]): string {
  const known = runs.filter((r) => r.memory).map((r) => r.memory!);
  if (!known.length) return `$(warning) No memory estimate: ${runs[0]?.memory_error ?? 'unknown error'}`;
  const over = known.filter((m) => m.fits === false);
  const icon = over.length ? '$(warning)' : '$(server)';
  if (runs.length === 1) {
    const m = known[0];
    return `${icon} ${memorySummary(m)}${m.fits === false ? ` — over the ${gib(m.limit!.usable_gib)} GiB usable` : ''}`;
  }
  const totals = known.map((m) => m.total_gib);
  const largest = runs.find((r) => r.memory?.total_gib === Math.max(...totals))!;
  const range = `≈ ${gib(Math.min(...totals))}–${gib(Math.max(...totals))} GiB ${where(largest.memory!)}`;
  const overText = over.length ? ` — ${over.length} of ${runs.length} runs over the ${gib(over[0].limit!.usable_gib)} GiB usable` : '';
  return `${icon} ${range} over ${runs.length} runs (largest: ${largest.label}, ${memoryParts(largest.memory!)})${overText}`;
}

/** A tooltip / detail: every run's line, the limit and what the numbers assume. */
export function estimateDetail(runs: PlannedRunEstimate[]): string {
  const lines = runs.map((r) => `${r.label}: ${r.memory ? memorySummary(r.memory) : `no estimate (${r.memory_error})`}`);
  const m = runs.find((r) => r.memory)?.memory;
  if (m) {
    lines.push(m.limit ? `Checked against ${limitText(m)}.` : 'No GPU here to check against: set finetuneLab.memoryLimitGiB to plan for one.');
    lines.push(`${m.params.trainable.toLocaleString('en-US')} of ${m.params.total.toLocaleString('en-US')} parameters train; ${m.precision}.`);
    for (const n of m.notes) lines.push(n);
  }
  return lines.join('\n');
}

/**
 * Where a memory warning goes: the setting that moves the estimate most. Weights, gradients and
 * optimizer states come from the method (and the precision); activations from the batch and sequence.
 */
export function memoryAnchor(m: MemoryEstimate, sweep: boolean): PathSeg[] {
  if (sweep) return ['sweep'];
  const states = m.weights_gib + m.gradients_gib + m.optimizer_gib;
  return states >= m.activations_gib ? ['method'] : ['train', 'batch_size'];
}

/** Problems for the runs whose estimate is over the limit (and an info when there is none), at their lines. */
export function memoryDiagnostics(loaded: LoadedExperiment, runs: PlannedRunEstimate[]): Diagnostic[] {
  const src = { doc: loaded.doc, lineCounter: loaded.lineCounter, text: loaded.text };
  const sweep = runs.length > 1;
  const out: Diagnostic[] = [];
  const over = runs.filter((r) => isOver(r.memory));
  if (over.length) {
    const first = over[0].memory!;
    const message = sweep
      ? `${over.length} of ${runs.length} runs need more memory than the ${limitText(first)}: ${over.map((r) => `${r.label} ≈ ${gib(r.memory!.total_gib)} GiB`).join(', ')}. ${overLimitMessage(first, over[0].label)}`
      : overLimitMessage(first);
    const anchor = memoryAnchor(first, sweep);
    out.push({ severity: 'warning', message, ...rangeOf(src, anchor, 'key'), path: anchor.join('.'), code: 'memory-over-limit' });
  }
  const failed = runs.find((r) => !r.memory);
  if (failed) {
    out.push({ severity: 'info', message: `No memory estimate: ${failed.memory_error}`, ...rangeOf(src, ['model', 'base']), path: 'model.base', code: 'memory-no-estimate' });
  }
  return out;
}
