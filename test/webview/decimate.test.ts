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
