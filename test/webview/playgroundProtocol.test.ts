import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SETTINGS, isHostToPlayground, isPlaygroundToHost } from '../../src/core/playgroundProtocol';
import { diversity } from '../../src/core/diversity';

test('playground -> host: accepts the protocol, rejects the rest', () => {
  assert.ok(isPlaygroundToHost({ type: 'ready' }));
  assert.ok(isPlaygroundToHost({ type: 'cancel' }));
  assert.ok(isPlaygroundToHost({ type: 'generate', prompt: 'def ', settings: DEFAULT_SETTINGS, models: ['/r/exports/base/export.json'] }));
  assert.ok(isPlaygroundToHost({ type: 'generate', prompt: '', settings: { ...DEFAULT_SETTINGS, temperature: 0 }, models: ['a'] }));
  for (const bad of [
    null, 'ready', { type: 'nope' }, { type: 'generate', prompt: 'x', settings: DEFAULT_SETTINGS, models: [] },
    { type: 'generate', prompt: 'x', settings: { ...DEFAULT_SETTINGS, samples: 0 }, models: ['a'] },
    { type: 'generate', prompt: 'x', settings: { ...DEFAULT_SETTINGS, samples: 2.5 }, models: ['a'] },
    { type: 'generate', prompt: 'x', settings: { ...DEFAULT_SETTINGS, maxNewTokens: 1e6 }, models: ['a'] },
    { type: 'generate', prompt: 'x', settings: { ...DEFAULT_SETTINGS, temperature: NaN }, models: ['a'] },
    { type: 'generate', prompt: 'x', settings: { ...DEFAULT_SETTINGS, topP: 0 }, models: ['a'] },
    { type: 'generate', prompt: 'x'.repeat(30_000), settings: DEFAULT_SETTINGS, models: ['a'] },
    { type: 'generate', prompt: 'x', settings: { temperature: 1 }, models: ['a'] },
    { type: 'log', level: 'fatal', message: 'x' },
  ]) assert.equal(isPlaygroundToHost(bad), false, JSON.stringify(bad).slice(0, 120));
});

test('host -> playground: validates models, samples and metrics', () => {
  const model = { id: '/r/exports/base/export.json', run: 'r', kind: 'base', kindLabel: 'base', step: 0, base: 'builtin:tiny', promptFormat: 'text' };
  assert.ok(isHostToPlayground({ type: 'init', models: [model], problems: [], restore: { runs: [{ id: 'r', dir: '/r' }] } }));
  assert.ok(isHostToPlayground({ type: 'sample', job: 1, model: model.id, index: 0, seed: 0, text: 'x', tokens: 1, stop: 'eos' }));
  assert.ok(isHostToPlayground({ type: 'modelDone', job: 1, model: model.id, diversity: diversity(['a b', 'c']), seconds: 1, tokensPerS: 3 }));
  assert.ok(isHostToPlayground({ type: 'modelDone', job: 1, model: model.id, diversity: diversity(['']), seconds: 0, tokensPerS: 0 }));
  assert.ok(isHostToPlayground({ type: 'error', job: null, model: null, message: 'x' }));
  for (const bad of [
    { type: 'init', models: [{ ...model, kind: 'qlora' }], problems: [], restore: { runs: [] } },
    { type: 'init', models: [model], problems: [] },
    { type: 'sample', job: 1, model: 'm', index: 0, seed: 0, text: 'x', tokens: 1, stop: 'maybe' },
    { type: 'modelDone', job: 1, model: 'm', diversity: { unique: 1 }, seconds: 1, tokensPerS: 1 },
    { type: 'done', job: 1 },
  ]) assert.equal(isHostToPlayground(bad), false, JSON.stringify(bad).slice(0, 120));
});
