// The analysis commands' command lines (issue 14), shared by the CLI and the editor:
//   <python> -m finetune_lab analyse --base B (--adapter DIR | --model DIR) [--experiment F] --runs-dir R [--name N]
//   <python> -m finetune_lab reduce-intruders RUN_ID --runs-dir R [--lambda L[,L…]] [--top-k K] [--epsilon E]
// and the JSON lines they print ({"run", "dir"} once a run folder exists, {"run", "dir", "status"} when it
// ends). The trainer checks everything again; what is checked here fails before torch is imported.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { validateExperimentAt } from './schemas';
import { trainerModuleCommand, type TrainerCommand } from './trainerLaunch';

export interface AnalyseRequest {
  /** builtin:<size> or hf:<name or folder> (experiment schema's model.base). */
  base: string;
  adapter?: string;
  model?: string;
  experiment?: string;
  runsDir: string;
  name?: string;
}

export interface ReduceRequest {
  runId: string;
  runsDir: string;
  /** Unset: the trainer's default (PEFT's, 0.75). */
  lambdas?: number[];
  topK?: number;
  epsilon?: number;
}

/** Input the command would refuse; the message says what is wrong. */
export class AnalysisInputError extends Error {}

/** The λ sweep offered by the editor and described in the README: from mostly kept to removed. */
export const LAMBDA_SWEEP: readonly number[] = [0.25, 0.5, 0.75, 1];

/** A run id as run folders are named: no separators, no '.' or '..' (never a path outside the runs folder). */
export const isRunId = (id: string): boolean => /^[A-Za-z0-9_.+-]+$/.test(id) && id !== '.' && id !== '..';

/** Why `base` is not a model.base (the experiment schema's own pattern), or undefined. */
export function baseProblem(base: string): string | undefined {
  const v = validateExperimentAt('/properties/model/properties/base');
  if (!v || v(base)) return undefined;
  return `--base ${JSON.stringify(base)}: expected builtin:tiny | builtin:small | builtin:125m | builtin:350m, or hf:<name or local folder>`;
}

/** `0.75` or `0.25,0.5,0.75,1`: each in [0, 1] (PEFT scales an intruder dimension by λ: 1 keeps it, 0 removes it). */
export function parseLambdas(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  const values = parts.map(Number);
  if (!parts.length || values.some((v, i) => !Number.isFinite(v) || !/^[0-9.eE+-]+$/.test(parts[i]))) {
    throw new AnalysisInputError(`--lambda ${text}: expected a number or a comma-separated list (0.25,0.5,0.75,1)`);
  }
  const bad = values.find((v) => v < 0 || v > 1);
  if (bad !== undefined) throw new AnalysisInputError(`--lambda ${text}: each value must be between 0 and 1 (got ${bad})`);
  if (new Set(values).size !== values.length) throw new AnalysisInputError(`--lambda ${text}: a value is repeated`);
  return values;
}

/** The trainer's `analyse` arguments. */
export function analyseArgs(r: AnalyseRequest): string[] {
  if (!!r.adapter === !!r.model) throw new AnalysisInputError('give exactly one of --adapter DIR (a PEFT adapter) or --model DIR (a full checkpoint)');
  const problem = baseProblem(r.base);
  if (problem) throw new AnalysisInputError(problem);
  const abs = (p: string) => path.resolve(p);
  return [
    'analyse', '--base', r.base,
    ...(r.adapter ? ['--adapter', abs(r.adapter)] : ['--model', abs(r.model!)]),
    ...(r.experiment ? ['--experiment', abs(r.experiment)] : []),
    '--runs-dir', abs(r.runsDir),
    ...(r.name ? ['--name', r.name] : []),
  ];
}

/** The trainer's `reduce-intruders` arguments. */
export function reduceArgs(r: ReduceRequest): string[] {
  if (!isRunId(r.runId)) throw new AnalysisInputError(`not a run id: ${JSON.stringify(r.runId)} (letters, digits and _ . + - only; no path)`);
  if (r.topK !== undefined && !(Number.isInteger(r.topK) && r.topK >= 1)) throw new AnalysisInputError(`--top-k ${r.topK}: expected an integer ≥ 1`);
  if (r.epsilon !== undefined && !(r.epsilon > 0 && r.epsilon <= 1)) throw new AnalysisInputError(`--epsilon ${r.epsilon}: expected a number in (0, 1]`);
  return [
    'reduce-intruders', r.runId, '--runs-dir', path.resolve(r.runsDir),
    ...(r.lambdas ? ['--lambda', r.lambdas.join(',')] : []),
    ...(r.topK !== undefined ? ['--top-k', String(r.topK)] : []),
    ...(r.epsilon !== undefined ? ['--epsilon', String(r.epsilon)] : []),
  ];
}

/** `<python> -m finetune_lab <args>` run in `cwd` (every path in the arguments is absolute). */
export function analysisCommand(python: string, trainerDir: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): TrainerCommand {
  return trainerModuleCommand(python, trainerDir, args, cwd, env);
}

export interface AnalysisProgress { run: string; dir: string; status?: 'completed' | 'failed' | 'stopped'; error?: string }

/** A JSON progress line of analyse / reduce-intruders, or undefined for any other line. */
export function parseProgress(line: string): AnalysisProgress | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    if (typeof o.run !== 'string' || typeof o.dir !== 'string') return undefined;
    const status = o.status === 'completed' || o.status === 'failed' || o.status === 'stopped' ? o.status : undefined;
    return { run: o.run, dir: o.dir, ...(status ? { status } : {}), ...(typeof o.error === 'string' ? { error: o.error } : {}) };
  } catch { return undefined; }
}

export interface AnalysisResult {
  code: number | null;
  /** Every run the command made, last state seen. */
  runs: AnalysisProgress[];
  /** The last lines of stderr (the "error: …" line of bad input is the last). */
  stderr: string;
}

/** Runs an analysis command to its end, reporting progress lines and other stdout lines as they come. */
export function runAnalysis(cmd: TrainerCommand, on: { progress?(p: AnalysisProgress): void; line?(l: string): void; signal?: AbortSignal } = {}): Promise<AnalysisResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd.command, cmd.args, { cwd: cmd.cwd, env: cmd.env, stdio: ['ignore', 'pipe', 'pipe'] });
    // Cancel = SIGTERM: the trainer ends the run folder "stopped" (what a Stop does to a training run).
    const abort = () => child.kill('SIGTERM');
    on.signal?.addEventListener('abort', abort);
    const runs = new Map<string, AnalysisProgress>();
    let pending = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) {
        const p = parseProgress(l.trim());
        if (p) { runs.set(p.run, p); on.progress?.(p); } else if (l.trim()) on.line?.(l);
      }
    });
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-20_000); });
    child.once('error', (e) => reject(new Error(`could not run ${cmd.command}: ${e.message}`)));
    child.once('close', (code) => {
      on.signal?.removeEventListener('abort', abort);
      resolve({ code, runs: [...runs.values()], stderr: stderr.trim().split('\n').slice(-15).join('\n') });
    });
  });
}
