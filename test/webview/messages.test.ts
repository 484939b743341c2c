import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isHostToWebview, isWebviewToHost } from '../../src/core/messages';
import { toAppend, runHeaderFrom } from '../../src/panels/wire';
import { concatAppends } from '../../src/core/runSeries';
import { TRAIN_FIELDS } from '../../src/core/generated/trainFields';

test('webview -> host: accepts the protocol, rejects the rest', () => {
  assert.ok(isWebviewToHost({ type: 'ready' }));
  assert.ok(isWebviewToHost({ type: 'openRun', runId: 'code-cpt-20250101-000000-full' }));
  assert.ok(isWebviewToHost({ type: 'export', format: 'csv', name: 'loss.csv', data: 'step,loss\n1,2' }));
  assert.ok(isWebviewToHost({ type: 'export', format: 'png', name: 'loss.png', data: 'data:image/png;base64,AAAA' }));
  for (const bad of [
    null, 'ready', 42, [], {}, { type: 'nope' }, { type: 'openRun' }, { type: 'openRun', runId: 7 }, { type: 'openRun', runId: '' },
    { type: 'export', format: 'exe', name: 'a', data: '' },
    { type: 'export', format: 'csv', name: '../../etc/passwd', data: '' },
    { type: 'export', format: 'csv', name: '.bashrc', data: '' },
    { type: 'export', format: 'png', name: 'a.png', data: 'javascript:alert(1)' },
    { type: 'log', level: 'fatal', message: 'x' },
  ]) assert.equal(isWebviewToHost(bad), false, JSON.stringify(bad));
});

test('host -> webview: validates nested batches', () => {
  const a = toAppend('r', [
    { v: 1, type: 'train', time: 1, step: 1, loss: 2.5, lr: 1e-4, grad_norm: null, tokens_per_s: 6500, memory_mb: 300 },
    { v: 1, type: 'eval', time: 1, step: 0, tasks: [{ name: 'code', role: 'learning', type: 'loss', metric: 'loss', value: 2.4, higher_is_better: false }],
      learning: { value: 2.4, higher_is_better: false, delta: 0 }, forgetting: null },
    { v: 1, type: 'spectrum', time: 1, step: 0, module: 'model.layers.0.mlp.up_proj', layer: 0, kind: 'mlp', shape: [512, 128], singular_values: [3, 2, 1], rank90: 2 },
    { v: 1, type: 'log', time: 1, message: 'hi' },
  ])!;
  assert.equal(a.spectra![0].name, 'up_proj');
  assert.ok(isHostToWebview({ type: 'append', batches: [a] }));
  assert.ok(isHostToWebview({ type: 'init', view: 'pareto', runs: [runHeaderFrom('r', '/tmp/r', [])], restore: { runs: [], runsDir: '/w/.finetune/runs', filter: { experimentName: 'x' } } }));
  assert.ok(!isHostToWebview({ type: 'init', view: 'pareto', runs: [], restore: { runs: [{ id: 1 }] } }));
  const broken = { ...a, train: { ...a.train!, loss: a.train!.loss.subarray(0, 0) } };
  assert.ok(Number.isNaN(a.train!.grad_norm[0]));
  assert.ok(Number.isNaN(a.train!.tokens[0]), 'a field the line lacks is NaN');
  for (const bad of [
    { type: 'append', batches: [broken] }, { type: 'append', batches: 'x' }, { type: 'init', view: 'evil', runs: [], restore: { runs: [] } }, { type: 'init', view: 'dashboard', runs: [] },
    { type: 'header', run: { ...runHeaderFrom('r', '/d', []), state: 'exploded' } }, { type: 'header', run: { id: 'r' } }, { type: 'error' }, { type: 'append' },
    { type: 'append', batches: [{ runId: 'r', diverged: { step: 3, value: 'oops' } }] },
  ]) assert.equal(isHostToWebview(bad), false, JSON.stringify(bad));
});

test('wire: concat joins columns; the header reads config and finish, the reconciled state wins', () => {
  const a = toAppend('r', [{ type: 'train', step: 1, loss: 2, lr: 1 }])!;
  const b = toAppend('r', [{ type: 'train', step: 2, loss: 1, lr: 1 }, { type: 'train', step: 3, loss: null, lr: 1 }])!;
  assert.deepEqual(Array.from(concatAppends('r', [a, b])!.train!.step), [1, 2]);
  assert.equal(toAppend('r', [{ type: 'log', message: 'x' }]), undefined);
  const events = [
    { type: 'run_started', method: 'lora', total_steps: 300, config: { name: 'code-cpt', lora: { rank: 16, target_modules: 'all' }, train: { lr: 2e-3 } } },
    { type: 'run_finished', status: 'failed', error: 'CUDA out of memory' },
  ];
  const info = runHeaderFrom('r', '/d', events);
  assert.deepEqual([info.method, info.rank, info.lr, info.state, info.error, info.experiment], ['lora', 16, 2e-3, 'failed', 'CUDA out of memory', 'code-cpt']);
  // SIGKILL: run_started only in events; the reconciler saw the pid gone.
  const killed = runHeaderFrom('r', '/d', events.slice(0, 1), { state: 'failed', error: 'process disappeared', stale: false });
  assert.deepEqual([killed.method, killed.state, killed.error], ['lora', 'failed', 'process disappeared']);
});

test('wire: every train field of the schema becomes a column; a diverged run_finished becomes the mark', () => {
  const line: Record<string, unknown> = { v: 1, type: 'train', time: 1 };
  TRAIN_FIELDS.forEach((f, i) => { line[f.key] = i + 1; });
  const a = toAppend('r', [line, { v: 1, type: 'run_finished', time: 2, status: 'failed', error: 'loss diverged (NaN) at step 8', step: 8, diverged: { step: 8, value: 'NaN' } }])!;
  assert.deepEqual(Object.keys(a.train!).sort(), TRAIN_FIELDS.map((f) => f.key).sort());
  TRAIN_FIELDS.forEach((f, i) => assert.equal(a.train![f.key][0], i + 1, f.key));
  assert.deepEqual(a.diverged, { step: 8, value: 'NaN' });
  assert.ok(isHostToWebview({ type: 'append', batches: [a] }));
});
