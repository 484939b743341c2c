// Starting, stopping and finding the trainer (DECISIONS.md "Trainer process"): argv arrays, never a
// shell string; its own process group (detached) so a run survives the editor; stdout and stderr
// appended to the run's train.log; Stop = SIGINT to the group, SIGKILL after a grace period.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { pidAlive } from './reconcile';
import { RUN_FILES } from './runStore';
import type { RunStatus } from './generated/status';

/** The trainer's exit code when another trainer holds the run folder (trainer/finetune_lab/runlock.py): it wrote nothing. */
export const EXIT_ALREADY_RUNNING = 3;
/** The trainer's exit code for an invalid config.yaml (nothing trained; the error names the field). */
export const EXIT_INVALID_CONFIG = 2;

export interface TrainerCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

/** `<python> -m finetune_lab ARGS` in `cwd`, with PYTHONPATH = the trainer folder (before any given one). */
export function trainerModuleCommand(python: string, trainerDir: string, args: readonly string[], cwd: string, base: NodeJS.ProcessEnv = process.env): TrainerCommand {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  env.PYTHONPATH = base.PYTHONPATH ? `${trainerDir}${path.delimiter}${base.PYTHONPATH}` : trainerDir;
  env.PYTHONUNBUFFERED = '1'; // train.log, events and progress lines stay current
  return { command: python, args: ['-m', 'finetune_lab', ...args], env, cwd: path.resolve(cwd) };
}

/** `<python> -m finetune_lab run --run-dir DIR [--resume]`, with PYTHONPATH = the trainer folder. */
export function trainerCommand(python: string, trainerDir: string, runDir: string, opts: { resume?: boolean; env?: NodeJS.ProcessEnv } = {}): TrainerCommand {
  const args = ['run', '--run-dir', path.resolve(runDir), ...(opts.resume ? ['--resume'] : [])];
  return trainerModuleCommand(python, trainerDir, args, runDir, opts.env);
}

export interface SpawnedTrainer {
  pid: number;
  child: ChildProcess;
  /**
   * Resolves when the process exits. The child is unref'd so this process may exit first; reading
   * `exit` re-refs it, so awaiting it keeps this process alive until the trainer ends.
   */
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns a trainer command detached, in its own process group, output appended to runDir/train.log,
 * and unref'd so this process may exit first. Rejects if it cannot start (no such python).
 */
export function spawnTrainer(cmd: TrainerCommand, logFile = path.join(cmd.cwd, RUN_FILES.log)): Promise<SpawnedTrainer> {
  // O_NOFOLLOW: a train.log that is a symbolic link (a run folder from a workspace) is refused,
  // never followed, so the trainer's output cannot be appended to a file elsewhere.
  const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW } = fs.constants;
  const fd = fs.openSync(logFile, O_WRONLY | O_APPEND | O_CREAT | (O_NOFOLLOW ?? 0), 0o644);
  let open = true;
  const closeFd = () => { if (open) { open = false; fs.closeSync(fd); } };
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd.command, cmd.args, { cwd: cmd.cwd, env: cmd.env, detached: true, stdio: ['ignore', fd, fd] });
    } catch (e) {
      closeFd();
      reject(e);
      return;
    }
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
    child.once('error', (e) => { closeFd(); reject(e); });
    child.once('spawn', () => {
      closeFd(); // the child holds its own copy
      child.unref();
      markStarted(cmd.cwd, child.pid!);
      resolve({ pid: child.pid!, child, get exit() { child.ref(); return exit; } });
    });
  });
}

/**
 * Records the pid in status.json as soon as the process exists. Importing torch takes seconds before
 * the trainer writes its own status; a trainer that dies in that window would otherwise leave the run
 * `queued` forever, with no pid for a reader to find gone (reconcile then marks it failed).
 */
