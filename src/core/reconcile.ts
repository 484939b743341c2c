// What a run's state really is, from status.json plus what a reader can check: the trainer may have
// died without a word (killed, out of memory, machine rebooted). DECISIONS.md: a reader that finds the
// pid gone and no run_finished in events marks the run failed: process disappeared.
import type { RunStatus } from './generated/status';
import type { RunEvent } from './generated/events';

/**
 * A heartbeat older than this, with the process alive, flags the run stale ("stalled" in the editor;
 * the trainer beats every 5 s). The editor takes it from finetuneLab.stalledAfterSeconds.
 */
export const STALE_AFTER_S = 60;

export type ReconciledStatus = RunStatus & {
  /** Running, process alive, but no heartbeat for staleAfterS: hung (or frozen: SIGSTOP, a dead file system). */
  stale?: boolean;
  /** Why the state differs from status.json, when it does. */
  reconciled?: string;
  /** A Slurm run's job as Slurm reports it (slurm/reconcile.ts): id, state, reason, how it reads. */
  slurm?: { jobId: string; state: string | null; reason: string | null; nodes?: string | null; text: string; unknown?: string };
};

export interface ReconcileContext {
  pidAlive: (pid: number) => boolean;
  /** The last event of events.jsonl (a run_finished there wins over status.json). */
  lastEvent?: RunEvent;
  /** Unix seconds. */
  now: number;
  /** Seconds without a heartbeat before a live process is flagged stale (default STALE_AFTER_S). */
  staleAfterS?: number;
}

export function reconcileStatus(status: RunStatus, ctx: ReconcileContext): ReconciledStatus {
  const ev = ctx.lastEvent;
  // 1) The trainer's last word: run_finished wins (status.json may lag it or be from before a crash).
  if (ev?.type === 'run_finished') {
    if (status.state === ev.status && (status.error ?? null) === (ev.error ?? null)) return { ...status };
    return {
      ...status, state: ev.status, error: ev.error ?? null, phase: 'done',
      step: ev.step ?? status.step, finished: status.finished ?? ev.time, reconciled: 'run_finished in events.jsonl',
    };
  }
  if (status.state !== 'running') return { ...status };
  // 2) Running, but the process is gone and said nothing: it died.
  if (status.pid != null && !ctx.pidAlive(status.pid)) {
    return { ...status, state: 'failed', error: status.error ?? 'process disappeared', phase: 'done', reconciled: 'process disappeared' };
  }
  // 3) Running and alive, but quiet: flag it, do not fail it.
  if (status.heartbeat != null && ctx.now - status.heartbeat > (ctx.staleAfterS ?? STALE_AFTER_S)) return { ...status, stale: true };
  return { ...status };
}

/** process.kill(pid, 0): true while a process with that id exists (EPERM means it exists but is not ours). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
