// Kill Trainer (docs/DECISIONS.md "Reliability and security"): SIGKILL to a run's process group at
// once, for a trainer that no longer answers. The reason is written into status.json first, so
// whichever launcher (this window, another window, the CLI) sees the process exit finds the run
// already ended and keeps that reason instead of "killed by SIGKILL".
import type { RunStatus } from './generated/status';
import type { StoredRun } from './runStore';
import { pidAlive } from './reconcile';
import { killGroup } from './trainerLaunch';
import { isTrainerOf } from './trainerProcess';

export type RunEnd = { state: RunStatus['state']; error: string };

/** What a killed run's status says: "killed: stalled (no heartbeat for 75 s)" or "killed by the user (Kill Trainer)". */
export function killReason(status: StoredRun['status'], now = Date.now() / 1000): string {
  if (!status.stale) return 'killed by the user (Kill Trainer)';
  return status.heartbeat != null ? `killed: stalled (no heartbeat for ${Math.round(now - status.heartbeat)} s)` : 'killed: stalled (no heartbeat)';
}

/**
 * Kills a running run's trainer and records why. `ownPid` is the pid of a trainer this process
 * started (trusted); otherwise status.json's pid is signalled only if it is a trainer of the run's
 * folder. Returns the reason written, or undefined when nothing was killed (and why not).
 */
export async function killTrainer(run: StoredRun, opts: {
  ownPid?: number;
  record: (run: StoredRun, end: RunEnd) => Promise<void>;
  /** Re-reads the run after the kill (a heartbeat may land between the write and the signal). */
  reread: () => Promise<StoredRun | undefined>;
}): Promise<{ killed: true; why: string } | { killed: false; why: string }> {
  const pid = opts.ownPid ?? run.status.pid ?? undefined;
  if (!pid || (opts.ownPid === undefined && !isTrainerOf(pid, run.dir))) return { killed: false, why: `pid ${pid ?? '(none)'} is not a trainer of this run` };
  const why = killReason(run.status);
  await opts.record(run, { state: 'failed', error: why });
  killGroup(pid);
  for (let i = 0; i < 50 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  const now = await opts.reread();
  if (now && (now.status.state !== 'failed' || now.status.error !== why)) await opts.record(now, { state: 'failed', error: why });
  return { killed: true, why };
}
