import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseExperiment, loadExperimentFile } from '../../src/core/experiment';
import { applyDefaults } from '../../src/core/defaults';
import { experimentSchema } from '../../src/core/schemas';
import { applyFix } from '../../src/core/experimentEdit';
import { repoRoot, tmpDir } from './helpers';

const GOOD = `name: t
model: {base: builtin:tiny}
data: {train: builtin:python-stdlib}
evals:
  forgetting: [{name: english, type: loss, data: "builtin:brown#heldout"}]
method: lora
`;

const errors = (text: string) => parseExperiment(text, undefined, { lints: false }).diagnostics.filter((d) => d.severity === 'error');

test('a valid file parses, ok, with defaults filled', () => {
  const r = parseExperiment(GOOD);
  assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
  assert.equal(r.value?.lora?.rank, 16);
  assert.equal(r.value?.lora?.alpha, 32);
  assert.equal(r.value?.train?.lr, 2e-4);
  assert.equal(r.value?.data.seq_len, 128);
});

test('bad enum: message lists the values, points at the value, offers a fix', () => {
  const text = GOOD.replace('method: lora', 'method: lorra');
  const [d] = errors(text);
  assert.match(d.message, /method must be one of 'lora', 'full'/);
  assert.match(d.message, /did you mean 'lora'/);
  assert.deepEqual([d.line, d.column, d.endLine, d.endColumn], [6, 9, 6, 14]);
  assert.equal(d.path, 'method');
  assert.deepEqual(d.fix, { path: 'method', value: 'lora', title: "Change to 'lora'" });
  assert.equal(applyFix(text, d.fix!).includes('method: lora\n'), true);
});

test('unknown key: named with its section, at the key, with did-you-mean and a rename fix', () => {
  const text = GOOD + 'lorra: {rank: 4}\n';
  const [d] = errors(text);
  assert.equal(d.message, "unknown key 'lorra' in the top level (did you mean 'lora'?)");
  assert.deepEqual([d.line, d.column, d.endLine, d.endColumn], [7, 1, 7, 6]);
  assert.equal(d.fix?.renameKey, 'lora');
  const fixed = parseExperiment(applyFix(text, d.fix!));
  assert.equal(fixed.ok, true);
  assert.equal(fixed.value?.lora?.rank, 4);
  const nested = errors(GOOD + 'lora:\n  rnak: 4\n')[0];
  assert.equal(nested.message, "unknown key 'rnak' in 'lora' (did you mean 'rank'?)");
  assert.deepEqual([nested.line, nested.column], [8, 3]);
});

test('range and type errors name the field', () => {
  const [d] = errors(GOOD + 'lora:\n  rank: 0\n');
  assert.match(d.message, /^lora\.rank must be an integer ≥ 1/);
  assert.deepEqual([d.line, d.column], [8, 9]);
  const [t] = errors(GOOD + 'train: {steps: many}\n');
  assert.match(t.message, /^train\.steps must be an integer ≥ 1 \(got 'many'\)/);
  const [m] = errors(GOOD.replace('method: lora\n', ''));
  assert.match(m.message, /missing required key 'method'/);
  const [tm] = errors(GOOD + 'lora: {target_modules: attn}\n');
  assert.match(tm.message, /lora\.target_modules must be one of 'all', 'attention', 'mlp' or a list of names/);
});

test('YAML syntax error has a position and stops there', () => {
  const r = parseExperiment('name: t\nmodel: {base: builtin:tiny\ndata: x\n');
  assert.equal(r.ok, false);
  assert.equal(r.value, undefined);
  const d = r.diagnostics[0];
  assert.match(d.code ?? '', /^yaml-/);
  assert.ok(d.line >= 2, `line ${d.line}`);
  const dup = parseExperiment('name: a\nname: b\n').diagnostics[0];
  assert.equal(dup.line, 2);
});

test('sweep: unknown keys and bad values are errors at the key/value', () => {
  const r = parseExperiment(GOOD + 'sweep: {lora.rnk: [4], train.lr: [1e-4, 0]}\n', undefined, { lints: false });
  const [k, v] = r.diagnostics.filter((d) => d.severity === 'error');
  assert.match(k.message, /sweep key 'lora.rnk' is not a setting.*did you mean 'lora.rank'/);
  assert.deepEqual([k.line, k.column], [7, 9]);
  assert.match(v.message, /sweep value 0 is not a valid train.lr/);
  assert.equal(v.path, 'sweep.train.lr.1');
});

test('lora section with method full is an info; a missing data file is a warning', () => {
  const r = parseExperiment(GOOD.replace('method: lora', 'method: full').replace('builtin:python-stdlib', 'data/train.jsonl') + 'lora: {rank: 8}\n', '/x/exp.finetune.yaml', { lints: false, fileExists: () => false });
  assert.equal(r.ok, true);
  const info = r.diagnostics.find((d) => d.code === 'lora-unused');
  assert.equal(info?.severity, 'info');
  const miss = r.diagnostics.find((d) => d.code === 'data-missing');
  assert.equal(miss?.severity, 'warning');
  assert.equal(miss?.line, 3);
  assert.match(miss!.message, /\/x\/data\/train\.jsonl/);
});

