// Every template × data choice parses clean with the core's parser (no errors), keeps the paper's
// defaults (alpha = 2·rank, LoRA LR ~10x full, all modules, a forgetting eval), and expands as meant.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseExperiment } from '../../src/core/experiment';
import { lmEvalCatalog } from '../../src/core/lmEvalCatalog';
import { repoRoot } from '../core/helpers';
import { expandSweep } from '../../src/core/sweep';
import { EVAL_CHOICES, experimentTemplate, sanitizeName, TEMPLATES, type TemplateOptions } from '../../src/experimentTemplates';

const DATA: Pick<TemplateOptions, 'train' | 'format'>[] = [
  { train: 'builtin:python-stdlib', format: 'text' },
  { train: 'builtin:arithmetic', format: 'instruction' },
  { train: 'data/my set.jsonl', format: 'instruction' },
  { train: 'data/chats.jsonl', format: 'chat' },
];
const BASES = ['builtin:tiny', 'builtin:small', 'builtin:125m', 'builtin:350m', 'hf:HuggingFaceTB/SmolLM2-135M', 'hf:/home/me/models/my model'];

for (const t of TEMPLATES) {
  for (const d of DATA) {
    for (const base of BASES) {
      test(`template ${t.kind} / ${d.train} / ${base} parses without errors`, () => {
        const text = experimentTemplate({ kind: t.kind, name: `exp-${t.kind}`, base, ...d });
        const parsed = parseExperiment(text, undefined);
        const errors = parsed.diagnostics.filter((x) => x.severity === 'error');
        assert.deepEqual(errors, [], text);
        assert.ok(parsed.ok && parsed.value);
        assert.equal(parsed.value.model.base, base);
        assert.equal(parsed.value.data.train, d.train);
        assert.ok((parsed.value.evals?.forgetting ?? []).length > 0, 'a forgetting eval is configured');
        assert.ok((parsed.value.evals?.learning ?? []).length > 0, 'a learning eval is configured');
      });
    }
  }
}

test("the paper's benchmarks by name: lm_eval tasks in their roles, with limits, valid against the shipped task names", async () => {
  const trainer = path.join(repoRoot(), 'trainer');
  const all = EVAL_CHOICES.map((c) => c.id);
  const text = experimentTemplate({ kind: 'lora', name: 'bench', base: 'builtin:small', ...DATA[0], evals: all });
  const lmEval = (allow: boolean) => ({ catalog: (dirs: string[]) => lmEvalCatalog(trainer, dirs), allowCodeExecution: allow, dirExists: (p: string) => fs.existsSync(p) });
  const parsed = parseExperiment(text, undefined, { lmEval: lmEval(true) });
  assert.deepEqual(parsed.diagnostics.filter((d) => d.severity === 'error'), [], text);
  const v = parsed.value!;
  const tasks = (role: 'learning' | 'forgetting') => v.evals![role]!.map((t) => (t.type === 'lm_eval' ? `${t.task}@${t.limit}` : t.name));
  assert.deepEqual(tasks('forgetting'), ['english', 'kl', 'hellaswag@200', 'winogrande@200', 'arc_challenge@200']);
  assert.deepEqual(tasks('learning'), ['code', 'gsm8k@50', 'humaneval@20']);
  assert.equal(v.evals!.every_steps, 200, 'benchmarks: evaluate less often');
  // without code execution allowed, humaneval is refused before anything starts, at its line
  const refused = parseExperiment(text, undefined, { lmEval: lmEval(false) }).diagnostics.filter((d) => d.severity === 'error');
  assert.deepEqual(refused.map((d) => d.code), ['lm-eval-code-execution-not-allowed']);
  assert.equal(text.split('\n')[refused[0].line - 1].includes('humaneval'), true);
  // only the forgetting benchmarks: the learning side keeps its held-out loss
  const forgettingOnly = parseExperiment(experimentTemplate({ kind: 'full', name: 'f', base: 'builtin:tiny', ...DATA[1], evals: ['hellaswag'] })).value!;
  assert.deepEqual(forgettingOnly.evals!.learning!.map((t) => t.name), ['arithmetic']);
  assert.deepEqual(forgettingOnly.evals!.forgetting!.map((t) => t.name), ['hellaswag']);
});

test('LoRA template: all modules, alpha = 2·rank, LR 2e-4; full: 2e-5', () => {
  const lora = parseExperiment(experimentTemplate({ kind: 'lora', name: 'a', base: 'builtin:tiny', ...DATA[0] })).value!;
  assert.equal(lora.method, 'lora');
  assert.equal(lora.lora?.target_modules, 'all');
  assert.equal(lora.lora?.alpha, 2 * (lora.lora?.rank ?? 0));
  assert.equal(lora.train?.lr, 2e-4);
  const full = parseExperiment(experimentTemplate({ kind: 'full', name: 'b', base: 'builtin:tiny', ...DATA[0] })).value!;
  assert.equal(full.method, 'full');
  assert.equal(full.train?.lr, 2e-5);
  assert.ok(lora.train!.lr! / full.train!.lr! >= 5, 'LoRA LR about 10x full');
  assert.ok((lora.spectra?.every_steps ?? 0) > 0, 'spectra on');
});

test('LoRA vs full sweeps method and rank, dropping duplicate full runs', () => {
  const cfg = parseExperiment(experimentTemplate({ kind: 'lora-vs-full', name: 'c', base: 'builtin:tiny', ...DATA[0] })).value!;
  const runs = expandSweep(cfg);
  const methods = runs.map((r) => r.config.method).sort();
  assert.deepEqual(methods, ['full', 'lora', 'lora']);
  for (const r of runs) {
    if (r.config.method === 'lora') assert.equal(r.config.lora?.alpha, 2 * r.config.lora!.rank!);
    assert.equal(r.config.train?.lr, r.config.method === 'lora' ? 2e-4 : 2e-5);
  }
});

test('LR sweep covers the paper\'s range [1e-5, 5e-4]', () => {
  const cfg = parseExperiment(experimentTemplate({ kind: 'lr-sweep', name: 'd', base: 'builtin:tiny', ...DATA[0] })).value!;
  const lrs = expandSweep(cfg).map((r) => r.config.train?.lr).sort((a, b) => a! - b!);
  assert.equal(lrs[0], 1e-5);
  assert.equal(lrs[lrs.length - 1], 5e-4);
});

test('sanitizeName makes a valid experiment name', () => {
  assert.equal(sanitizeName('  my exp!.finetune.yaml '), 'my-exp-');
  assert.equal(sanitizeName('--x'), 'x');
  assert.equal(sanitizeName(''), 'experiment');
  assert.match(sanitizeName('Ünïcode name'), /^[A-Za-z0-9][A-Za-z0-9_.-]*$/);
});
