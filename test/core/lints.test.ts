import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseExperiment } from '../../src/core/experiment';

const BASE = `name: t
model: {base: builtin:tiny}
data: {train: builtin:brown, format: instruction}
evals:
  forgetting: [{name: english, type: loss, data: "builtin:brown#heldout"}]
`;
const lints = (text: string) => parseExperiment(text).diagnostics.filter((d) => d.code?.startsWith('lint-'));
const codes = (text: string) => lints(text).map((d) => d.code).sort();

test('a paper-style config has no lints', () => {
  assert.deepEqual(codes(BASE + 'method: lora\nlora: {rank: 256}\ntrain: {lr: 2e-4}\n'), []);
  assert.deepEqual(codes(BASE + 'method: full\ntrain: {lr: 2e-5}\n'), []);
});

test('learning-rate lints, with a cite and a fix', () => {
  const [low] = lints(BASE + 'method: lora\nlora: {rank: 256}\ntrain: {lr: 1e-5}\n');
  assert.equal(low.code, 'lint-lora-lr-low');
  assert.equal(low.severity, 'warning');
  assert.match(low.cite ?? '', /2405\.09673/);
  assert.equal(low.line, 8);
  assert.deepEqual(low.fix, { path: 'train.lr', value: 2e-4, title: 'Set train.lr to 2e-4' });
  assert.deepEqual(codes(BASE + 'method: full\ntrain: {lr: 1e-3}\n'), ['lint-full-lr-high']);
});

test('alpha != 2 rank, attention only, low rank for code, LoRA CPT, no forgetting eval', () => {
  const a = lints(BASE + 'method: lora\nlora: {rank: 256, alpha: 16}\n');
  assert.deepEqual(a.map((d) => d.code), ['lint-alpha-not-2r']);
  assert.deepEqual(a[0].fix?.value, 512);
  assert.deepEqual(codes(BASE + 'method: lora\nlora: {rank: 256, target_modules: attention}\n'), ['lint-attention-only']);
  assert.deepEqual(codes(BASE + 'method: lora\nlora: {rank: 256, target_modules: [q_proj, v_proj]}\n'), ['lint-attention-only']);
  assert.deepEqual(codes(BASE + 'method: lora\nlora: {rank: 256, target_modules: [q_proj, up_proj]}\n'), []);
  const code = BASE.replace('builtin:brown, format: instruction', 'builtin:python-stdlib, format: instruction');
  assert.deepEqual(codes(code + 'method: lora\nlora: {rank: 16}\n'), ['lint-low-rank-code']);
  const cpt = lints(BASE.replace('format: instruction', 'format: text') + 'method: lora\nlora: {rank: 256}\n');
  assert.deepEqual(cpt.map((d) => [d.code, d.severity]), [['lint-lora-continued-pretraining', 'info']]);
  const noForget = BASE.replace(/evals:\n.*\n/, '') + 'method: full\n';
  assert.deepEqual(codes(noForget), ['lint-no-forgetting-eval']);
});

test('a sweep that includes a recommended point does not trip; one that does not, trips at the sweep key', () => {
  assert.deepEqual(codes(BASE + 'method: lora\nlora: {rank: 256}\nsweep: {train.lr: [1e-5, 2e-4]}\n'), []);
  const [d] = lints(BASE + 'method: lora\nlora: {rank: 256}\nsweep: {train.lr: [1e-5, 2e-5]}\n');
  assert.equal(d.code, 'lint-lora-lr-low');
  assert.equal(d.path, 'sweep.train.lr');
  assert.equal(d.fix, undefined);
});
