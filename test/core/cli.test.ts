import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../../src/cli/commands';
import { resultsTable, formatTable, scoresCell, taskLabel } from '../../src/cli/table';
import { Progress } from '../../src/cli/follow';
import { formatDuration } from '../../src/core/duration';
import { summarizeRun } from '../../src/core/runSummary';
import { parseEvents } from '../../src/core/events';
import { repoRoot, tmpDir } from './helpers';
import type { PlannedRunEstimate } from '../../src/core/memoryEstimate';
import { validatePlannedRun } from '../../src/core/schemas';

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try { return { code: await fn(), out: out.join('\n'), err: err.join('\n') }; } finally { console.log = log; console.error = error; }
}

test('run: an invalid experiment prints file:line:col errors, exits 2, starts nothing', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'bad.finetune.yaml');
  fs.writeFileSync(file, 'name: bad\nmodel: {base: builtin:tiny}\ndata: {train: builtin:brown}\nmethod: lora\nlora: {rank: 0}\n');
  const runs = path.join(dir, 'runs');
  const r = await capture(() => main(['run', file, '--runs-dir', runs]));
  assert.equal(r.code, 2);
  assert.match(r.err, /bad\.finetune\.yaml:5:14: error: lora\.rank must be an integer ≥ 1/);
  assert.equal(fs.existsSync(runs), false);
});

test('run --dry-run lists the planned runs and writes nothing', async () => {
  const dir = tmpDir();
  const runs = path.join(dir, 'runs');
  const r = await capture(() => main(['run', path.join(repoRoot(), 'examples', 'demo.finetune.yaml'), '--dry-run', '--runs-dir', runs]));
  assert.equal(r.code, 0);
  assert.match(r.out, /full/);
  assert.match(r.out, /lora-r16/);
  // each run's memory estimate (builtin:small on the CPU: a few hundred MB, checked against host RAM)
  assert.match(r.out, /lora-r16 .* ≈ \d+\.\d+ GiB on the CPU \(weights \d/);
  assert.doesNotMatch(r.out + r.err, /over the limit|memory estimate unavailable/);
  assert.equal(fs.existsSync(runs), false);
  assert.equal((await capture(() => main(['list', '--runs-dir', runs]))).code, 0);
});

test('run --dry-run --json: one object per planned run with its memory, as the schema says; over a limit it warns', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'big.finetune.yaml');
  fs.writeFileSync(file, 'name: big\nmodel: {base: builtin:350m}\ndata: {train: builtin:brown, seq_len: 1024}\nmethod: full\ntrain: {batch_size: 8}\nsweep: {lora.rank: [8, 64], method: [full, lora]}\n');
  const r = await capture(() => main(['run', file, '--dry-run', '--json', '--memory-limit-gib', '4', '--runs-dir', path.join(dir, 'runs')]));
  assert.equal(r.code, 0, r.err);
  const items = JSON.parse(r.out) as PlannedRunEstimate[];
  const validate = validatePlannedRun();
  for (const item of items) assert.ok(validate(item), JSON.stringify(validate.errors));
  assert.deepEqual(items.map((i) => i.label), ['full', 'lora-r8', 'lora-r64']); // full with either rank is one run
  for (const { memory } of items) {
    assert.ok(memory && memory.total_gib > 4 && memory.devices === 1 && memory.device === 'cuda' && memory.fits === false);
    for (const k of ['weights_gib', 'gradients_gib', 'optimizer_gib', 'activations_gib'] as const) assert.ok(memory[k] >= 0, k);
  }
  assert.ok(items[2].memory!.params.trainable > items[1].memory!.params.trainable);
  assert.match(r.err, /warning: Run full needs ≈ [\d.]+ GiB per GPU .* over the 2\.8 GiB usable of 4 GiB per GPU \(the limit set\)\. (Would fit|Nothing tried fits)/);
  assert.equal(fs.existsSync(path.join(dir, 'runs')), false);
  await assert.rejects(main(['run', file, '--json']), /--json goes with --dry-run/);
});

test('results table and progress line from the events fixture', () => {
  const { events } = parseEvents(fs.readFileSync(path.join(repoRoot(), 'test', 'fixtures', 'events.sample.jsonl'), 'utf8'));
  const s = summarizeRun(events);
  assert.equal(s.finalTrainLoss, 4.71);
  assert.equal(s.finished?.status, 'completed');
  const code = s.tasks.find((t) => t.name === 'code')!;
  assert.deepEqual([code.base, code.final, code.finalStep], [5.07, 2.4, 100]);
  const table = resultsTable([{ label: 'lora-r16', summary: s }]);
  assert.match(table, /lora-r16\s+completed\s+2\s+4\.710\s+2\.400 \(-2\.670\)\s+2\.110 \(\+0\.000\)/);
  assert.match(table, /\ntasks: code \(loss, n=32\) · english \(loss, n=32\)$/);
  assert.equal(scoresCell(s), 'code 2.400 (n=32); english 2.110 (n=32)');
  const lm = summarizeRun([...events, { v: 1, type: 'eval', time: 1, step: 101, learning: null, forgetting: null, tasks: [
    { name: 'hs', role: 'forgetting', type: 'lm_eval', task: 'hellaswag', metric: 'acc_norm', value: 0.31, higher_is_better: true, version: '1.0', n: 200 },
    { name: 'he', role: 'learning', type: 'lm_eval', task: 'humaneval', metric: 'pass@1', value: null, higher_is_better: true, n: 0, error: 'sandbox: CPU time limit' }] }]);
  assert.match(scoresCell(lm), /hs 0\.310 \(v1\.0, n=200\); he failed !$/);
  assert.equal(taskLabel(lm.tasks.find((t) => t.name === 'hs')!), 'hs (lm_eval hellaswag v1.0: acc_norm, n=200)');
  assert.equal(formatTable(['a', '>b'], [['x', '1'], ['yy', '22']]), 'a    b\n--  --\nx    1\nyy  22');
  const p = new Progress();
  for (const e of events) p.add(e);
  assert.match(p.line(), /^step 2\/100  loss 4\.710  eta 1m38s$/);
  assert.equal(formatDuration(3725), '1h02m');
});
