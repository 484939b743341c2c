// `finetune-lab demo` (`npm run demo`): the paper reproduction, through the same path as `run`
// (RunStore + trainer). Stages, each timed:
//   1. the base: builtin:small pretrained once on builtin:brown and cached (the trainer's `pretrain`),
//   2. "lora-vs-full" on Python code: examples/demo.finetune.yaml (LoRA r4/16, full at LoRA's LR),
//      demo-r64.finetune.yaml (LoRA r64 at its lower LR) and demo-full.finetune.yaml (full
//      finetuning at its best LR and 10x lower),
//   3. "lr-sweep" on arithmetic: examples/demo-lr.finetune.yaml (LoRA and full finetuning over one grid of learning rates),
//   4. the results tables and which of the paper's findings held, computed from the numbers.
// `--quick` runs the same experiments on builtin:tiny with a handful of steps (a smoke test).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { parseDocument } from 'yaml';
import { readEventsFrom } from '../core/events';
import { RUN_FILES, RunStore } from '../core/runStore';
import { summarizeRun } from '../core/runSummary';
import { trainerCommand } from '../core/trainerLaunch';
import { formatDuration } from '../core/duration';
import { demoFindings, demoTable, lrSweepTable, runFacts, type RunFacts } from './table';

/** The demo's experiment files, in the order they run, and the stage each belongs to. */
export const DEMO_EXPERIMENTS = [
  { file: 'demo.finetune.yaml', stage: 'main' },
  { file: 'demo-r64.finetune.yaml', stage: 'main' },
  { file: 'demo-full.finetune.yaml', stage: 'main' },
  { file: 'demo-lr.finetune.yaml', stage: 'lr' },
] as const;

/** examples/demo.finetune.yaml of this package (next to dist/ or the repo root). */
export function demoExperimentPath(root: string, file = 'demo.finetune.yaml'): string {
  return path.join(root, 'examples', file);
}

/**
 * --quick: the same experiments on builtin:tiny, a few steps, tiny evals, two values per sweep key.
 * Edits through the yaml document model so the comments stay.
 */
export function quickVariant(text: string): string {
  const doc = parseDocument(text);
  doc.setIn(['model', 'base'], 'builtin:tiny');
  doc.setIn(['model', 'pretrain_steps'], QUICK_PRETRAIN_STEPS);
  doc.setIn(['train', 'steps'], 6);
  doc.setIn(['train', 'warmup_steps'], 1);
  doc.setIn(['train', 'batch_size'], 4);
  doc.setIn(['train', 'log_every_steps'], 1);
  doc.setIn(['data', 'seq_len'], Math.min(Number(doc.getIn(['data', 'seq_len']) ?? 64), 96));
  doc.setIn(['evals', 'every_steps'], 3);
  for (const role of ['learning', 'forgetting']) {
    const tasks = doc.getIn(['evals', role]) as { items?: unknown[] } | undefined;
    (tasks?.items ?? []).forEach((_, i) => {
      const type = doc.getIn(['evals', role, i, 'type']);
      // each eval type has its own size key (the schema refuses another type's)
      if (type === 'lm_eval') { doc.setIn(['evals', role, i, 'limit'], 4); doc.setIn(['evals', role, i, 'max_gen_toks'], 8); return; }
      if (type === 'kl_to_base') { doc.setIn(['evals', role, i, 'n'], 4); return; }
      doc.setIn(['evals', role, i, 'max_examples'], 4);
      if (type === 'exact_match') doc.setIn(['evals', role, i, 'max_new_tokens'], 8);
    });
  }
  if (Number(doc.getIn(['spectra', 'every_steps']) ?? 0) > 0) doc.setIn(['spectra', 'every_steps'], 3);
  const sweep = doc.get('sweep') as { items?: { key: unknown }[] } | undefined;
  for (const pair of sweep?.items ?? []) {
    const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
    const values = doc.getIn(['sweep', key]) as { items?: unknown[] } | undefined;
    while (values?.items && values.items.length > 2) values.items.splice(1, 1); // keep the ends of the range
  }
  return doc.toString();
}
export const QUICK_PRETRAIN_STEPS = 30;

