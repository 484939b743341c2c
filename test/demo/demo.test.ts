// The demo's pieces that need no trainer: its experiment files, the --quick rewrite, and the
// findings, which must follow the numbers (a finding that does not hold says NOT HELD).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { DEMO_EXPERIMENTS, demoExperimentPath, quickVariant } from '../../src/cli/demo';
import { demoFindings, demoTable, lrSweepTable, bestLr, type RunFacts } from '../../src/cli/table';
import { loadExperimentFile } from '../../src/core/experiment';
import { expandSweep } from '../../src/core/sweep';
import type { RunSummary } from '../../src/core/runSummary';
import { repoRoot } from '../core/helpers';

test('the demo experiments are valid and plan LoRA r4/16/64, full at three rates, and an 8-run LR sweep', async () => {
  const labels: string[][] = [];
  for (const { file } of DEMO_EXPERIMENTS) {
    const r = await loadExperimentFile(demoExperimentPath(repoRoot(), file));
    assert.equal(r.ok, true, `${file}: ${JSON.stringify(r.diagnostics.filter((d) => d.severity === 'error'))}`);
    labels.push(expandSweep(r.value!).map((p) => p.label));
  }
  assert.deepEqual(labels[0], ['full', 'lora-r4', 'lora-r16']);
  assert.deepEqual(labels[1], ['lora-r64']);
  assert.deepEqual(labels[2], ['full-lr3e-3', 'full-lr3e-4']);
  assert.equal(labels[3].length, 8);
});

test('--quick rewrites an experiment to builtin:tiny, a few steps, two values per sweep key, comments kept', () => {
  const text = fs.readFileSync(demoExperimentPath(repoRoot(), 'demo-lr.finetune.yaml'), 'utf8');
  const q = quickVariant(text);
  const c = parse(q);
  assert.equal(c.model.base, 'builtin:tiny');
  assert.equal(c.train.steps, 6);
  assert.deepEqual(c.sweep['train.lr'], [1e-3, 3e-2]);
  assert.deepEqual(c.evals.learning[1], { name: 'arith-em', type: 'lm_eval', task: 'finetune_lab_arithmetic', limit: 4, batch_size: 16, max_gen_toks: 8 });
  const main = parse(quickVariant(fs.readFileSync(demoExperimentPath(repoRoot(), 'demo.finetune.yaml'), 'utf8')));
  assert.deepEqual(main.evals.forgetting[1], { name: 'kl', type: 'kl_to_base', data: 'builtin:brown#heldout', n: 4 });
  assert.match(q, /^# `npm run demo`/);
});

function facts(label: string, method: 'full' | 'lora', lr: number, code: number, english: number, rank90: { attention: number[]; mlp: number[] }, rank?: number, kl?: number): RunFacts {
  const summary: RunSummary = {
    method, lastStep: 100, finalTrainLoss: code, learning: null, forgetting: null, finished: { status: 'completed', error: null },
    tasks: [
      { name: 'code', role: 'learning', metric: 'loss', higherIsBetter: false, base: 4.7, final: code, finalStep: 100 },
      { name: 'english', role: 'forgetting', metric: 'loss', higherIsBetter: false, base: 1.9, final: english, finalStep: 100 },
      ...(kl === undefined ? [] : [{ name: 'kl', role: 'forgetting' as const, type: 'kl_to_base', metric: 'kl', higherIsBetter: false, base: 0, final: kl, finalStep: 100, n: 16 }]),
    ],
  };
  const spec = (step: number, scale: number) => (['attention', 'mlp'] as const).flatMap((kind) => rank90[kind].map((r, i) => ({
    type: 'spectrum' as const, v: 1 as const, time: 0, step, module: `m.${kind}.${i}`, name: kind, layer: i, kind, shape: [128, 128],
    singular_values: [1], rank90: Math.max(1, Math.round(r * scale)), intruders: method === 'lora' ? 2 : 0, random_rank90: 65, random_intruders: 10, lora_rank: rank ?? null,
  }))) as unknown as RunFacts['spectra'][number]['matrices'];
  return { label, id: label, method, rank, lr, summary, spectra: [{ step: 25, matrices: spec(25, 0.5) }, { step: 100, matrices: spec(100, 1) }] };
}

test('findings follow the numbers: held when they hold, NOT HELD when they do not', () => {
  const main = [
    facts('full-lr3e-3', 'full', 3e-3, 2.0, 2.4, { attention: [12, 13], mlp: [20, 22] }, undefined, 0.5),
    facts('full-lr3e-4', 'full', 3e-4, 2.4, 2.1, { attention: [6, 7], mlp: [9, 9] }, undefined, 0.1),
    facts('lora-r4', 'lora', 1e-2, 2.6, 2.15, { attention: [2, 2], mlp: [3, 3] }, 4, 0.2),
    facts('lora-r16', 'lora', 1e-2, 2.4, 2.2, { attention: [5, 5], mlp: [6, 6] }, 16, 0.3),
  ];
  const lr = [
    facts('full-lr1e-3', 'full', 1e-3, 1.5, 2.0, { attention: [], mlp: [] }), facts('full-lr1e-2', 'full', 1e-2, 1.2, 2.5, { attention: [], mlp: [] }),
    facts('lora-r16-lr1e-3', 'lora', 1e-3, 1.9, 1.95, { attention: [], mlp: [] }, 16), facts('lora-r16-lr3e-2', 'lora', 3e-2, 1.3, 2.2, { attention: [], mlp: [] }, 16),
  ];
  const lines = demoFindings(main, lr);
  const line = (re: RegExp) => lines.find((l) => re.test(l)) ?? assert.fail(`no line ${re}: ${lines.join('\n')}`);
  assert.match(line(/learns more than LoRA/), /^HELD/);
  assert.match(line(/forgets more than LoRA/), /^HELD/);
  assert.match(line(/higher rank than LoRA/), /^HELD/);
  assert.match(line(/grows with training/), /^HELD/);
  assert.match(line(/MLP matrices/), /^HELD/);
  assert.match(line(/best learning rate/), /^HELD .*LoRA 0\.03.*full 0\.01/);
  assert.match(line(/equal learning/), /full lr 3e-4/);
  assert.equal(bestLr(lr, 'full').lr, 1e-2);
  assert.match(line(/KL to the base orders the runs/), /^HELD .*tau 1\.00 over 4 runs\): full-lr3e-4 < lora-r4 < lora-r16 < full-lr3e-3/);
  // Make LoRA r16 forget more than full: the finding must say so, and KL's order no longer matches.
  main[3].summary.tasks[1].final = 2.6;
  const after = demoFindings(main, lr);
  assert.match(after.find((l) => /forgets more than LoRA/.test(l))!, /^NOT HELD/);
  assert.match(after.find((l) => /KL to the base orders/.test(l))!, /^NOT HELD .*tau 0\.67 .*English Δ full-lr3e-4 < lora-r4 < full-lr3e-3 < lora-r16/);
  assert.match(demoTable(main), /full-lr3e-3\s+full\s+-\s+3e-3\s+completed\s+2\.000\s+2\.000 \(-2\.700\)\s+2\.400 \(\+0\.500\)\s+0\.5000\s+12\.5\/21\s+65\/65\s+0\s+40/);
  assert.match(demoTable(main), /tasks: code \(loss\) · english \(loss\) · kl \(kl_to_base: kl, n=16\)/);
  assert.match(lrSweepTable(lr), /lora-r16-lr3e-2\s+lora\s+0\.03/);
  assert.equal(path.basename(demoExperimentPath(repoRoot())), 'demo.finetune.yaml');
});
