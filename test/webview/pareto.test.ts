import { test } from 'node:test';
import assert from 'node:assert/strict';
import { paretoFrontier, dominates } from '../../src/core/pareto';

const losses = { forgettingHigherIsBetter: false, learningHigherIsBetter: false };
const accs = { forgettingHigherIsBetter: true, learningHigherIsBetter: true };

test('losses on both axes: low forgetting loss and low learning loss win', () => {
  // forgetting = English loss (lower = forgot less), learning = code loss (lower = learnt more)
  const pts = [
    { forgetting: 2.11, learning: 2.40 }, // base: forgets nothing, learns nothing -> on the frontier
    { forgetting: 2.45, learning: 1.91 }, // full, best learning
    { forgetting: 2.42, learning: 2.11 }, // lora r64
    { forgetting: 2.47, learning: 2.20 }, // dominated by the full run and r64
    { forgetting: 2.30, learning: 2.17 }, // in between, frontier
  ];
  assert.deepEqual(paretoFrontier(pts, losses), [0, 4, 2, 1]);
  assert.ok(dominates(pts[1], pts[3], losses));
  assert.ok(!dominates(pts[0], pts[1], losses));
});

test('accuracies on both axes flip the directions', () => {
  const pts = [
    { forgetting: 0.60, learning: 0.10 }, // base
    { forgetting: 0.55, learning: 0.30 },
    { forgetting: 0.50, learning: 0.25 }, // dominated by 1
    { forgetting: 0.58, learning: 0.05 }, // dominated by 0
  ];
  assert.deepEqual(paretoFrontier(pts, accs), [0, 1]);
});

test('mixed directions: accuracy forgetting, loss learning', () => {
  const d = { forgettingHigherIsBetter: true, learningHigherIsBetter: false };
  const pts = [{ forgetting: 0.6, learning: 3 }, { forgetting: 0.5, learning: 2 }, { forgetting: 0.4, learning: 2.5 }];
  assert.deepEqual(paretoFrontier(pts, d), [0, 1]);
});

test('ties, duplicates and non-finite points', () => {
  const pts = [{ forgetting: 1, learning: 1 }, { forgetting: 1, learning: 1 }, { forgetting: NaN, learning: 0 }, { forgetting: 1, learning: 0.5 }];
  assert.deepEqual(paretoFrontier(pts, losses), [3]);
  assert.deepEqual(paretoFrontier([], losses), []);
});
