import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandSweep, runId, setDotted, formatValue } from '../../src/core/sweep';
import { applyDefaults } from '../../src/core/defaults';
import type { ExperimentConfig } from '../../src/core/generated/experiment';

const base = (sweep: Record<string, unknown[]>, extra: Record<string, unknown> = {}) =>
  ({ name: 'x', model: { base: 'builtin:tiny' }, data: { train: 'builtin:brown' }, method: 'lora', ...extra, sweep }) as unknown as ExperimentConfig;

test('no sweep: one run labelled by method', () => {
  const runs = expandSweep(applyDefaults({ ...base({}), sweep: undefined }));
  assert.equal(runs.length, 1);
  assert.equal(runs[0].label, 'lora-r16');
  assert.deepEqual(runs[0].overrides, {});
  assert.equal('sweep' in runs[0].config, false);
});

test('grid product in written order; full runs ignore lora.* and are deduped', () => {
  const runs = expandSweep(base({ method: ['full', 'lora'], 'lora.rank': [4, 16, 64], 'train.lr': [1e-4, 5e-4] }));
  assert.deepEqual(runs.map((r) => r.label), [
    'full-lr1e-4', 'full-lr5e-4',
    'lora-r4-lr1e-4', 'lora-r4-lr5e-4', 'lora-r16-lr1e-4', 'lora-r16-lr5e-4', 'lora-r64-lr1e-4', 'lora-r64-lr5e-4',
  ]);
  const full = runs[0];
  assert.deepEqual(full.overrides, { method: 'full', 'train.lr': 1e-4 });
  assert.equal(full.config.lora, undefined);
  assert.equal(full.config.train?.lr, 1e-4);
  const r64 = runs.find((r) => r.label === 'lora-r64-lr5e-4')!;
  assert.equal(r64.config.lora?.rank, 64);
  assert.equal(r64.config.lora?.alpha, 128, 'alpha = 2·rank recomputed per point');
});

test('derived defaults follow the sweep point even from a defaults-filled config', () => {
  const runs = expandSweep(applyDefaults(base({ method: ['full', 'lora'] })));
  assert.equal(runs[0].config.train?.lr, 2e-5);
  assert.equal(runs[1].config.train?.lr, 2e-4);
  const explicit = expandSweep(applyDefaults(base({ 'lora.rank': [4, 8] }, { lora: { alpha: 8 } })));
  assert.deepEqual(explicit.map((r) => r.config.lora?.alpha), [8, 8], 'a written alpha is kept');
});

test('dotted keys set nested values; labels format values compactly', () => {
  const o: Record<string, unknown> = { a: { b: 1 } };
  setDotted(o, 'a.c.d', 2);
  assert.deepEqual(o, { a: { b: 1, c: { d: 2 } } });
  assert.equal(formatValue(0.0005), '5e-4');
  assert.equal(formatValue(2.5e-5), '2.5e-5');
  assert.equal(formatValue(0.05), '0.05');
  const runs = expandSweep(base({ 'lora.target_modules': ['all', 'attention'], 'train.seed': [1] }));
  assert.deepEqual(runs.map((r) => r.label), ['lora-r16-all-seed1', 'lora-r16-attention-seed1']);
});

test('run ids: name, local timestamp, label', () => {
  assert.equal(runId('code-cpt', 'lora-r16', new Date(2024, 0, 2, 3, 4, 5)), 'code-cpt-20240102-030405-lora-r16');
  assert.equal(runId('a b', 'x/y', new Date(2024, 11, 31, 23, 59, 59)), 'a_b-20241231-235959-x_y');
});
