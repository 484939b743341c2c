// finetune-lab: the headless command line. Same core as the extension: validate an experiment, expand
// its sweep into runs in a runs folder, start the trainer for each and follow it.
//   finetune-lab run <file> [--runs-dir DIR] [--dry-run [--json]] [--detach] [--memory-limit-gib N] [--no-estimate] [--allow-code-execution]
//   finetune-lab list [--runs-dir DIR]    stop <run-id>    resume <run-id> [--detach] [--allow-code-execution]
//   finetune-lab doctor                    demo [--runs-dir DIR] [--quick]
//   finetune-lab analyse --base B (--adapter DIR | --model DIR) [--experiment F] [--runs-dir DIR] [--name N]
//   finetune-lab reduce-intruders <run-id> [--lambda 0.75|0.25,0.5,0.75,1] [--top-k 10] [--epsilon 0.5]
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { loadExperimentFile } from '../core/experiment';
import { lmEvalCatalog } from '../core/lmEvalCatalog';
import { formatDiagnostic } from '../core/diagnostics';
import { expandSweep } from '../core/sweep';
import { RunStore, RUN_FILES, type StoredRun } from '../core/runStore';
import { readEventsFrom } from '../core/events';
import { cliPythonCandidates, findPython, packageRoot, stopRun, trainerCommand, trainerDir } from '../core/trainerLaunch';
import { isTrainerOf } from '../core/trainerProcess';
import { followRun } from './follow';
import { formatTable, num, scoresCell } from './table';
import { summarizeRun, type RunSummary } from '../core/runSummary';
import { runDemo } from './demo';
import { runOnSlurm, stopOnSlurm } from './slurm';
import { AnalysisUsageError, cmdAnalysis } from './analysis';
import { isOver, memorySummary, overLimitMessage, plannedRunEstimates, runEstimate, type PlannedRunEstimate } from '../core/memoryEstimate';
import type { PlannedRun } from '../core/sweep';

export const USAGE = `usage: finetune-lab <command>
  run <file.finetune.yaml> [--runs-dir DIR] [--dry-run [--json]] [--detach] [--memory-limit-gib N]
                                                                     validate, expand the sweep, estimate memory, train each run
                                                                     (--dry-run: list the runs and their memory estimate, start nothing;
                                                                     --json: as a JSON array, schemas/estimate.schema.json plannedRun)
      [--no-estimate]                                                skip the memory estimate (it starts the trainer's Python once)
      [--allow-code-execution]                                       let lm-eval tasks that run model-generated code (humaneval, mbpp)
                                                                     run, in the trainer's sandbox; without it such a run is refused
  list [--runs-dir DIR]                                              runs with state, step, last loss and eval scores (task version, n)
  stop <run-id> [--runs-dir DIR]                                     stop a run (SIGINT, SIGKILL after 30 s; Slurm: scancel --signal=INT, scancel after 30 s)
  resume <run-id> [--runs-dir DIR] [--detach] [--allow-code-execution]  continue from the newest checkpoint (Slurm: a new job with --resume)
  doctor                                                             the trainer's view of Python, torch, GPUs
  demo [--runs-dir DIR] [--quick]                                    the paper on CPU: LoRA vs full finetuning, an LR sweep, results
                                                                     (--quick: builtin:tiny, a few steps, a smoke test)
  analyse --base <hf:folder-or-name | builtin:size> (--adapter DIR | --model DIR) [--experiment FILE] [--runs-dir DIR] [--name NAME]
                                                                     analyse a finetune made elsewhere (a PEFT LoRA adapter or a full
                                                                     checkpoint): spectra, intruders, evals; one run of kind analysis
  reduce-intruders <run-id> [--lambda 0.75 | 0.25,0.5,0.75,1] [--top-k 10] [--epsilon 0.5] [--runs-dir DIR]
                                                                     PEFT's reduce_intruder_dimension on the run's LoRA adapter; one
                                                                     analysis run per lambda (a list: a sweep, a path on the Pareto plot)
Python: $FINETUNE_LAB_PYTHON, else <repo>/.venv/bin/python, else python3. Runs dir default: .finetune/runs
Memory: each run's estimate is checked against this machine's smallest GPU (or its RAM for a CPU run), or against
--memory-limit-gib N GiB per GPU (planning for another machine); a run over it is warned about, with what would fit.
launcher.kind slurm: run submits each run with sbatch (its script: <run>/slurm.sbatch) and follows the jobs; --detach
submits and returns; Ctrl-C stops following, the jobs stay queued or running on the cluster.`;

