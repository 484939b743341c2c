// finetune-lab: the headless command line. Same core as the extension: validate an experiment, expand
// its sweep into runs in a runs folder, start the trainer for each and follow it.
//   finetune-lab run <file> [--runs-dir DIR] [--dry-run] [--detach]
//   finetune-lab list [--runs-dir DIR]    stop <run-id>    resume <run-id> [--detach]
//   finetune-lab doctor                    demo [--runs-dir DIR] [--quick]
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { loadExperimentFile } from '../core/experiment';
import { formatDiagnostic } from '../core/diagnostics';
import { expandSweep } from '../core/sweep';
import { RunStore, RUN_FILES, type StoredRun } from '../core/runStore';
import { readEventsFrom } from '../core/events';
import { cliPythonCandidates, findPython, packageRoot, stopRun, trainerCommand, trainerDir } from '../core/trainerLaunch';
import { isTrainerOf } from '../core/trainerProcess';
import { followRun } from './follow';
import { formatTable, num } from './table';
import { runDemo } from './demo';
import { runOnSlurm, stopOnSlurm } from './slurm';

export const USAGE = `usage: finetune-lab <command>
  run <file.finetune.yaml> [--runs-dir DIR] [--dry-run] [--detach]   validate, expand the sweep, train each run
  list [--runs-dir DIR]                                              runs with state, step and last loss
  stop <run-id> [--runs-dir DIR]                                     stop a run (SIGINT, SIGKILL after 30 s; Slurm: scancel --signal=INT, scancel after 30 s)
  resume <run-id> [--runs-dir DIR] [--detach]                        continue from the newest checkpoint (Slurm: a new job with --resume)
  doctor                                                             the trainer's view of Python, torch, GPUs
  demo [--runs-dir DIR] [--quick]                                    the paper on CPU: LoRA vs full finetuning, an LR sweep, results
                                                                     (--quick: builtin:tiny, a few steps, a smoke test)
Python: $FINETUNE_LAB_PYTHON, else <repo>/.venv/bin/python, else python3. Runs dir default: .finetune/runs
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

/** Runs the given runs one after another in the foreground; exit code 0 when all completed. */
async function runSequence(store: RunStore, ids: string[], opts: { resume?: boolean } = {}): Promise<number> {
  const python = await pickPython();
  if (!python) return 1;
  const tdir = trainerDir();
  let failed = 0;
  for (const [i, id] of ids.entries()) {
    const { outcome, interrupted } = await followRun(store, id, { python, trainerDir: tdir, resume: opts.resume, prefix: ids.length > 1 ? `[${i + 1}/${ids.length}] ` : '' });
    if (interrupted) {
      if (i + 1 < ids.length) console.log(`not started: ${ids.slice(i + 1).join(', ')} (still queued)`);
      return 130;
    }
    if (outcome !== 'completed') failed++;
  }
  return failed ? 1 : 0;
}

/** --detach: a detached copy of this CLI runs the queue, so the shell (and the terminal) can go. */
function detachQueue(runsDir: string, ids: string[], resume: boolean): void {
  const log = path.join(runsDir, `.queue-${Date.now()}.log`);
  const fd = fs.openSync(log, 'a');
  const child = spawn(process.execPath, [__filename, '_queue', '--runs-dir', runsDir, ...(resume ? ['--resume'] : []), ...ids], { detached: true, stdio: ['ignore', fd, fd] });
  child.unref();
  fs.closeSync(fd);
  console.log(`started in the background (pid ${child.pid}); progress: ${log}; follow with: finetune-lab list --runs-dir ${runsDir}`);
}

async function cmdRun(file: string, runsDir: string, flags: { dryRun: boolean; detach: boolean }): Promise<number> {
  const loaded = await loadExperimentFile(file);
  const rel = path.relative(process.cwd(), loaded.file ?? file);
  const shown = rel && !rel.startsWith('..') ? rel : loaded.file ?? file;
  for (const d of loaded.diagnostics) {
    console.error(formatDiagnostic(d, shown) + (d.cite && d.severity !== 'error' ? `\n    (${d.cite})` : ''));
  }
  if (!loaded.ok || !loaded.value) { console.error('not started: fix the errors above'); return 2; }
  const planned = expandSweep(loaded.value);
  const sweepId = planned.length > 1 ? `${loaded.value.name}-${Date.now().toString(36)}` : undefined;
  if (flags.dryRun) {
    console.log(formatTable(['#', 'label', 'overrides'], planned.map((p, i) => [String(i + 1), p.label, JSON.stringify(p.overrides)])));
    console.log(`${planned.length} run(s); dry run: nothing written`);
    return 0;
  }
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
  if (slurm) return slurmRuns(store, ids, { detach: flags.detach });
  if (flags.detach) { detachQueue(runsDir, ids, false); return 0; }
  return runSequence(store, ids);
}

/** Submits Slurm runs with the Python chosen as for local runs, and follows them unless detached. */
async function slurmRuns(store: RunStore, ids: string[], opts: { detach: boolean; resume?: boolean }): Promise<number> {
  const python = await pickPython();
  if (!python) return 1;
  return runOnSlurm(store, ids, { python, trainerDir: trainerDir(), detach: opts.detach, resume: opts.resume });
}

async function lastLoss(dir: string): Promise<number | undefined> {
  try {
    const { events } = await readEventsFrom(path.join(dir, RUN_FILES.events), 0);
    for (let i = events.length - 1; i >= 0; i--) { const e = events[i]; if (e.type === 'train') return e.loss; }
  } catch { /* no events yet */ }
  return undefined;
}

async function cmdList(runsDir: string): Promise<number> {
  const runs = await new RunStore(runsDir).list();
  if (!runs.length) { console.log(`no runs in ${runsDir}`); return 0; }
  const rows = await Promise.all(runs.map(async (r) => [
    r.id, r.status.state + (r.status.stale ? ' (stalled)' : '') + (r.error ? ' (broken)' : ''),
    `${r.status.step}/${r.status.total_steps}`, num(r.status.loss ?? (await lastLoss(r.dir))),
    r.status.slurm ? `${r.status.slurm.text}${r.status.slurm.unknown ? ` (${r.status.slurm.unknown})` : ''}` : '',
  ]));
  const slurm = rows.some((r) => r[4]);
  console.log(formatTable(['id', 'state', '>step', '>loss', ...(slurm ? ['slurm'] : [])], slurm ? rows : rows.map((r) => r.slice(0, 4))));
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

async function cmdResume(runsDir: string, id: string, detach: boolean): Promise<number> {
  const store = new RunStore(runsDir);
  const info = await namedRun(store, id);
  if (typeof info === 'number') return info;
  if (info.status.state === 'running') { console.error(`${id} is running (${info.slurm ? `Slurm job ${info.slurm.job_id}` : `pid ${info.status.pid}`})`); return 1; }
  if (info.config?.launcher?.kind === 'slurm') {
    if (info.status.state === 'queued' && info.slurm) { console.error(`${id} is queued as Slurm job ${info.slurm.job_id}`); return 1; }
    return slurmRuns(store, [id], { detach, resume: info.status.state !== 'queued' });
  }
  if (detach) { detachQueue(runsDir, [id], true); return 0; }
  return runSequence(store, [id], { resume: true });
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
    runExperiment: (file) => cmdRun(file, runsDir, { dryRun: false, detach: false }),
  });
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true, strict: true,
    options: { 'runs-dir': { type: 'string' }, 'dry-run': { type: 'boolean' }, detach: { type: 'boolean' }, quick: { type: 'boolean' }, resume: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  const runsDir = path.resolve(values['runs-dir'] ?? DEFAULT_RUNS_DIR);
  const need = (what: string) => { if (!positionals[0]) throw new UsageError(`${command}: missing ${what}`); return positionals[0]; };
  if (values.help || !command || command === 'help' || command === '--help' || command === '-h') { console.log(USAGE); return 0; }
  switch (command) {
    case 'run': return cmdRun(need('<file>'), runsDir, { dryRun: !!values['dry-run'], detach: !!values.detach });
    case 'list': return cmdList(runsDir);
    case 'stop': return cmdStop(runsDir, need('<run-id>'));
    case 'resume': return cmdResume(runsDir, need('<run-id>'), !!values.detach);
    case 'doctor': return cmdDoctor();
    case 'demo': return cmdDemo(runsDir, !!values.quick);
    case '_queue': return runSequence(new RunStore(runsDir), positionals, { resume: !!values.resume });
    default: throw new UsageError(`unknown command: ${command}`);
  }
}

export class UsageError extends Error {}
