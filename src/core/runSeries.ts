/**
 * Everything drawable of one run, accumulated from `RunAppend` batches: train columns (one
 * Column per train field of the schema), eval points, spectrum records and the divergence mark.
 * Appending is linear in the batch; `snapshot()` is one copy of what is held. The host keeps one
 * per run to replay a reopened webview; the webview keeps one per run to draw.
 */
import { Column } from './column';
import { TRAIN_FIELDS, type TrainField } from './generated/trainFields';
import type { Divergence, EvalPoint, RunAppend, SpectrumRecord, TrainColumns } from './messages';

export class RunSeries {
  readonly train = Object.fromEntries(TRAIN_FIELDS.map((f) => [f.key, new Column()])) as Record<TrainField, Column>;
  readonly evals: EvalPoint[] = [];
  readonly spectra: SpectrumRecord[] = [];
  diverged: Divergence | null = null;

  get trainLength(): number { return this.train.step.length; }

  get empty(): boolean { return this.trainLength === 0 && this.evals.length === 0 && this.spectra.length === 0 && !this.diverged; }

  add(a: RunAppend): void {
    if (a.train) for (const f of TRAIN_FIELDS) this.train[f.key].push(a.train[f.key]);
    if (a.evals?.length) {
      const last = this.evals.at(-1)?.step ?? -Infinity;
      for (const e of a.evals) this.evals.push(e);
      // Kept in step order; batches arrive in order, so this sorts only after a resumed run's rewind.
      if (a.evals[0].step < last || !a.evals.every((e, i) => i === 0 || a.evals![i - 1].step <= e.step)) this.evals.sort((x, y) => x.step - y.step);
    }
    if (a.spectra) for (const s of a.spectra) this.spectra.push(s);
    if (a.diverged) this.diverged = a.diverged;
  }

  clear(): void {
    for (const f of TRAIN_FIELDS) this.train[f.key].clear();
    this.evals.length = 0;
    this.spectra.length = 0;
    this.diverged = null;
  }

  /** Everything held, as one batch in buffers of its own; undefined when nothing is held. */
  snapshot(runId: string): RunAppend | undefined {
    if (this.empty) return undefined;
    const out: RunAppend = { runId };
    if (this.trainLength) out.train = Object.fromEntries(TRAIN_FIELDS.map((f) => [f.key, this.train[f.key].copy()])) as TrainColumns;
    if (this.evals.length) out.evals = [...this.evals];
    if (this.spectra.length) out.spectra = [...this.spectra];
    if (this.diverged) out.diverged = this.diverged;
    return out;
  }
}

/** Batches of one run as one batch, in linear time (the host coalesces up to 100 ms of them). */
export function concatAppends(runId: string, batches: readonly RunAppend[]): RunAppend | undefined {
  if (batches.length === 1) return batches[0];
  const s = new RunSeries();
  for (const b of batches) s.add(b);
  return s.snapshot(runId);
}
