/**
 * A run inside a webview: its header (label, colour, reconciled state) and its data in a
 * RunSeries (train columns in growing Float64Arrays, eval points, spectra, the divergence mark).
 * Fed only by validated `append` and `header` messages.
 */
import type { RunAppend, RunHeader } from '../../src/core/messages';
import { RunSeries } from '../../src/core/runSeries';

export class RunData extends RunSeries {
  constructor(public info: RunHeader) { super(); }
  append(b: RunAppend): void { this.add(b); }
}

/** A short label: "full lr 3e-3", "LoRA r16 lr 2e-3". */
export function runLabel(i: RunHeader): string {
  const lr = i.lr !== null ? ` lr ${i.lr.toExponential(0)}` : '';
  if (i.method === 'full') return `full${lr}`;
  if (i.method === 'lora') return `LoRA r${i.rank ?? '?'}${lr}`;
  return i.id;
}