/** Copies (or, with quick, rewrites) the demo experiments beside the runs folder; returns their paths. */
export async function writeDemoExperiments(root: string, runsDir: string, quick = false): Promise<string[]> {
  const dir = path.dirname(path.resolve(runsDir));
  await fs.promises.mkdir(dir, { recursive: true });
  const out: string[] = [];
  for (const { file } of DEMO_EXPERIMENTS) {
    const target = path.join(dir, quick ? file.replace('.finetune.yaml', '-quick.finetune.yaml') : file);
    const text = await fs.promises.readFile(demoExperimentPath(root, file), 'utf8');
    await fs.promises.writeFile(target, quick ? quickVariant(text) : text);
    out.push(target);
  }
  return out;
}

/** Where the trainer caches built-in bases (paths.py: $FINETUNE_LAB_CACHE, $XDG_CACHE_HOME/finetune-lab, ~/.cache/finetune-lab). */
export function basesCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const root = env.FINETUNE_LAB_CACHE || (env.XDG_CACHE_HOME ? path.join(env.XDG_CACHE_HOME, 'finetune-lab') : path.join(os.homedir(), '.cache', 'finetune-lab'));
  return path.join(root, 'bases');
}

/**
 * Stage 1: `python -m finetune_lab pretrain --model <base> [--steps N]`, its progress lines relayed
 * at most every `everyMs` (the first and last always). Resolves with the exit code.
 */
export function pretrainBase(python: string, trainerDir: string, base: string, steps: number | undefined, log: (l: string) => void, everyMs = 4000): Promise<number> {
  const cmd = trainerCommand(python, trainerDir, process.cwd());
  const args = ['-m', 'finetune_lab', 'pretrain', '--model', base, ...(steps != null ? ['--steps', String(steps)] : [])];
  const where = basesCacheDir();
  return new Promise((resolve) => {
    const child = spawn(cmd.command, args, { env: cmd.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let last = 0;
    let pending: string | undefined;
    let buf = '';
    const errTail: string[] = [];
    const onLine = (line: string) => {
      const m = /^pretrain \S+ step (\d+)\/(\d+) loss ([\d.]+) \((\d+)s\)/.exec(line);
      if (m) {
        const text = `  pretraining the base once (cached in ${where}): step ${m[1]}/${m[2]}  loss ${Number(m[3]).toFixed(3)}  (${m[4]}s)`;
        if (Date.now() - last >= everyMs || m[1] === m[2]) { log(text); last = Date.now(); pending = undefined; } else pending = text;
      } else if (/^cached /.test(line)) log(`  base found in the cache: ${line.slice(7)}`);
      else if (/^pretrained /.test(line)) { if (pending) log(pending); log(`  base pretrained and cached: ${line.slice(11)}`); }
    };
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      lines.forEach(onLine);
    });
    child.stderr.on('data', (d: Buffer) => { errTail.push(...d.toString().split('\n').filter(Boolean)); errTail.splice(0, Math.max(0, errTail.length - 15)); });
    child.on('error', (e) => { log(`  could not start ${python}: ${e.message}`); resolve(1); });
    child.on('exit', (code) => {
      if (buf) onLine(buf);
      if (code !== 0) log(`  pretraining failed (exit ${code}):\n${errTail.join('\n')}`);
      resolve(code ?? 1);
    });
  });
}

export interface DemoDeps {
  root: string;
  runsDir: string;
  quick: boolean;
  python: string;
  trainerDir: string;
  /** Runs one experiment file like `finetune-lab run` (exit code). */
  runExperiment: (file: string) => Promise<number>;
  log?: (line: string) => void;
  now?: () => number;
}

