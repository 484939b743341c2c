// A Slurm run's state, from status.json, events.jsonl and the job as Slurm reports it. The trainer's
// pid is on a compute node, so it is never checked here: the job's state stands in for it.
//   - the trainer's run_finished (of this submission) wins, as for local runs; a job the scheduler
//     ended (time limit, preemption, node failure) gets that reason in the error;
//   - pending -> queued (with Slurm's reason), running -> running;
//   - ended without a run_finished -> failed with Slurm's state and exit code (cancelled -> stopped);
//   - a job Slurm no longer knows -> its last state seen (slurm.json), else failed;
//   - Slurm cannot be asked (no squeue here, controller down) -> status.json as it is.
import type { RunEvent } from '../generated/events';
import type { SlurmRecord } from '../generated/slurm';
import type { RunStatus } from '../generated/status';
import { STALE_AFTER_S, type ReconciledStatus } from '../reconcile';
import { ACTIVE_STATES, describeJob, isTerminal, PENDING_STATES, SCHEDULER_ENDED, type JobInfo } from './jobs';

/** What the tracker knows of a run's job: Slurm's answer, "missing" (it does not know the job), or unknown. */
export type JobView = { kind: 'job'; job: JobInfo } | { kind: 'missing' } | { kind: 'unknown'; error: string };

export interface SlurmReconcileContext {
  record: SlurmRecord;
  view: JobView;
  /** The last run_finished of events.jsonl, if any. */
  finished?: Extract<RunEvent, { type: 'run_finished' }>;
  /** Unix seconds. */
  now: number;
  /** Seconds without a heartbeat before a running run is flagged stale (default STALE_AFTER_S). */
  staleAfterS?: number;
}

export type SlurmReconciled = ReconciledStatus;

/** The job as last recorded in slurm.json, when Slurm has forgotten it. */
function recorded(r: SlurmRecord): JobInfo | undefined {
  return r.state ? { jobId: r.job_id, state: r.state, reason: r.reason ?? null, nodes: r.nodes ?? null, exitCode: r.exit_code ?? null, source: 'squeue' } : undefined;
}

export function reconcileSlurm(status: RunStatus, ctx: SlurmReconcileContext): SlurmReconciled {
  const { record } = ctx;
  const submitted = record.jobs[record.jobs.length - 1]?.submitted ?? 0;
  // A run_finished from before this submission (the run was stopped, then resumed) says nothing now.
  const finished = ctx.finished && ctx.finished.time >= submitted - 1 ? ctx.finished : undefined;
  let job: JobInfo | undefined;
  if (ctx.view.kind === 'job') job = ctx.view.job;
  else if (ctx.view.kind === 'missing') job = recorded(record);
  const info = job
    ? { jobId: job.jobId, state: job.state, reason: job.reason, nodes: job.nodes, text: describeJob(job) }
    : { jobId: record.job_id, state: record.state ?? null, reason: record.reason ?? null, nodes: record.nodes ?? null, text: `job ${record.job_id}` };
  const slurm = ctx.view.kind === 'unknown' ? { ...info, unknown: ctx.view.error } : info;
  const ended = job && SCHEDULER_ENDED[job.state] ? describeJob(job) : undefined;

  // Requeued (preemption, node failure with --requeue): the job waits to run again and will resume.
  if (finished && job && PENDING_STATES.has(job.state)) {
    return { ...status, state: 'queued', phase: 'starting', reconciled: 'job requeued', slurm: { ...slurm, text: `${slurm.text}, requeued: resumes from its checkpoint` } };
  }
  if (finished) {
    const error = finished.status !== 'completed' && ended ? ended : finished.error ?? null;
    if (status.state === finished.status && (status.error ?? null) === error) return { ...status, slurm };
    return {
      ...status, state: finished.status, error, phase: 'done', step: finished.step ?? status.step,
      finished: status.finished ?? finished.time, reconciled: 'run_finished in events.jsonl', slurm,
    };
  }
  // Already ended and recorded (by the trainer, or by a tracker before): keep it.
  if (status.state !== 'queued' && status.state !== 'running') return { ...status, slurm };
  if (ctx.view.kind === 'unknown') return { ...status, slurm };
  if (!job) {
    return {
      ...status, state: 'failed', phase: 'done', reconciled: 'job unknown to Slurm', slurm,
      error: `Slurm no longer knows job ${record.job_id} (not in squeue, scontrol or sacct) and the trainer wrote no result; see train.log`,
    };
  }
  if (PENDING_STATES.has(job.state)) return { ...status, state: 'queued', slurm };
  if (ACTIVE_STATES.has(job.state)) {
    const base: SlurmReconciled = status.state === 'queued'
      ? { ...status, state: 'running', phase: 'starting', started: status.started ?? ctx.now, reconciled: 'job running', slurm }
      : { ...status, slurm };
    if (base.state === 'running' && status.state === 'running' && status.heartbeat != null && ctx.now - status.heartbeat > (ctx.staleAfterS ?? STALE_AFTER_S)) base.stale = true;
    return base;
  }
  if (isTerminal(job.state)) {
    const neverRan = status.state === 'queued';
    if (job.state === 'CANCELLED') {
      return { ...status, state: 'stopped', phase: 'done', reconciled: 'job cancelled', slurm, error: `Slurm job ${job.jobId} was cancelled${neverRan ? ' before it started' : ''}` };
    }
    return {
      ...status, state: 'failed', phase: 'done', reconciled: 'job ended', slurm,
      error: `${ended ?? `Slurm ${describeJob(job)}`}; the trainer wrote no result (see train.log)`,
    };
  }
  return { ...status, slurm };
}
