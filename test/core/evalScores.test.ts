// The Pareto view's axis choice (the aggregate or any single task of a role, with its own change
// from the base and direction) and the dashboard's share of wall time that evaluation took.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { axisOptions, axisPoint, evalShare, pickAxis, taskDetail } from '../../src/core/evalScores';
import type { EvalPoint, EvalTaskScore } from '../../src/core/messages';
import { toAppend } from '../../src/panels/wire';

const task = (name: string, role: 'learning' | 'forgetting', value: number | null, extra: Partial<EvalTaskScore> = {}): EvalTaskScore => ({
  name, role, type: 'lm_eval', metric: 'acc_norm', value, higherIsBetter: true, version: '1.0', n: 200, error: null, ...extra,
});

function point(step: number, time: number, seconds: number, hs: number | null, kl: number, code: number): EvalPoint {
  const f = [task('hellaswag', 'forgetting', hs, hs === null ? { error: 'dataset gone' } : {}), task('kl', 'forgetting', kl, { type: 'kl_to_base', metric: 'kl', higherIsBetter: false, version: null, n: 16 })];
  return {
    step, time, seconds, tasks: [task('code', 'learning', code, { type: 'loss', metric: 'loss', higherIsBetter: false, version: null, n: 48 }), ...f],
    learning: { value: code, higherIsBetter: false, delta: code - 4 },
    forgetting: hs === null ? null : { value: (hs - kl) / 2, higherIsBetter: true, delta: (hs - kl) / 2 - 0.3 },
  };
}

const run = { evals: [point(0, 100, 2, 0.6, 0, 4), point(50, 160, 3, 0.55, 0.1, 3), point(100, 220, 3, null, 0.2, 2.5)] };

test('axis options: the aggregate first, then each task with its metric, version and n', () => {
  const f = axisOptions([run], 'forgetting');
  assert.deepEqual(f.map((o) => o.key), ['aggregate', 'task:hellaswag', 'task:kl']);
  assert.equal(f[0].label, 'mean of hellaswag + kl (losses negated)');
  assert.equal(f[0].name, 'mean of hellaswag + kl');
  assert.equal(f[1].label, 'hellaswag (acc_norm, v1.0, n=200)');
  assert.deepEqual([f[2].label, f[2].higherIsBetter], ['kl (kl, n=16)', false]);
  // a role with one task: the aggregate is that task, offered once under its own name
  const l = axisOptions([run], 'learning');
  assert.deepEqual(l.map((o) => [o.key, o.label, o.metric]), [['aggregate', 'code (loss, n=48)', 'loss']]);
  assert.equal(taskDetail({ metric: 'exact_match,strict-match', version: '3.0', n: 50 }), 'exact_match,strict-match, v3.0, n=50');
});

test('the chosen axis is kept while offered, else the aggregate', () => {
  const f = axisOptions([run], 'forgetting');
  assert.equal(pickAxis(f, 'task:kl'), 'task:kl');
  assert.equal(pickAxis(f, 'task:winogrande'), 'aggregate');
  assert.equal(pickAxis(f, undefined), 'aggregate');
  assert.equal(pickAxis([], 'task:kl'), undefined);
});

test('a single task on an axis: its value, its change from its own step 0, its direction; none where it failed', () => {
  assert.deepEqual(axisPoint(run.evals, 1, 'forgetting', 'task:kl'), { value: 0.1, delta: 0.1, higherIsBetter: false });
  const hs = axisPoint(run.evals, 1, 'forgetting', 'task:hellaswag')!;
  assert.equal(hs.higherIsBetter, true);
  assert.ok(Math.abs(hs.delta - -0.05) < 1e-12);
  assert.equal(axisPoint(run.evals, 2, 'forgetting', 'task:hellaswag'), undefined, 'failed at step 100: no point');
  assert.equal(axisPoint(run.evals, 2, 'forgetting', 'aggregate'), undefined, 'the aggregate is unknown where a task failed');
  assert.deepEqual(axisPoint(run.evals, 2, 'learning', 'aggregate'), { value: 2.5, delta: -1.5, higherIsBetter: false });
});

test('evaluation share of wall time, over resumed segments', () => {
  // one segment from t=90: evals took 2 + 3 + 3 = 8 s of 220 - 90 = 130 s
  const s = evalShare(run.evals, [90])!;
  assert.deepEqual([s.evalSeconds, s.wallSeconds], [8, 130]);
  assert.ok(Math.abs(s.share - 8 / 130) < 1e-12);
  // resumed at t=200: the pause between 160 and 200 is not wall time of the run
  const r = evalShare(run.evals, [90, 200])!;
  assert.deepEqual([r.evalSeconds, r.wallSeconds], [8, (160 - 90) + (220 - 200)]);
  assert.equal(evalShare([{ ...run.evals[0], seconds: null }], [90]), undefined, 'an older trainer wrote no seconds');
});

test('eval events carry type, version, n, error and seconds to the views', () => {
  const a = toAppend('r', [{ type: 'eval', time: 5, step: 0, seconds: 1.5, learning: null, forgetting: null, tasks: [
    { name: 'hs', role: 'forgetting', type: 'lm_eval', metric: 'acc_norm', value: 0.3, higher_is_better: true, version: '1.0', n: 100 },
    { name: 'bad', role: 'forgetting', type: 'lm_eval', metric: 'acc', value: null, higher_is_better: true, error: 'boom', n: 0 },
  ] }])!;
  assert.deepEqual(a.evals![0], { step: 0, time: 5, seconds: 1.5, learning: null, forgetting: null, tasks: [
    { name: 'hs', role: 'forgetting', type: 'lm_eval', metric: 'acc_norm', value: 0.3, higherIsBetter: true, version: '1.0', n: 100, error: null },
    { name: 'bad', role: 'forgetting', type: 'lm_eval', metric: 'acc', value: null, higherIsBetter: true, version: null, n: 0, error: 'boom' },
  ] });
});
