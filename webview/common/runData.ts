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

/**
 * A short label: "full lr 3e-3", "LoRA r16 lr 2e-3"; an analysis run (no learning rate of its own):
 * "LoRA r16 (analysed)", "full (analysed)", and reduce-intruders' "LoRA r16 λ 0.5".
 */
export function runLabel(i: RunHeader): string {
  const lr = i.lr !== null ? ` lr ${i.lr.toExponential(0)}` : '';
  const what = i.method === 'full' ? 'full' : i.method === 'lora' ? `LoRA r${i.rank ?? '?'}` : null;
  if (!what) return i.id;
  if (i.kind === 'analysis') return i.reduceIntruders ? `${what} λ ${i.reduceIntruders.lambda}` : `${what} (analysed)`;
  return `${what}${lr}`;
}