test('defaults come from the schema default keywords', () => {
  const cfg = applyDefaults({ name: 'x', model: { base: 'builtin:tiny' }, data: { train: 'builtin:brown' }, method: 'full', evals: { learning: [{ name: 'a', type: 'loss', data: 'builtin:brown' }] } });
  const props = experimentSchema.properties;
  assert.equal(cfg.train?.steps, props.train.properties.steps.default);
  assert.equal(cfg.train?.schedule, props.train.properties.schedule.default);
  assert.equal(cfg.spectra?.top_k, props.spectra.properties.top_k.default);
  assert.equal(cfg.launcher?.kind, 'local');
  assert.deepEqual(cfg.evals?.forgetting, []);
  const task = cfg.evals?.learning?.[0];
  assert.equal(task && 'max_examples' in task ? task.max_examples : undefined, 64);
  const lm = applyDefaults({ name: 'x', model: { base: 'builtin:tiny' }, data: { train: 'builtin:brown' }, method: 'full', evals: { forgetting: [{ name: 'hs', type: 'lm_eval', task: 'hellaswag' }, { name: 'kl', type: 'kl_to_base', data: 'builtin:brown#heldout' }] } });
  assert.deepEqual(lm.evals?.forgetting, [{ name: 'hs', type: 'lm_eval', task: 'hellaswag', limit: 100, batch_size: 8 }, { name: 'kl', type: 'kl_to_base', data: 'builtin:brown#heldout', n: 16, top_k: 32 }],
    'each eval type gets its own defaults, none of the others');
  assert.equal(cfg.train?.lr, 2e-5, 'full default lr');
  assert.equal(cfg.lora, undefined, 'no lora section for a full run');
  const lora = applyDefaults({ name: 'x', model: { base: 'builtin:tiny' }, data: { train: 'builtin:brown' }, method: 'lora', lora: { rank: 64 } });
  assert.equal(lora.lora?.alpha, 128);
  assert.equal(lora.lora?.target_modules, 'all');
  assert.equal(lora.train?.lr, 2e-4);
});

test('the demo experiment is valid and has no errors', async () => {
  const r = await loadExperimentFile(path.join(repoRoot(), 'examples', 'demo.finetune.yaml'));
  assert.equal(r.ok, true, JSON.stringify(r.diagnostics.filter((d) => d.severity === 'error')));
});

test('loadExperimentFile checks data files relative to the file', async () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'train.jsonl'), '{}\n');
  fs.writeFileSync(path.join(dir, 'e.finetune.yaml'), GOOD.replace('builtin:python-stdlib', 'train.jsonl'));
  const r = await loadExperimentFile(path.join(dir, 'e.finetune.yaml'));
  assert.equal(r.diagnostics.some((d) => d.code === 'data-missing'), false);
});

test('target modules that match no layer of a built-in model are errors at the name, with a fix', () => {
  const text = GOOD + 'lora:\n  target_modules: [q_proj, qproj, mlp.up_proj, ".*mlp\\\\.down_proj", "mlp\\\\..*"]\nspectra: {modules: [nothing_here]}\n';
  const errs = errors(text);
  // qproj: a typo; "mlp\\..*" must match a whole name (model.layers.N.mlp.x), as in the trainer.
  assert.equal(errs.length, 3, JSON.stringify(errs));
  const [a, re, b] = errs;
  assert.equal(re.path, 'lora.target_modules.4');
  assert.match(a.message, /'qproj' matches no module of builtin:tiny.*did you mean 'q_proj'/);
  assert.deepEqual([a.line, a.column], [8, 28]);
  assert.equal(a.fix?.value, 'q_proj');
  assert.equal(b.path, 'spectra.modules.0');
  // An hf: model's modules are not known here: no error.
  assert.equal(errors(text.replace('builtin:tiny', 'hf:gpt2')).length, 0);
});

test('nesting that would overflow the YAML parser is refused before parsing, at its line', () => {
  const deep = `name: x\nmodel: {base: builtin:tiny}\nlora:\n  target_modules: ${'['.repeat(5000)}\n`;
  const r = parseExperiment(deep, undefined, { lints: false });
  assert.equal(r.ok, false);
  assert.deepEqual(r.diagnostics.map((d) => [d.code, d.line]), [['yaml-depth', 4]]);
  const dashes = `${'- '.repeat(300)}4\n`; // nested block sequences on one line
  assert.equal(parseExperiment(dashes, undefined, { lints: false }).diagnostics[0].code, 'yaml-depth');
  // Brackets inside quotes and comments do not count, and closed ones give their depth back.
  const fine = `name: x # ${'['.repeat(500)}\ndescription: "${'{'.repeat(500)}"\n${Array.from({ length: 200 }, (_, i) => `k${i}: [[1], {a: [2]}]`).join('\n')}\n`;
  assert.ok(!parseExperiment(fine, undefined, { lints: false }).diagnostics.some((d) => d.code === 'yaml-depth'));
});

test('module regexes V8 would abort compiling are left to the trainer, never compiled here', () => {
  const file = (name: string) => `name: x\nmodel: {base: builtin:tiny}\ndata: {train: builtin:python-stdlib}\nmethod: lora\nlora: {target_modules: ['${name}']}\n`;
  for (const name of ['q_proj{99999}{99999}{99999}', '.*(q|k){1}_proj']) {
    const r = parseExperiment(file(name), undefined, { lints: false });
    assert.ok(!r.diagnostics.some((d) => d.code === 'unknown-module'), `${name}: ${JSON.stringify(r.diagnostics)}`);
  }
  const long = parseExperiment(file(`q_proj|${'x'.repeat(300)}`), undefined, { lints: false });
  assert.ok(long.diagnostics.some((d) => d.code?.startsWith('schema-') && d.path.startsWith('lora.target_modules')), JSON.stringify(long.diagnostics));
});