const DEFAULT_RUNS_DIR = path.join('.finetune', 'runs');

let picked: Promise<string | undefined> | undefined;
/** The trainer's Python, probed once per process (the demo runs several experiments). */
function pickPython(): Promise<string | undefined> {
  picked ??= findPython(cliPythonCandidates(packageRoot())).then((found) => {
    if (!found.python) { console.error(found.message); picked = undefined; }
    return found.python;
  });
  return picked;
}

/** The trainer's environment: FINETUNE_LAB_ALLOW_CODE_EXECUTION=1 only with --allow-code-execution (removed otherwise). */
export function trainerEnv(allowCode: boolean, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out = { ...env };
  if (allowCode) out.FINETUNE_LAB_ALLOW_CODE_EXECUTION = '1';
  else delete out.FINETUNE_LAB_ALLOW_CODE_EXECUTION;
  return out;
}

/** Runs the given runs one after another in the foreground; exit code 0 when all completed. */
async function runSequence(store: RunStore, ids: string[], opts: { resume?: boolean; allowCode?: boolean } = {}): Promise<number> {
  const python = await pickPython();
  if (!python) return 1;
  const tdir = trainerDir();
  let failed = 0;
  for (const [i, id] of ids.entries()) {
    const { outcome, interrupted } = await followRun(store, id, { python, trainerDir: tdir, resume: opts.resume, env: trainerEnv(!!opts.allowCode), prefix: ids.length > 1 ? `[${i + 1}/${ids.length}] ` : '' });
    if (interrupted) {
      if (i + 1 < ids.length) console.log(`not started: ${ids.slice(i + 1).join(', ')} (still queued)`);
      return 130;
    }
    if (outcome !== 'completed') failed++;
  }
  return failed ? 1 : 0;
}

/** --detach: a detached copy of this CLI runs the queue, so the shell (and the terminal) can go. */
function detachQueue(runsDir: string, ids: string[], resume: boolean, allowCode = false): void {
  const log = path.join(runsDir, `.queue-${Date.now()}.log`);
  const fd = fs.openSync(log, 'a');
  const child = spawn(process.execPath, [__filename, '_queue', '--runs-dir', runsDir, ...(resume ? ['--resume'] : []), ...(allowCode ? ['--allow-code-execution'] : []), ...ids], { detached: true, stdio: ['ignore', fd, fd] });
  child.unref();
  fs.closeSync(fd);
  console.log(`started in the background (pid ${child.pid}); progress: ${log}; follow with: finetune-lab list --runs-dir ${runsDir}`);
}

/**
 * The memory estimate of every planned run, from one trainer process. Never throws: without a Python
 * or an estimate each run carries the reason (memory null, memory_error).
 */
async function estimatePlanned(planned: PlannedRun[], file: string, limitGib?: number): Promise<PlannedRunEstimate[]> {
  const python = await pickPython();
  if (!python) return plannedRunEstimates(planned, new Error('no Python with torch (see above)'));
  try {
    const items = await runEstimate(python, trainerDir(), planned.map((p) => p.config), { baseDir: path.dirname(file), gpu: limitGib ? { gib: limitGib } : undefined });
    return plannedRunEstimates(planned, items);
  } catch (e) {
    return plannedRunEstimates(planned, e as Error);
  }
}

