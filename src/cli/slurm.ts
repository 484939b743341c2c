// The CLI's Slurm runs: submit (one job per run, or one job array), then follow the jobs from the
// run folders and Slurm's answers until each run ends: "job 12 pending (Priority)" → running →
// completed. Ctrl-C stops following, not the jobs (they belong to the cluster): `finetune-lab stop`.
import type { RunStore, StoredRun } from '../core/runStore';
import type { RunStatus } from '../core/generated/status';
import { submitRuns, stopJob, type SubmitOptions } from '../core/slurm/submit';
import { num } from './table';
import { isTerminal as isJobTerminal } from '../core/slurm/jobs';

const TERMINAL = new Set<RunStatus['state']>(['completed', 'failed', 'stopped']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SlurmCliOptions extends SubmitOptions {
  detach?: boolean;
  pollMs?: number;
  log?: (line: string) => void;
}

function strip(s: StoredRun['status']): RunStatus {
  const { stale: _a, reconciled: _b, slurm: _c, ...rest } = s;
  void _a; void _b; void _c;
  return rest;
}

/** Writes a state that only the reader knows (the job ended without the trainer's word) to status.json. */
async function persistEnd(store: RunStore, run: StoredRun): Promise<void> {
  if (!run.status.reconciled || !TERMINAL.has(run.status.state)) return;
  const status = strip(run.status);
  status.finished ??= Date.now() / 1000;
  await store.writeStatus(run.id, status).catch(() => undefined);
}

/** Submits the runs; follows them unless detached. Exit code: 0 all completed, 1 otherwise, 130 on Ctrl-C. */
export async function runOnSlurm(store: RunStore, ids: string[], opts: SlurmCliOptions): Promise<number> {
  const log = opts.log ?? ((l: string) => console.log(l));
  let result;
  try {
    result = await submitRuns(store, ids, opts);
  } catch (e) {
    console.error(`not submitted: ${(e as Error).message}`);
    return 1;
  }
  for (const [id, job] of result.submitted) log(`${id}  submitted as Slurm job ${job}`);
  for (const [id, why] of result.rejected) console.error(`${id}  failed: ${why}`);
  let deferred = result.deferred;
  if (deferred.length) log(`waiting for the queue's submit limit: ${deferred.join(', ')} (submitted as earlier jobs end)`);
  if (opts.detach) {
    if (deferred.length) log(`still queued, not submitted: ${deferred.join(', ')}; submit them later with finetune-lab resume <run-id>`);
    log(`follow with: finetune-lab list --runs-dir ${store.runsDir}; stop with: finetune-lab stop <run-id>`);
    return result.rejected.size ? 1 : 0;
  }
  let interrupted = false;
  const onSigint = () => { interrupted = true; };
  process.on('SIGINT', onSigint);
  const last = new Map<string, string>();
  try {
    for (;;) {
      let open = 0;
      let freed = false;
      for (const id of ids) {
        if (deferred.includes(id)) { open++; continue; }
        store.jobs.invalidate();
        const run = await store.get(id);
        if (!run) continue;
        const s = run.status;
        const line = s.state === 'running'
          ? `running${s.slurm ? `  ${s.slurm.text}${s.slurm.unknown ? ` (${s.slurm.unknown})` : ''}` : ''}  step ${s.step}/${s.total_steps}${s.loss != null ? `  loss ${num(s.loss)}` : ''}`
          : s.state === 'queued' ? `queued${s.slurm ? ` (${s.slurm.text})` : ''}` : `${s.state}${s.error ? `: ${s.error}` : ''}`;
        if (last.get(id) !== line) { last.set(id, line); log(`${id}  ${line}`); }
        // Done when the run ended and its job left the queue (slurm.json then says how), or 60 s after the run ended.
        const jobOpen = run.slurm?.state != null && !isJobTerminal(run.slurm.state) && !s.slurm?.unknown;
        if (TERMINAL.has(s.state) && !last.has(`${id}:done`)) { last.set(`${id}:done`, String(Date.now())); await persistEnd(store, run); freed = true; }
        if (!TERMINAL.has(s.state) || (jobOpen && Date.now() - Number(last.get(`${id}:done`)) < 60_000)) open++;
      }
      if (freed && deferred.length) {
        const again = await submitRuns(store, deferred, opts);
        for (const [id, job] of again.submitted) log(`${id}  submitted as Slurm job ${job}`);
        for (const [id, why] of again.rejected) console.error(`${id}  failed: ${why}`);
        deferred = again.deferred;
      }
      if (!open) break;
      if (interrupted) {
        log(`stopped following; the jobs keep their place on the cluster (finetune-lab list, finetune-lab stop <run-id>)${deferred.length ? `; not submitted: ${deferred.join(', ')}` : ''}`);
        return 130;
      }
      await sleep(opts.pollMs ?? 2000);
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
  const runs = await Promise.all(ids.map((id) => store.get(id)));
  return runs.every((r) => r?.status.state === 'completed') ? 0 : 1;
}

/** finetune-lab stop on a Slurm run: scancel --signal=INT, scancel after the grace period. */
export async function stopOnSlurm(store: RunStore, run: StoredRun, graceMs = 30_000, log: (l: string) => void = console.log): Promise<number> {
  const jobId = run.slurm?.job_id;
  log(`stopping ${run.id} (Slurm job ${jobId}): scancel --signal=INT, then scancel after ${graceMs / 1000} s…`);
  let r;
  try { r = await stopJob(store, run, { graceMs }); } catch (e) { console.error(`${run.id}: ${(e as Error).message}`); return 1; }
  store.jobs.invalidate();
  const now = await store.get(run.id);
  if (now && !TERMINAL.has(now.status.state)) {
    // Slurm forgot the job, or it ended before the trainer could say so: it was stopped all the same.
    await store.writeStatus(run.id, { ...strip(now.status), state: 'stopped', phase: 'done', finished: Date.now() / 1000, error: r.outcome === 'killed' ? `cancelled after ${graceMs / 1000} s without stopping` : 'stopped before training started' });
  } else if (now) await persistEnd(store, now);
  log(`${run.id}: ${r.outcome}${r.message ? ` (${r.message})` : ''}`);
  return 0;
}
