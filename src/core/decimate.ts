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

/**
 * M4 kept up to date as points arrive, for live charts of a growing series. Bucket width is
 * fixed until the x range outgrows `maxBuckets` buckets; then neighbouring buckets are merged
 * in pairs (the width doubles) — merging two M4 buckets is exact (first of the left, last of
 * the right, the lower min, the higher max), so every extreme still survives and the cost is
 * O(buckets), not O(points). A batch of k new points costs O(k) plus a rare O(buckets) merge;
 * between `maxBuckets / 2` and `maxBuckets` buckets are in use (with maxBuckets = canvas width
 * / 2: 1–2 points per pixel column).
 *
 * Series up to 4·maxBuckets points are returned whole (nothing to decimate). x is expected
 * ascending; a point left of the first bucket goes into the first bucket (it is still kept
 * if extreme). y: NaN/null are gaps, kept as first/last but never min/max.
 */
export class M4Stream {
  private n = 0;
  private x0 = 0;
  private w = 0; // 0 = not started (series still small)
  private used = 0; // buckets 0..used-1 may be non-empty
  private yRef: ArrayLike<number | null> = [];
  private readonly first: Int32Array;
  private readonly last: Int32Array;
  private readonly lo: Int32Array;
  private readonly hi: Int32Array;
  readonly maxBuckets: number;

  constructor(maxBuckets: number) {
    this.maxBuckets = Math.max(2, maxBuckets + (maxBuckets % 2)); // even, so pairs merge
    this.first = new Int32Array(this.maxBuckets).fill(-1);
    this.last = new Int32Array(this.maxBuckets).fill(-1);
    this.lo = new Int32Array(this.maxBuckets).fill(-1);
    this.hi = new Int32Array(this.maxBuckets).fill(-1);
  }

  /** The current buckets: bucket b holds x in [x0 + b·width, x0 + (b+1)·width); width 0 = not decimating. */
  get buckets(): { x0: number; width: number } { return { x0: this.x0, width: this.w }; }

  /** Points consumed so far. */
  get length(): number { return this.n; }

  /** Takes in points [length, n) of x/y (the arrays may have grown; earlier points must not change). */
  update(x: ArrayLike<number>, y: ArrayLike<number | null>, n = x.length): void {
    if (n < this.n) this.reset();
    this.yRef = y; // mergePairs compares the pairs' extremes by value
    if (this.w === 0) {
      if (n <= this.maxBuckets * 4) { this.n = n; return; }
      this.x0 = x[0];
      const span = x[n - 1] - this.x0;
      // Slightly wider than span/maxBuckets so the last point lands in the last bucket.
      this.w = span > 0 ? (span / this.maxBuckets) * (1 + 1e-9) : 1;
      this.n = 0;
    }
    const { first, last, lo, hi } = this;
    let inv = 1 / this.w;
    for (let i = this.n; i < n; i++) {
      let b = Math.floor((x[i] - this.x0) * inv);
      if (b < 0) b = 0;
      while (b >= this.maxBuckets) { this.mergePairs(); inv = 1 / this.w; b = Math.floor((x[i] - this.x0) * inv); }
      if (first[b] < 0) first[b] = i;
      last[b] = i;
      if (b >= this.used) this.used = b + 1;
      const v = y[i];
      if (v === null || !(v === v) || v === Infinity || v === -Infinity) continue;
      if (lo[b] < 0 || v < (y[lo[b]] as number)) lo[b] = i;
      if (hi[b] < 0 || v > (y[hi[b]] as number)) hi[b] = i;
    }
    this.n = n;
  }

  /** The kept indices, ascending, each once. */
  indices(): Uint32Array {
    if (this.w === 0) { const all = new Uint32Array(this.n); for (let i = 0; i < this.n; i++) all[i] = i; return all; }
    const out = new Uint32Array(this.used * 4);
    let k = 0;
    const ids = [0, 0, 0, 0];
    for (let b = 0; b < this.used; b++) {
      if (this.first[b] < 0) continue;
      ids[0] = this.first[b]; ids[1] = this.lo[b]; ids[2] = this.hi[b]; ids[3] = this.last[b];
      ids.sort((p, q) => p - q);
      for (const id of ids) if (id >= 0 && (k === 0 || out[k - 1] !== id)) out[k++] = id;
    }
    return out.slice(0, k);
  }

  /** {x, y} points of the kept indices, for chart.js (parsing: false). */
  points(x: ArrayLike<number>, y: ArrayLike<number | null>): { x: number; y: number | null }[] {
    const idx = this.indices();
    const out = new Array<{ x: number; y: number | null }>(idx.length);
    for (let k = 0; k < idx.length; k++) {
      const v = y[idx[k]];
      out[k] = { x: x[idx[k]], y: v === null || Number.isNaN(v) ? null : v };
    }
    return out;
  }

  reset(): void {
    this.n = 0; this.w = 0; this.used = 0;
    this.first.fill(-1); this.last.fill(-1); this.lo.fill(-1); this.hi.fill(-1);
  }

  private mergePairs(): void {
    const { first, last, lo, hi } = this;
    const half = this.maxBuckets / 2;
    for (let k = 0; k < half; k++) {
      const a = 2 * k, b = a + 1;
      const f = first[a] >= 0 ? first[a] : first[b];
      const l = last[b] >= 0 ? last[b] : last[a];
      const nlo = pick(lo[a], lo[b], this.yRef, (p, q) => p < q);
      const nhi = pick(hi[a], hi[b], this.yRef, (p, q) => p > q);
      first[k] = f; last[k] = l; lo[k] = nlo; hi[k] = nhi;
    }
    first.fill(-1, half); last.fill(-1, half); lo.fill(-1, half); hi.fill(-1, half);
    this.used = Math.ceil(this.used / 2);
    this.w *= 2;
  }
}

function pick(a: number, b: number, y: ArrayLike<number | null>, better: (p: number, q: number) => boolean): number {
  if (a < 0) return b;
  if (b < 0) return a;
  return better(y[b] as number, y[a] as number) ? b : a;
}