/** The warning for each run over the limit (stderr), as the editor shows it. */
function warnOverLimit(runs: PlannedRunEstimate[]): void {
  for (const r of runs) if (isOver(r.memory)) console.error(`warning: ${overLimitMessage(r.memory, runs.length > 1 ? r.label : undefined)}`);
  const failed = runs.find((r) => !r.memory);
  if (failed) console.error(`memory estimate unavailable: ${failed.memory_error}`);
}

async function cmdRun(file: string, runsDir: string, flags: { dryRun: boolean; detach: boolean; json?: boolean; limitGib?: number; noEstimate?: boolean; allowCode?: boolean }): Promise<number> {
  const tdir = trainerDir();
  const loaded = await loadExperimentFile(file, {
    lmEval: { catalog: (dirs) => lmEvalCatalog(tdir, dirs), allowCodeExecution: !!flags.allowCode, dirExists: (p) => fs.existsSync(p) && fs.statSync(p).isDirectory() },
  });
  const rel = path.relative(process.cwd(), loaded.file ?? file);
  const shown = rel && !rel.startsWith('..') ? rel : loaded.file ?? file;
  for (const d of loaded.diagnostics) {
    console.error(formatDiagnostic(d, shown) + (d.cite && d.severity !== 'error' ? `\n    (${d.cite})` : ''));
  }
  if (!loaded.ok || !loaded.value) {
    const code = loaded.diagnostics.some((d) => d.code === 'lm-eval-code-execution-not-allowed');
    console.error(`not started: fix the errors above${code ? ' (or pass --allow-code-execution to let the sandboxed trainer run generated code)' : ''}`);
    return 2;
  }
  const planned = expandSweep(loaded.value);
  const sweepId = planned.length > 1 ? `${loaded.value.name}-${Date.now().toString(36)}` : undefined;
  const estimates = flags.noEstimate ? [] : await estimatePlanned(planned, loaded.file ?? file, flags.limitGib);
  if (flags.dryRun) {
    if (flags.json) { // stdout: the JSON alone; the warnings go to stderr as always
      warnOverLimit(estimates);
      console.log(JSON.stringify(estimates, null, 2));
      return 0;
    }
    const memory = (r?: PlannedRunEstimate) => (r?.memory ? `${memorySummary(r.memory)}${r.memory.fits === false ? ': over the limit' : ''}` : 'no estimate');
    console.log(formatTable(['#', 'label', 'overrides', 'memory'], planned.map((p, i) => [String(i + 1), p.label, JSON.stringify(p.overrides), memory(estimates[i])])));
    warnOverLimit(estimates);
    console.log(`${planned.length} run(s); dry run: nothing written`);
    return 0;
  }
  warnOverLimit(estimates);
  // Checked before any folder is made: a refused experiment leaves nothing behind.
  const slurm = planned.filter((p) => p.config.launcher?.kind === 'slurm').length;
  if (slurm && slurm < planned.length) { console.error('not started: a sweep must not mix launcher.kind slurm with other launchers'); return 2; }
  const store = new RunStore(runsDir);
  const ids: string[] = [];
  for (const [i, p] of planned.entries()) {
    const info = await store.create(p, { experimentName: loaded.value.name, experimentFile: loaded.file, sweepId, sweepIndex: sweepId ? i : undefined, sweepSize: sweepId ? planned.length : undefined });
    ids.push(info.id);
    console.log(`created ${info.dir}`);
  }
  if (slurm) return slurmRuns(store, ids, { detach: flags.detach, allowCode: flags.allowCode });
  if (flags.detach) { detachQueue(runsDir, ids, false, flags.allowCode); return 0; }
  return runSequence(store, ids, { allowCode: flags.allowCode });
}

