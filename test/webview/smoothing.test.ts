import { test } from 'node:test';
import assert from 'node:assert/strict';
import { debiasedEma } from '../../src/core/smoothing';

test('a constant series stays constant at every weight', () => {
  for (const w of [0, 0.3, 0.6, 0.9, 0.99, 0.999]) {
    const out = debiasedEma(new Array(500).fill(2.5), w);
    for (const v of out) assert.ok(Math.abs(v - 2.5) < 1e-9, `w=${w}: ${v}`);
  }
});

test('debiased at the start: the first value is the first point, not pulled to 0', () => {
  const out = debiasedEma([10, 10, 0], 0.9);
  assert.equal(out[0], 10);
  assert.ok(Math.abs(out[1] - 10) < 1e-12);
  // third: (0.9*(0.9*1+0.1*10... ) computed by hand: last=0.1*10=1, then 0.9*1+1=1.9, then 0.9*1.9=1.71; /(1-0.729)
  assert.ok(Math.abs(out[2] - 1.71 / 0.271) < 1e-9);
});

test('weight 0 is the identity; nulls and NaN pass through without poisoning the average', () => {
  assert.deepEqual(Array.from(debiasedEma([1, 2, 3], 0)), [1, 2, 3]);
  const out = debiasedEma([1, null, NaN, 1], 0.5);
  assert.equal(out[0], 1);
  assert.ok(Number.isNaN(out[1]) && Number.isNaN(out[2]));
  assert.ok(Math.abs(out[3] - 1) < 1e-12);
});

test('smooths noise: variance drops, mean is kept', () => {
  const ys = Array.from({ length: 2000 }, (_, i) => 3 + (i % 2 ? 0.5 : -0.5));
  const out = debiasedEma(ys, 0.9).slice(100);
  const mean = out.reduce((a, b) => a + b, 0) / out.length;
  assert.ok(Math.abs(mean - 3) < 0.01);
  assert.ok(Math.max(...out) - Math.min(...out) < 0.2);
});
