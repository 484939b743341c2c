// The eval types lm_eval and kl_to_base in the experiment file: each type's own keys (the schema's
// discriminated oneOf), messages that name the setting at its line, an unknown lm-eval task with
// close names and a quick fix, include_path, and code execution refused unless allowed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseExperiment } from '../../src/core/experiment';
import { lmEvalCatalog } from '../../src/core/lmEvalCatalog';
import type { LmEvalCheckOptions } from '../../src/core/lmEvalChecks';
import { applyFix } from '../../src/core/experimentEdit';
import { repoRoot } from './helpers';

const TRAINER = path.join(repoRoot(), 'trainer');
const TASKS = path.join(TRAINER, 'tests', 'fixtures', 'lm_eval_tasks');
const UNSAFE = path.join(TRAINER, 'tests', 'fixtures', 'lm_eval_unsafe');

const file = (evals: string) => `name: t
model: {base: builtin:tiny}
data: {train: builtin:python-stdlib}
evals:
${evals}
method: lora
`;

const options = (allow = false): LmEvalCheckOptions => ({
  catalog: (dirs) => lmEvalCatalog(TRAINER, dirs), allowCodeExecution: allow, dirExists: (p) => fs.existsSync(p),
});
const parse = (text: string, allow = false) => parseExperiment(text, path.join(repoRoot(), 'x.finetune.yaml'), { lints: false, lmEval: options(allow) });
const errors = (text: string, allow = false) => parse(text, allow).diagnostics.filter((d) => d.severity === 'error');

test('lm_eval and kl_to_base evals are valid with their own keys', () => {
  const r = parse(file(`  learning: [{name: math, type: lm_eval, task: gsm8k, limit: 50, num_fewshot: 5, metric: "exact_match,flexible-extract", batch_size: auto}]
  forgetting:
    - {name: hellaswag, type: lm_eval, task: hellaswag, limit: 200}
    - {name: kl, type: kl_to_base, data: "builtin:brown#heldout", n: 8}`));
  assert.equal(r.ok, true, JSON.stringify(r.diagnostics));
  const [hs, kl] = r.value!.evals!.forgetting!;
  assert.deepEqual(hs, { name: 'hellaswag', type: 'lm_eval', task: 'hellaswag', limit: 200, batch_size: 8 });
  assert.deepEqual(kl, { name: 'kl', type: 'kl_to_base', data: 'builtin:brown#heldout', n: 8, top_k: 32 });
});

test("a key of another type's eval is an unknown key, with the type's own keys offered", () => {
  const [d] = errors(file('  learning: [{name: m, type: lm_eval, task: gsm8k, limt: 5}]'));
  assert.match(d.message, /unknown key 'limt' in 'evals\.learning\.0' \(did you mean 'limit'\?\)/);
  assert.equal(d.line, 5);
  const [k] = errors(file('  forgetting: [{name: kl, type: kl_to_base, data: "builtin:brown#heldout", max_examples: 4}]'));
  assert.match(k.message, /unknown key 'max_examples' in 'evals\.forgetting\.0'; known keys: name, type, data, n, top_k/);
  const [l] = errors(file('  learning: [{name: m, type: loss, data: "builtin:brown#heldout", task: gsm8k}]'));
  assert.match(l.message, /unknown key 'task'/);
});

test('an unknown eval type lists the types and offers the close one', () => {
  const text = file('  learning: [{name: m, type: lm-eval, task: gsm8k}]');
  const ds = errors(text);
  assert.equal(ds.length, 1, JSON.stringify(ds));
  assert.equal(ds[0].message, "evals.learning.0.type must be one of 'loss', 'multiple_choice', 'exact_match', 'lm_eval', 'kl_to_base' (got 'lm-eval') — did you mean 'lm_eval'?");
  assert.equal(ds[0].line, 5);
  assert.match(applyFix(text, ds[0].fix!), /type: lm_eval/);
});

test('missing and out-of-range keys name the setting', () => {
  assert.match(errors(file('  learning: [{name: m, type: lm_eval}]'))[0].message, /missing required key 'task' in 'evals\.learning\.0'/);
  assert.match(errors(file('  forgetting: [{name: kl, type: kl_to_base, data: "builtin:brown#heldout", n: 0}]'))[0].message, /evals\.forgetting\.0\.n must be an integer ≥ 1/);
  assert.match(errors(file('  learning: [{name: m, type: lm_eval, task: gsm8k, limit: 0}]'))[0].message, /evals\.learning\.0\.limit must be a number > 0/);
});

test('an unknown lm-eval task is an error at its line, with close names and a fix', () => {
  const text = file(`  forgetting:
    - {name: hs, type: lm_eval, task: hellaswg}`);
  const [d] = errors(text);
  assert.equal(d.code, 'lm-eval-unknown-task');
  assert.equal(d.line, 6);
  assert.match(d.message, /unknown lm-eval task 'hellaswg' \(lm-eval 0\.4\.\d+\) — did you mean 'hellaswag'\? Close names: hellaswag/);
  assert.match(applyFix(text, d.fix!), /task: hellaswag/);
  // the paper's benchmarks and the built-in tasks are known
  for (const task of ['hellaswag', 'winogrande', 'arc_challenge', 'gsm8k', 'finetune_lab_arithmetic', 'finetune_lab_cloze_english']) {
    assert.deepEqual(errors(file(`  learning: [{name: a, type: lm_eval, task: ${task}}]`)), [], task);
  }
});

test("a task of the eval's include_path is known; a missing folder is an error", () => {
  const ok = file(`  learning: [{name: a, type: lm_eval, task: fl_test_mc, include_path: ${JSON.stringify(TASKS)}}]`);
  assert.deepEqual(errors(ok), []);
  const [typo] = errors(file(`  learning: [{name: a, type: lm_eval, task: fl_test_mcq, include_path: ${JSON.stringify(TASKS)}}]`));
  assert.match(typo.message, /did you mean 'fl_test_mc'\?/);
  const [missing] = errors(file('  learning: [{name: a, type: lm_eval, task: x, include_path: no/such/folder}]'));
  assert.equal(missing.code, 'lm-eval-include-path');
  assert.match(missing.message, /include_path is not a folder: no\/such\/folder/);
});

test('a task that executes generated code is refused unless allowed on this machine', () => {
  const text = file('  learning: [{name: code, type: lm_eval, task: humaneval, limit: 20}]');
  const [d] = errors(text);
  assert.equal(d.code, 'lm-eval-code-execution-not-allowed');
  assert.match(d.message, /'humaneval' executes model-generated code .*finetuneLab\.allowCodeExecution .*--allow-code-execution/);
  assert.equal(parse(text).ok, false, 'a run cannot start');
  const allowed = parse(text, true);
  assert.equal(allowed.ok, true);
  assert.equal(allowed.diagnostics.find((x) => x.code === 'lm-eval-code-execution')?.severity, 'info');
  // a user's own task marked unsafe_code, found by scanning include_path
  const own = errors(file(`  learning: [{name: c, type: lm_eval, task: fl_test_escape, include_path: ${JSON.stringify(UNSAFE)}}]`));
  assert.equal(own[0]?.code, 'lm-eval-code-execution-not-allowed');
  assert.deepEqual(errors(file(`  learning: [{name: c, type: lm_eval, task: fl_test_flaky, include_path: ${JSON.stringify(UNSAFE)}}]`)), []);
});