/** Submits Slurm runs with the Python chosen as for local runs, and follows them unless detached. */
async function slurmRuns(store: RunStore, ids: string[], opts: { detach: boolean; resume?: boolean; allowCode?: boolean }): Promise<number> {
  const python = await pickPython();
  if (!python) return 1;
  return runOnSlurm(store, ids, { python, trainerDir: trainerDir(), detach: opts.detach, resume: opts.resume, jobEnv: opts.allowCode ? { FINETUNE_LAB_ALLOW_CODE_EXECUTION: '1' } : undefined });
}

async function runSummaryOf(dir: string): Promise<RunSummary | undefined> {
  try {
    const { events } = await readEventsFrom(path.join(dir, RUN_FILES.events), 0);
    return summarizeRun(events);
  } catch { return undefined; /* no events yet */ }
}

async function cmdList(runsDir: string): Promise<number> {
  const runs = await new RunStore(runsDir).list();
  if (!runs.length) { console.log(`no runs in ${runsDir}`); return 0; }
  const rows = await Promise.all(runs.map(async (r) => {
    const s = await runSummaryOf(r.dir);
    return [
      r.id, r.status.state + (r.status.stale ? ' (stalled)' : '') + (r.error ? ' (broken)' : ''),
      `${r.status.step}/${r.status.total_steps}`, num(r.status.loss ?? s?.finalTrainLoss),
      // each eval task's last value, with its lm-eval version and n ("!": it failed at the last evaluation)
      s ? scoresCell(s) : '',
      r.status.slurm ? `${r.status.slurm.text}${r.status.slurm.unknown ? ` (${r.status.slurm.unknown})` : ''}` : '',
    ];
  }));
  const slurm = rows.some((r) => r[5]);
  console.log(formatTable(['id', 'state', '>step', '>loss', 'evals', ...(slurm ? ['slurm'] : [])], slurm ? rows : rows.map((r) => r.slice(0, 5))));
  return 0;
}

/** The run a user named, or why there is none (an id that is not one, or a folder that is a link, exits 2). */
async function namedRun(store: RunStore, id: string): Promise<StoredRun | number> {
  try { store.dir(id); } catch (e) { console.error(`finetune-lab: ${(e as Error).message}`); return 2; }
  const info = await store.get(id);
  if (!info) { console.error(`no run ${id} in ${store.runsDir}`); return 1; }
  return info;
}

async function cmdStop(runsDir: string, id: string): Promise<number> {
  const info = await namedRun(new RunStore(runsDir), id);
  if (typeof info === 'number') return info;
  if (info.slurm) {
    if (info.status.state !== 'running' && info.status.state !== 'queued') { console.log(`${id} is ${info.status.state}`); return 0; }
    return stopOnSlurm(new RunStore(runsDir), info);
  }
  if (info.status.state !== 'running' || info.status.pid == null) { console.log(`${id} is ${info.status.state}`); return 0; }
  if (!isTrainerOf(info.status.pid, info.dir)) { console.error(`${id}: pid ${info.status.pid} in status.json is not a trainer of this run; nothing was signalled`); return 1; }
  console.log(`stopping ${id} (pid ${info.status.pid})…`);
  console.log(`${id}: ${await stopRun(info.status.pid)}`);
  return 0;
}

async function cmdResume(runsDir: string, id: string, detach: boolean, allowCode = false): Promise<number> {
  const store = new RunStore(runsDir);
  const info = await namedRun(store, id);
  if (typeof info === 'number') return info;
  if (info.meta.kind === 'analysis') { console.error(`${id} is an analysis run: nothing to resume (run finetune-lab analyse again)`); return 1; }
  if (info.status.state === 'running') { console.error(`${id} is running (${info.slurm ? `Slurm job ${info.slurm.job_id}` : `pid ${info.status.pid}`})`); return 1; }
  if (info.config?.launcher?.kind === 'slurm') {
    if (info.status.state === 'queued' && info.slurm) { console.error(`${id} is queued as Slurm job ${info.slurm.job_id}`); return 1; }
    return slurmRuns(store, [id], { detach, resume: info.status.state !== 'queued', allowCode });
  }
  if (detach) { detachQueue(runsDir, [id], true, allowCode); return 0; }
  return runSequence(store, [id], { resume: true, allowCode });
}

