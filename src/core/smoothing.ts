/**
 * Debiased exponential moving average, the way TensorBoard's scalar dashboard smooths
 * (tensorboard/webapp/widgets/line_chart_v2/lib/data_transformer.ts, `classicSmoothing`):
 * an EMA started at 0 is biased towards 0 for the first ~1/(1-w) points, so each value is
 * divided by 1 - w^n (as Adam debiases its moments). A constant series stays constant.
 * Non-finite values (NaN, ±Infinity) and nulls pass through and do not enter the average.
 */
export class DebiasedEma {
  private last = 0;
  /** w^n for the n values taken in so far, kept as a running product (Math.pow per point cost ~40 ms a million). */
  private wn = 1;
  private readonly w: number;
  constructor(weight: number) { this.w = Math.min(Math.max(weight, 0), 0.999); }
  /** The smoothed value at y (live updates push only the new points). */
  push(y: number | null): number {
    if (y === null || !Number.isFinite(y)) return y === null ? NaN : y;
    this.last = this.last * this.w + (1 - this.w) * y;
    this.wn *= this.w;
    return this.w === 0 ? this.last : this.last / (1 - this.wn);
  }
}

export function debiasedEma(values: ArrayLike<number | null>, weight: number): Float64Array {
  const ema = new DebiasedEma(weight);
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = ema.push(values[i]);
  return out;
}
