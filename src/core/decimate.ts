/**
 * Decimation for drawing that keeps every extreme: M4 (Jugel et al., VLDB 2014). The x range
 * is cut into `buckets` equal-width buckets; from each we keep the first, last, minimum and
 * maximum point. Every bucket's min and max survive, hence the global ones and any lone loss
 * spike — unlike TensorBoard's 1000-point reservoir sample, which drops spikes at random.
 * With buckets = canvas width / 2 that is at most 2 points per pixel column.
 *
 * Input: x ascending (steps); y may hold NaN/null for gaps (skipped for min/max).
 * Output: the kept indices, ascending, each once.
 */
export function m4Indices(x: ArrayLike<number>, y: ArrayLike<number | null>, buckets: number, n = x.length): Uint32Array {
  if (n === 0) return new Uint32Array(0);
  if (n <= buckets * 4 || buckets < 1) {
    const all = new Uint32Array(n);
    for (let i = 0; i < n; i++) all[i] = i;
    return all;
  }
  const x0 = x[0];
  const scale = buckets / (x[n - 1] - x0 || 1); // hoisted: one multiply a point, no divide
  const keep: number[] = [];
  let b = -1;
  let first = 0, last = 0, lo = -1, hi = -1;
  const flush = (): void => {
    // Sort the (up to) four indices so the output stays ascending.
    const ids = [first, lo, hi, last].filter((v) => v >= 0).sort((p, q) => p - q);
    for (const id of ids) if (keep.length === 0 || keep[keep.length - 1] !== id) keep.push(id);
  };
  for (let i = 0; i < n; i++) {
    const bi = Math.min(buckets - 1, Math.floor((x[i] - x0) * scale));
    if (bi !== b) {
      if (b >= 0) flush();
      b = bi; first = i; lo = -1; hi = -1;
    }
    last = i;
    const v = y[i];
    if (v === null || !Number.isFinite(v)) continue;
    if (lo < 0 || v < (y[lo] as number)) lo = i;
    if (hi < 0 || v > (y[hi] as number)) hi = i;
  }
  flush();
  return Uint32Array.from(keep);
}

/** Points {x, y} of the kept indices, for chart.js (parsing: false). */
export function decimatePoints(x: ArrayLike<number>, y: ArrayLike<number | null>, buckets: number, n = x.length): { x: number; y: number | null }[] {
  const idx = m4Indices(x, y, buckets, n);
  const out = new Array<{ x: number; y: number | null }>(idx.length);
  for (let k = 0; k < idx.length; k++) {
    const v = y[idx[k]];
    out[k] = { x: x[idx[k]], y: v === null || Number.isNaN(v) ? null : v };
  }
  return out;
}
