/**
 * A run's data inside the webview: train columns in growing Float64Arrays (capacity doubles,
 * so appending a batch is amortised O(batch), never a copy of a million points), eval points
 * and spectrum records in arrays. Fed only by validated `append` messages.
 */
import { TRAIN_COLUMNS, type EvalPoint, type RunAppend, type RunInfo, type SpectrumRecord, type TrainColumns } from '../../src/core/messages';

export class Column {
  data: Float64Array = new Float64Array(1024);
  length = 0;
  push(src: Float64Array): void {
    // A first batch bigger than the buffer (a reload's backlog: up to millions of points) is
    // adopted as is: it is this page's own copy (postMessage cloned or transferred it), so
    // copying it again would only cost first paint. The next push grows it as below.
    if (this.length === 0 && src.length > this.data.length && src.byteOffset === 0 && src.length === src.buffer.byteLength / 8) {
      this.data = src;
      this.length = src.length;
      return;
    }
    if (this.length + src.length > this.data.length) {
      let cap = this.data.length;
      while (cap < this.length + src.length) cap *= 2;
      const next = new Float64Array(cap);
      next.set(this.data.subarray(0, this.length));
      this.data = next;
    }
    this.data.set(src, this.length);
    this.length += src.length;
  }
  view(): Float64Array { return this.data.subarray(0, this.length); }
}

export class RunData {
  readonly train = Object.fromEntries(TRAIN_COLUMNS.map((c) => [c, new Column()])) as Record<keyof TrainColumns, Column>;
  evals: EvalPoint[] = [];
  spectra: SpectrumRecord[] = [];
  constructor(public info: RunInfo) {}
  get trainLength(): number { return this.train.step.length; }
  append(b: RunAppend): void {
    if (b.train) for (const c of TRAIN_COLUMNS) this.train[c].push(b.train[c]);
    if (b.evals) { this.evals.push(...b.evals); this.evals.sort((a, c) => a.step - c.step); }
    if (b.spectra) this.spectra.push(...b.spectra);
  }
}

/** A short label: "full lr 3e-3", "LoRA r16 lr 2e-3". */
export function runLabel(i: RunInfo): string {
  const lr = i.lr !== null ? ` lr ${i.lr.toExponential(0).replace('e-', 'e-')}` : '';
  if (i.method === 'full') return `full${lr}`;
  if (i.method === 'lora') return `LoRA r${i.rank ?? '?'}${lr}`;
  return i.id;
}
