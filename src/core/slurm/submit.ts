// Submitting Slurm runs and stopping their jobs: writes the batch script into the run folder,
// submits it with sbatch --parsable, records the job id in slurm.json; a job sbatch rejects ends the
// run failed with sbatch's own message. A sweep is one job per run (each waiting on the run
// max_running before it), or one job array when launcher.array is set. Stop: scancel --signal=INT,
// then scancel once the grace period is over.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunStore, StoredRun } from '../runStore';
import type { RunStatus } from '../generated/status';
import type { SlurmRecord } from '../generated/slurm';
import { SlurmError } from './client';
import { batchScript, SCRIPT_FILE, type Launcher } from './script';
import { readSlurmRecord, writeSlurmRecord } from './record';
import { ACTIVE_STATES, isTerminal, PENDING_STATES } from './jobs';
import { isRunId } from '../runPath';

export interface SubmitOptions {
  python: string;
  trainerDir: string;
  resume?: boolean;
  /** Variables the job exports before training (FINETUNE_LAB_BROWN_DIR, ...). */
  jobEnv?: Record<string, string>;
  /** sbatch's own environment (SLURM_CONF, ...); default process.env. */
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

export interface SubmitResult {
  /** Run id → job id, for the runs submitted. */
  submitted: Map<string, string>;
  /** Run id → sbatch's message, for runs Slurm rejected (their status says failed). */
  rejected: Map<string, string>;
  /** Runs not submitted because the queue's submit limit was reached: they stay queued, to submit later. */
  deferred: string[];
}

/** sbatch's messages when a user or QOS may not queue more jobs (the run is not at fault: submit it later). */
export const SUBMIT_LIMIT = /MaxSubmitJob|submit limit|AssocMaxSubmitJobLimit|QOSMaxSubmitJobPerUserLimit|Job violates accounting\/QOS policy \(job submit limit/i;

const nowS = (): number => Date.now() / 1000;

function strip(s: StoredRun['status']): RunStatus {
  const { stale: _a, reconciled: _b, slurm: _c, ...rest } = s;
  void _a; void _b; void _c;
  return rest;
}

/** The launcher of a Slurm run (its config's), or an error naming what is wrong. */
function launcherOf(run: StoredRun): Launcher {
  const l = run.config?.launcher;
  if (!l || l.kind !== 'slurm') throw new Error(`${run.id}: launcher.kind is not slurm`);
  return l;
}

async function markFailed(store: RunStore, run: StoredRun, error: string): Promise<void> {
  await store.writeStatus(run.id, { ...strip(run.status), state: 'failed', phase: 'done', pid: null, finished: nowS(), error });
}

/**
 * Submits runs (created, status queued or, with resume, stopped/failed) to Slurm. A job sbatch
 * rejects fails its run with sbatch's message; at the queue's submit limit the rest are deferred.
 */
export async function submitRuns(store: RunStore, ids: string[], opts: SubmitOptions): Promise<SubmitResult> {
  const result: SubmitResult = { submitted: new Map(), rejected: new Map(), deferred: [] };
  const runs: StoredRun[] = [];
  for (const id of ids) {
    const run = await store.get(id);
    if (!run) throw new Error(`no run ${id} in ${store.runsDir}`);
    runs.push(run);
  }
  if (!runs.length) return result;
  const launcher = launcherOf(runs[0]);
  if (launcher.array && runs.length > 1 && !opts.resume) return submitArray(store, runs, launcher, opts, result);
  const limit = launcher.max_running;
  for (const [i, run] of runs.entries()) {
    if (result.deferred.length) { result.deferred.push(run.id); continue; }
    // max_running: each job waits for the one max_running places before it to end (Slurm holds it).
    const before = limit && i >= limit ? result.submitted.get(runs[i - limit].id) : undefined;
    const outcome = await submitOne(store, run, opts, before ? [`--dependency=afterany:${before}`] : []);
    if ('jobId' in outcome) result.submitted.set(run.id, outcome.jobId);
    else if (SUBMIT_LIMIT.test(outcome.error)) result.deferred.push(run.id);
    else result.rejected.set(run.id, outcome.error);
  }
  return result;
}

async function submitOne(store: RunStore, run: StoredRun, opts: SubmitOptions, args: string[]): Promise<{ jobId: string } | { error: string }> {
  const launcher = launcherOf(run);
  const dir = path.resolve(run.dir);
  const script = path.join(dir, SCRIPT_FILE);
  const text = batchScript({ jobName: run.id, launcher, python: opts.python, trainerDir: opts.trainerDir, runDirs: [dir], resume: opts.resume, env: opts.jobEnv });
  await fs.promises.rm(script, { force: true }); // an array's symlink, from an earlier submission
  await fs.promises.writeFile(script, text, { mode: 0o755 });
  const now = opts.now ?? nowS;
  const previous = await readSlurmRecord(dir);
  // queued before sbatch: the trainer may write "running" as soon as the job starts.
  if (opts.resume) await store.writeStatus(run.id, { ...strip(run.status), state: 'queued', pid: null, error: null, finished: null, phase: 'starting' });
  const submitted = now();
  let jobId: string;
  try {
    jobId = await store.jobs.client.submit(script, { cwd: dir, env: opts.env, args });
  } catch (e) {
    const msg = e instanceof SlurmError && e.kind === 'rejected' ? `sbatch rejected the job: ${e.message}` : (e as Error).message;
    if (!SUBMIT_LIMIT.test(msg)) await markFailed(store, run, msg);
    return { error: msg };
  }
  const record: SlurmRecord = {
    v: 1, job_id: jobId, jobs: [...(previous?.jobs ?? []), { job_id: jobId, submitted, resume: !!opts.resume }],
    script, output: path.join(dir, 'train.log'), array_task: null, state: 'PENDING', reason: null, nodes: null, exit_code: null, observed: submitted,
  };
  await writeSlurmRecord(dir, record);
  store.jobs.invalidate(jobId);
  return { jobId };
}

/** One job array for a sweep: task i trains run i; each task's output is its run's train.log. */
async function submitArray(store: RunStore, runs: StoredRun[], launcher: Launcher, opts: SubmitOptions, result: SubmitResult): Promise<SubmitResult> {
  const runsDir = path.resolve(store.runsDir);
  // meta.json is a file in the workspace: its sweep id names a folder only if it is a plain id (runPath.ts).
  const name = isRunId(runs[0].meta.sweep_id) ? runs[0].meta.sweep_id : runs[0].id;
  // .slurm/<sweep>/<i> -> ../../<run-id>: Slurm's %a names each task's folder, so --output is that run's train.log.
  const folder = path.join(runsDir, '.slurm', name);
  await fs.promises.mkdir(folder, { recursive: true });
  for (const [i, run] of runs.entries()) {
    const link = path.join(folder, String(i));
    await fs.promises.rm(link, { force: true });
    await fs.promises.symlink(path.relative(folder, path.resolve(run.dir)), link);
  }
  const script = path.join(folder, 'array.sbatch');
  const dirs = runs.map((r) => path.resolve(r.dir));
  await fs.promises.writeFile(script, batchScript({
    jobName: name, launcher, python: opts.python, trainerDir: opts.trainerDir, runDirs: dirs,
    arrayOutput: path.join(folder, '%a', 'train.log').replace(/%(?!a)/g, '%%'), env: opts.jobEnv,
  }), { mode: 0o755 });
  for (const r of runs) {
    const own = path.join(r.dir, SCRIPT_FILE);
    await fs.promises.rm(own, { force: true });
    await fs.promises.symlink(path.relative(r.dir, script), own);
  }
  const submitted = (opts.now ?? nowS)();
  let arrayId: string;
  try {
    arrayId = await store.jobs.client.submit(script, { cwd: runsDir, env: opts.env });
  } catch (e) {
    const msg = e instanceof SlurmError && e.kind === 'rejected' ? `sbatch rejected the job array: ${e.message}` : (e as Error).message;
    if (SUBMIT_LIMIT.test(msg)) { result.deferred.push(...runs.map((r) => r.id)); return result; }
    for (const r of runs) { await markFailed(store, r, msg); result.rejected.set(r.id, msg); }
    return result;
  }
  for (const [i, r] of runs.entries()) {
    const jobId = `${arrayId}_${i}`;
    await writeSlurmRecord(r.dir, {
      v: 1, job_id: jobId, jobs: [{ job_id: jobId, submitted, resume: false }], script, output: path.join(path.resolve(r.dir), 'train.log'),
      array_task: i, state: 'PENDING', reason: null, nodes: null, exit_code: null, observed: submitted,
    });
    result.submitted.set(r.id, jobId);
  }
  store.jobs.invalidate();
  return result;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type StopOutcome = 'not-running' | 'cancelled' | 'stopped' | 'killed';

/**
 * Stops a Slurm run's job: pending → scancel; running → scancel --signal=INT (the trainer finishes its
 * step and checkpoints), then scancel after graceMs if the job is still there.
 */
export async function stopJob(store: RunStore, run: StoredRun, opts: { graceMs?: number; pollMs?: number } = {}): Promise<{ outcome: StopOutcome; message?: string }> {
  const record = run.slurm ?? await readSlurmRecord(run.dir);
  if (!record) return { outcome: 'not-running' };
  const client = store.jobs.client;
  const jobId = record.job_id;
  const stateNow = async (): Promise<string | undefined> => {
    store.jobs.invalidate(jobId);
    const v = await store.jobs.view(jobId);
    if (v.kind === 'unknown') throw new SlurmError(v.error, 'failed');
    return v.kind === 'job' ? v.job.state : undefined;
  };
  const state = await stateNow();
  if (!state || isTerminal(state)) return { outcome: 'not-running' };
  if (PENDING_STATES.has(state)) {
    const r = await client.cancel(jobId);
    return r.ok ? { outcome: 'cancelled' } : { outcome: 'not-running', message: r.message };
  }
  if (ACTIVE_STATES.has(state)) {
    const r = await client.cancel(jobId, 'INT');
    const deadline = Date.now() + (opts.graceMs ?? 30_000);
    if (r.ok) {
      while (Date.now() < deadline) {
        await sleep(opts.pollMs ?? 1000);
        const s = await stateNow();
        if (!s || isTerminal(s)) return { outcome: 'stopped' };
      }
    }
    const k = await client.cancel(jobId);
    return { outcome: 'killed', message: k.ok ? undefined : k.message };
  }
  return { outcome: 'not-running' };
}
