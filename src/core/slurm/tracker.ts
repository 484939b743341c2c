// Asks Slurm about many runs' jobs with one squeue call: the lookups of one listing (made in the same
// tick) are batched, and answers are reused for a few seconds, so a file watcher's burst of refreshes
// does not turn into a burst of squeue calls on a shared login node.
import { SlurmError, slurmClient, type SlurmClient } from './client';
import type { JobView } from './reconcile';

export class JobTracker {
  private cache = new Map<string, { at: number; view: JobView }>();
  private waiting = new Map<string, ((v: JobView) => void)[]>();
  private scheduled = false;

  constructor(readonly client: SlurmClient = slurmClient(), private readonly maxAgeMs = 3000, private readonly clock: () => number = Date.now) {}

  /** The job's view, from a fresh (≤ maxAgeMs) answer or the next batched query. */
  view(jobId: string): Promise<JobView> {
    const hit = this.cache.get(jobId);
    if (hit && this.clock() - hit.at <= this.maxAgeMs) return Promise.resolve(hit.view);
    return new Promise((resolve) => {
      const list = this.waiting.get(jobId) ?? [];
      list.push(resolve);
      this.waiting.set(jobId, list);
      if (!this.scheduled) { this.scheduled = true; setImmediate(() => void this.flush()); }
    });
  }

  /** Forget cached answers (after a submit or a cancel the next read must ask Slurm). */
  invalidate(jobId?: string): void {
    if (jobId) this.cache.delete(jobId); else this.cache.clear();
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.waiting;
    this.waiting = new Map();
    const ids = [...batch.keys()];
    let views: Map<string, JobView>;
    try {
      const r = await this.client.jobs(ids);
      views = new Map(ids.map((id) => {
        const job = r.jobs.get(id);
        return [id, job ? { kind: 'job', job } : { kind: 'missing' }] as [string, JobView];
      }));
    } catch (e) {
      const error = e instanceof SlurmError ? e.message : `Slurm could not be asked: ${(e as Error).message}`;
      views = new Map(ids.map((id) => [id, { kind: 'unknown', error }] as [string, JobView]));
    }
    const at = this.clock();
    for (const [id, resolvers] of batch) {
      const view = views.get(id)!;
      if (view.kind !== 'unknown') this.cache.set(id, { at, view });
      for (const r of resolvers) r(view);
    }
  }
}

let shared: JobTracker | undefined;
/** One tracker per process (the extension host, the CLI), using the real commands. */
export function sharedTracker(): JobTracker {
  shared ??= new JobTracker();
  return shared;
}