/** Facts (config, summary, spectra) of every run in runsDir not in `before`, oldest first. */
async function newRuns(runsDir: string, before: Set<string>): Promise<RunFacts[]> {
  const runs = (await new RunStore(runsDir).list()).filter((r) => !before.has(r.id)).reverse();
  return Promise.all(runs.map(async (r) => {
    const { events } = await readEventsFrom(path.join(r.dir, RUN_FILES.events), 0).catch(() => ({ events: [] }));
    return runFacts(r.meta.label ?? r.id, r.id, events, summarizeRun(events));
  }));
}

/** The whole demo; returns the exit code (0 when every run completed). */
export async function runDemo(d: DemoDeps): Promise<number> {
  const log = d.log ?? ((l: string) => console.log(l));
  const now = d.now ?? Date.now;
  const t0 = now();
  const timings: { stage: string; seconds: number }[] = [];
  const stage = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const s = now();
    log(`\n== ${name}`);
    const r = await f();
    const seconds = (now() - s) / 1000;
    timings.push({ stage: name, seconds });
    log(`== ${name}: ${formatDuration(seconds)} (total ${formatDuration((now() - t0) / 1000)})`);
    return r;
  };

  const files = await writeDemoExperiments(d.root, d.runsDir, d.quick);
  log(`demo experiments (edit and rerun with \`finetune-lab run <file>\`):\n${files.map((f) => `  ${f}`).join('\n')}`);
  log(`runs folder: ${d.runsDir}${d.quick ? '  (quick mode: builtin:tiny, a few steps; the numbers mean nothing)' : ''}`);

  const base = d.quick ? 'builtin:tiny' : 'builtin:small';
  const pre = await stage(`1/4 base model: ${base} pretrained on English prose (builtin:brown)`, () =>
    pretrainBase(d.python, d.trainerDir, base, d.quick ? QUICK_PRETRAIN_STEPS : undefined, log));
  if (pre !== 0) return 1;

  const store = new RunStore(d.runsDir);
  const before = new Set((await store.list()).map((r) => r.id));
  let failed = 0;
  const main = await stage('2/4 experiment "lora-vs-full": continued pretraining on Python code (LoRA at several ranks, full finetuning at several learning rates)', async () => {
    for (const [i, f] of files.entries()) {
      if (DEMO_EXPERIMENTS[i].stage !== 'main') continue;
      const code = await d.runExperiment(f);
      if (code === 130) return code;
      if (code !== 0) failed++;
    }
    return 0;
  });
  if (main === 130) return 130;
  const mainRuns = await newRuns(d.runsDir, before);
  const before2 = new Set((await store.list()).map((r) => r.id));
  const lr = await stage('3/4 experiment "lr-sweep": arithmetic word problems, instruction format (LoRA and full finetuning over one grid of learning rates)', async () => {
    const i = DEMO_EXPERIMENTS.findIndex((e) => e.stage === 'lr');
    return d.runExperiment(files[i]);
  });
  if (lr === 130) return 130;
  if (lr !== 0) failed++;
  const lrRuns = await newRuns(d.runsDir, before2);

  await stage('4/4 results', async () => {
    log(`\nlora-vs-full (code = learning, English and KL to the base = forgetting; nats/byte, lower is better; Δ vs step 0, the base):\n${demoTable(mainRuns)}`);
    log(`\nlr-sweep (arithmetic; em = exact match of the final answer, lm-eval's score of the built-in task finetune_lab_arithmetic):\n${lrSweepTable(lrRuns)}`);
    log(`\nthe paper's findings, read from these numbers:\n${demoFindings(mainRuns, lrRuns).map((l) => `  ${l}`).join('\n')}`);
  });
  log(`\ntimings: ${timings.map((t) => `${t.stage.split(':')[0]} ${formatDuration(t.seconds)}`).join(', ')}; total ${formatDuration((now() - t0) / 1000)}`);
  const workspace = path.dirname(path.dirname(path.resolve(d.runsDir)));
  log(`\nopen ${workspace} in VS Code (with Finetune Lab): the Runs view lists these runs in ${path.relative(workspace, d.runsDir) || d.runsDir},`);
  log('and "Finetune Lab: Open Pareto" / "Open Spectra" show the learning-forgetting plot and the ΔW spectra, filled.');
  return failed ? 1 : 0;
}
