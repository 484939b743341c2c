import { test } from 'node:test';
import assert from 'node:assert/strict';
import { m4Indices, decimatePoints } from '../../src/core/decimate';

function noisy(n: number, seed = 1): { x: number[]; y: number[] } {
  let s = seed;
  const rnd = (): number => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const x = Array.from({ length: n }, (_, i) => i);
  const y = x.map((i) => 3 * Math.exp(-i / (n / 4)) + 0.3 * rnd());
  return { x, y };
}

test('keeps the first and last point and every bucket min and max', () => {
  const { x, y } = noisy(100_000);
  const buckets = 400;
  const idx = m4Indices(x, y, buckets);
  assert.ok(idx.length <= buckets * 4 && idx.length > buckets);
  assert.equal(idx[0], 0);
  assert.equal(idx[idx.length - 1], x.length - 1);
  for (let k = 1; k < idx.length; k++) assert.ok(idx[k] > idx[k - 1], 'ascending, unique');
  const kept = new Set(idx);
  const span = x[x.length - 1] - x[0];
  // Recompute each bucket's extremes independently and check they were kept.
  const lo = new Map<number, number>(), hi = new Map<number, number>();
  for (let i = 0; i < x.length; i++) {
    const b = Math.min(buckets - 1, Math.floor(((x[i] - x[0]) / span) * buckets));
    if (!lo.has(b) || y[i] < y[lo.get(b)!]) lo.set(b, i);
    if (!hi.has(b) || y[i] > y[hi.get(b)!]) hi.set(b, i);
  }
  for (const i of [...lo.values(), ...hi.values()]) assert.ok(kept.has(i), `extreme ${i} dropped`);
  const ys = Array.from(idx, (i) => y[i]);
  assert.equal(Math.min(...ys), Math.min(...y));
  assert.equal(Math.max(...ys), Math.max(...y));
});

test('a lone loss spike survives decimation by 1000x', () => {
  const n = 1_000_000;
  const x = new Float64Array(n), y = new Float64Array(n);
  for (let i = 0; i < n; i++) { x[i] = i; y[i] = 2 + 0.01 * Math.sin(i); }
  y[654_321] = 9;
  const pts = decimatePoints(x, y, 500);
  assert.ok(pts.length <= 2000);
  assert.ok(pts.some((p) => p.x === 654_321 && p.y === 9));
});

test('small inputs are returned whole; gaps (null) are kept as gaps', () => {
  assert.deepEqual(Array.from(m4Indices([0, 1, 2], [1, 2, 3], 100)), [0, 1, 2]);
  assert.equal(m4Indices([], [], 10).length, 0);
  const x = Array.from({ length: 1000 }, (_, i) => i);
  const y: (number | null)[] = x.map((i) => (i % 7 === 0 ? null : i));
  const pts = decimatePoints(x, y, 10);
  assert.ok(pts.every((p) => p.y === null || typeof p.y === 'number'));
  assert.equal(pts[pts.length - 1].x, 999);
});

test('uneven steps (resumed runs, gaps in x) still keep extremes', () => {
  const x = [0, 1, 2, 3, 1000, 1001, 1002, 5000];
  const y = [5, 1, 9, 2, 7, 0.5, 8, 3];
  const idx = m4Indices(x, y, 1);
  const ys = Array.from(idx, (i) => y[i]);
  assert.ok(ys.includes(9) && ys.includes(0.5) && idx[0] === 0 && idx[idx.length - 1] === 7);
});

test('M4Stream: fed in live batches, keeps every extreme and the spike, ≤ 4 points a bucket', async () => {
  const { M4Stream } = await import('../../src/core/decimate');
  const n = 300_000;
  const x = new Float64Array(n), y = new Float64Array(n);
  let s = 7;
  const rnd = (): number => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < n; i++) { x[i] = i + 1; y[i] = 2 + Math.exp(-i / 50_000) + 0.1 * rnd(); }
  y[123_456] = 9; y[250_001] = -1; y[77] = NaN;
  const m = new M4Stream(300);
  // First a big chunk (a reload's backlog), then many small live batches that outgrow the range.
  let at = 20_000;
  m.update(x, y, at);
  while (at < n) { at = Math.min(n, at + 997); m.update(x, y, at); }
  const idx = m.indices();
  assert.ok(idx.length <= m.maxBuckets * 4, `${idx.length} points`);
  assert.ok(idx.length >= m.maxBuckets / 2, `${idx.length} points`);
  for (let k = 1; k < idx.length; k++) assert.ok(idx[k] > idx[k - 1], 'ascending, unique');
  assert.equal(idx[0], 0);
  assert.equal(idx[idx.length - 1], n - 1);
  const kept = new Set(idx);
  assert.ok(kept.has(123_456) && kept.has(250_001), 'spike and dip kept');
  // Same extremes as a from-scratch stream over all the data.
  const fresh = new M4Stream(300);
  fresh.update(x, y, n);
  const ys = (ix: Uint32Array): number[] => Array.from(ix, (i) => y[i]).filter((v) => Number.isFinite(v));
  assert.equal(Math.max(...ys(idx)), Math.max(...ys(fresh.indices())));
  assert.equal(Math.min(...ys(idx)), Math.min(...ys(fresh.indices())));
  const pts = m.points(x, y);
  assert.ok(pts.some((p) => p.x === 123_457 && p.y === 9));
});

test('M4Stream: each bucket of its final width keeps its min and max', async () => {
  const { M4Stream } = await import('../../src/core/decimate');
  const n = 50_000;
  const x = Array.from({ length: n }, (_, i) => i * 2);
  const y = x.map((v) => Math.sin(v / 97) + (v % 13) / 10);
  const m = new M4Stream(64);
  for (let at = 1000; at < n; at += 333) m.update(x, y, at);
  m.update(x, y, n);
  const kept = new Set(m.indices());
  const { x0, width } = m.buckets;
  assert.ok(width > 0);
  const lo = new Map<number, number>(), hi = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const b = Math.floor((x[i] - x0) / width);
    if (!lo.has(b) || y[i] < y[lo.get(b)!]) lo.set(b, i);
    if (!hi.has(b) || y[i] > y[hi.get(b)!]) hi.set(b, i);
  }
  assert.ok(lo.size <= m.maxBuckets && lo.size >= m.maxBuckets / 2, `${lo.size} buckets in use`);
  for (const i of [...lo.values(), ...hi.values()]) assert.ok(kept.has(i), `extreme ${i} dropped`);
  const small = new M4Stream(64);
  small.update([1, 2, 3], [3, 2, 1]);
  assert.deepEqual(Array.from(small.indices()), [0, 1, 2]);
});