async function cmdDoctor(): Promise<number> {
  const found = await findPython(cliPythonCandidates(packageRoot()));
  const python = found.python ?? found.tried.find((t) => t.error !== 'not found')?.python;
  if (!found.python) console.error(found.message);
  if (!python) return 1;
  const cmd = trainerCommand(python, trainerDir(), process.cwd());
  cmd.args = ['-m', 'finetune_lab', 'doctor'];
  const code = await new Promise<number>((resolve) => {
    const child = spawn(cmd.command, cmd.args, { env: cmd.env, stdio: 'inherit' });
    child.on('error', () => resolve(1));
    child.on('exit', (c) => resolve(c ?? 1));
  });
  return found.python ? code : 1;
}

async function cmdDemo(runsDir: string, quick: boolean): Promise<number> {
  const python = await pickPython();
  if (!python) return 1;
  return runDemo({
    root: packageRoot(), runsDir, quick, python, trainerDir: trainerDir(),
    // the demo's built-in CPU runs always fit: no estimate (a torch import per stage)
    runExperiment: (file) => cmdRun(file, runsDir, { dryRun: false, detach: false, noEstimate: true }),
  });
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if ((command === 'analyse' || command === 'reduce-intruders') && !rest.some((a) => a === '--help' || a === '-h')) {
    try { return await cmdAnalysis(command, rest, DEFAULT_RUNS_DIR, pickPython); } catch (e) {
      throw e instanceof AnalysisUsageError ? new UsageError(e.message) : e;
    }
  }
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true, strict: true,
    options: { 'runs-dir': { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' }, 'memory-limit-gib': { type: 'string' }, 'no-estimate': { type: 'boolean' }, detach: { type: 'boolean' }, quick: { type: 'boolean' }, resume: { type: 'boolean' }, 'allow-code-execution': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  const runsDir = path.resolve(values['runs-dir'] ?? DEFAULT_RUNS_DIR);
  const need = (what: string) => { if (!positionals[0]) throw new UsageError(`${command}: missing ${what}`); return positionals[0]; };
  if (values.help || !command || command === 'help' || command === '--help' || command === '-h') { console.log(USAGE); return 0; }
  switch (command) {
    case 'run': {
      const limit = values['memory-limit-gib'] === undefined ? undefined : Number(values['memory-limit-gib']);
      if (limit !== undefined && !(limit > 0)) throw new UsageError(`--memory-limit-gib: expected a number of GiB above 0, got '${values['memory-limit-gib']}'`);
      if (values.json && !values['dry-run']) throw new UsageError('--json goes with --dry-run');
      if (values['no-estimate'] && (values.json || limit !== undefined)) throw new UsageError('--no-estimate leaves out the memory estimate that --json and --memory-limit-gib report');
      return cmdRun(need('<file>'), runsDir, { dryRun: !!values['dry-run'], detach: !!values.detach, json: !!values.json, limitGib: limit, noEstimate: !!values['no-estimate'], allowCode: !!values['allow-code-execution'] });
    }
    case 'list': return cmdList(runsDir);
    case 'stop': return cmdStop(runsDir, need('<run-id>'));
    case 'resume': return cmdResume(runsDir, need('<run-id>'), !!values.detach, !!values['allow-code-execution']);
    case 'doctor': return cmdDoctor();
    case 'demo': return cmdDemo(runsDir, !!values.quick);
    case '_queue': return runSequence(new RunStore(runsDir), positionals, { resume: !!values.resume, allowCode: !!values['allow-code-execution'] });
    default: throw new UsageError(`unknown command: ${command}`);
  }
}

export class UsageError extends Error {}
