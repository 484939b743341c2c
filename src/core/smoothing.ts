/**
 * Debiased exponential moving average, the way TensorBoard's scalar dashboard smooths
 * (tensorboard/webapp/widgets/line_chart_v2/lib/data_transformer.ts, `classicSmoothing`):
 * an EMA started at 0 is biased towards 0 for the first ~1/(1-w) points, so each value is
 * divided by 1 - w^n (as Adam debiases its moments). A constant series stays constant.
 * Non-finite values (NaN, ±Infinity) and nulls pass through and do not enter the average.
 */
export function debiasedEma(values: ArrayLike<number | null>, weight: number): Float64Array {
  const w = Math.min(Math.max(weight, 0), 0.999);
  const out = new Float64Array(values.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const y = values[i];
    if (y === null || !Number.isFinite(y)) { out[i] = y === null ? NaN : y; continue; }
    last = last * w + (1 - w) * y;
    n++;
    const debias = w === 0 ? 1 : 1 - Math.pow(w, n);
    out[i] = last / debias;
  }
  return out;
}