export function markStarted(runDir: string, pid: number, now = Date.now() / 1000): void {
  const file = path.join(runDir, RUN_FILES.status);
  let status: RunStatus | undefined;
  try { status = JSON.parse(fs.readFileSync(file, 'utf8')) as RunStatus; } catch { /* missing or mid-write: write a fresh one */ }
  if (status?.state === 'running' && status.pid === pid) return; // the trainer was quicker
  // Another trainer already owns the run (a second window started it at the same moment): this one
  // will exit at once (EXIT_ALREADY_RUNNING) and must not take the run's status over meanwhile.
  if (status?.state === 'running' && status.pid != null && status.pid !== pid && pidAlive(status.pid)) return;
  const next: RunStatus = {
    v: 1, step: 0, total_steps: 0, ...status,
    state: 'running', pid, phase: 'starting', heartbeat: now, started: status?.started ?? now, finished: null, error: null,
  };
  const tmp = `${file}.${pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(next, null, 2));
  fs.renameSync(tmp, file);
}

/** Starts `python -m finetune_lab run` for a run folder; resolves to the trainer's pid (its group id). */
export async function startTrainer(python: string, trainerDir: string, runDir: string, opts: { resume?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  return (await spawnTrainer(trainerCommand(python, trainerDir, runDir, opts))).pid;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGKILL to a trainer's process group (torchrun's workers and a stuck main thread included). */
export function killGroup(pid: number): boolean { return signalGroup(pid, 'SIGKILL'); }

function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try { process.kill(-pid, signal); return true; } catch {
    try { process.kill(pid, signal); return true; } catch { return false; }
  }
}

/**
 * Stops a run: SIGINT to its process group (the trainer finishes the step, checkpoints, writes
 * run_finished stopped), then SIGKILL to the group if it is still alive after graceMs.
 */
export async function stopRun(pid: number, opts: { graceMs?: number; pollMs?: number; isAlive?: (pid: number) => boolean } = {}): Promise<'not-running' | 'stopped' | 'killed'> {
  const alive = opts.isAlive ?? pidAlive;
  if (!alive(pid)) return 'not-running';
  signalGroup(pid, 'SIGINT');
  const deadline = Date.now() + (opts.graceMs ?? 30_000);
  while (Date.now() < deadline) {
    await sleep(opts.pollMs ?? 200);
    if (!alive(pid)) return 'stopped';
  }
  signalGroup(pid, 'SIGKILL');
  return 'killed';
}

// ---- Finding a Python that can train -------------------------------------------------------------

export const REQUIRED_MODULES = ['torch', 'transformers', 'peft', 'safetensors'] as const;

export interface PythonProbe { ok: boolean; missing: string[]; error?: string; version?: string }
export interface PythonCandidateResult extends PythonProbe { python: string }
export interface FindPythonResult {
  /** The first candidate with every required module, if any. */
  python?: string;
  tried: PythonCandidateResult[];
  /** For the user when none works: what each lacked, and what to do. */
  message?: string;
}

/** Imports each required module separately, so the result says which are missing (prints JSON). */
const PROBE_SCRIPT = `import importlib, json, sys
missing = []
for m in ${JSON.stringify(REQUIRED_MODULES)}:
    try:
        importlib.import_module(m)
    except Exception:
        missing.append(m)
print(json.dumps({"missing": missing, "version": sys.version.split()[0]}))
sys.exit(1 if missing else 0)`;

/** Runs the import probe in `python`; never rejects. */
export function probePython(python: string, timeoutMs = 60_000): Promise<PythonProbe> {
  return new Promise((resolve) => {
    let out = '';
    let err = '';
    let child: ChildProcess;
    try { child = spawn(python, ['-c', PROBE_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs }); } catch (e) {
      resolve({ ok: false, missing: [...REQUIRED_MODULES], error: (e as Error).message });
      return;
    }
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (err += d));
    child.once('error', (e) => resolve({ ok: false, missing: [...REQUIRED_MODULES], error: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : e.message }));
    child.once('close', (code) => {
      try {
        const r = JSON.parse(out.trim().split('\n').pop() ?? '') as { missing: string[]; version: string };
        resolve({ ok: code === 0 && r.missing.length === 0, missing: r.missing, version: r.version });
      } catch {
        resolve({ ok: false, missing: [...REQUIRED_MODULES], error: (err.trim().split('\n').pop() || `exit ${code}`).slice(0, 200) });
      }
    });
  });
}

export const NO_PYTHON_HINT = 'no Python with torch: set finetuneLab.pythonPath or run npm run setup';

/** The first candidate where `import torch, transformers, peft, safetensors` works. */
export async function findPython(candidates: string[], probe: (python: string) => Promise<PythonProbe> = probePython): Promise<FindPythonResult> {
  const tried: PythonCandidateResult[] = [];
  for (const python of [...new Set(candidates.filter(Boolean))]) {
    const r = await probe(python);
    tried.push({ python, ...r });
    if (r.ok) return { python, tried };
  }
  const lines = tried.map((t) => `  ${t.python}: ${t.error ?? `missing ${t.missing.join(', ')}`}`);
  return { tried, message: `${NO_PYTHON_HINT}\n${lines.join('\n')}` };
}

/** The CLI's and tests' order (DECISIONS.md): $FINETUNE_LAB_PYTHON, <repo>/.venv/bin/python, python3. */
export function cliPythonCandidates(repoRoot: string | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  if (env.FINETUNE_LAB_PYTHON) out.push(env.FINETUNE_LAB_PYTHON);
  if (repoRoot) out.push(process.platform === 'win32' ? path.join(repoRoot, '.venv', 'Scripts', 'python.exe') : path.join(repoRoot, '.venv', 'bin', 'python'));
  out.push(process.platform === 'win32' ? 'python' : 'python3');
  return out;
}

/**
 * The trainer folder (holding the finetune_lab package): `../trainer` next to dist/ for the bundled
 * CLI, else the nearest `trainer/finetune_lab` walking up from `from` (tests run from out/test/...).
 */
export function trainerDir(from: string = __dirname): string {
  const direct = path.resolve(from, '..', 'trainer');
  if (fs.existsSync(path.join(direct, 'finetune_lab'))) return direct;
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const t = path.join(dir, 'trainer');
    if (fs.existsSync(path.join(t, 'finetune_lab'))) return t;
    if (path.dirname(dir) === dir) return direct;
  }
}

/** The repository (or installed extension) root: the folder holding trainer/. */
export const packageRoot = (from: string = __dirname): string => path.dirname(trainerDir(from));

// ---- Several machines without Slurm (launcher.kind torchrun, nnodes > 1) ------------------------

/** POSIX single quotes, bare when safe: for commands shown to the user to paste into a shell. */
const shq = (s: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * The command for each other machine of a multi-machine torchrun run: the same Python, trainer
 * folder and run folder path (a shared file system), `--node-rank K`. The trainer prints the same
 * lines into train.log (finetune_lab/__main__.py node_commands).
 */
export function otherNodeCommands(python: string, trainerDirPath: string, runDir: string, launcher: { nnodes?: number; node_rank?: number }, resume = false): string[] {
  const out: string[] = [];
  for (let k = 0; k < (launcher.nnodes ?? 1); k++) {
    if (k === (launcher.node_rank ?? 0)) continue;
    const argv = [python, '-m', 'finetune_lab', 'run', '--run-dir', path.resolve(runDir), '--node-rank', String(k), ...(resume ? ['--resume'] : [])];
    out.push(`PYTHONPATH=${shq(trainerDirPath)} ${argv.map(shq).join(' ')}`);
  }
  return out;
}
