import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseExperiment } from '../../src/core/experiment';
import {
  estimateArgs, lensTitle, memoryDiagnostics, memorySummary, overLimitMessage, parseEstimateOutput, plannedRunEstimates,
  runEstimate, type MemoryEstimate,
} from '../../src/core/memoryEstimate';
import { validatePlannedRun } from '../../src/core/schemas';
import { expandSweep } from '../../src/core/sweep';
import { cliPythonCandidates, findPython, packageRoot, trainerDir } from '../../src/core/trainerLaunch';

/** An estimate as the trainer writes it: a full run over an 80 GB GPU, with advice. */
const OVER: MemoryEstimate = {
  total_gib: 85.24, weights_gib: 44.87, gradients_gib: 29.91, optimizer_gib: 59.83, activations_gib: 17.77, devices: 1,
  per_device: true, device: 'cuda', precision: 'bf16-mixed', params: { total: 8030261248, trainable: 8030261248 },
  limit: { gib: 79.1, usable_gib: 74.15, source: 'gpu', name: 'NVIDIA H100 80GB HBM3' }, fits: false,
  advice: [
    { set: { method: 'lora' }, text: 'method: lora (rank 16, all modules)', total_gib: 33.2, fits: true },
    { set: { 'launcher.kind': 'torchrun', 'launcher.nproc_per_node': 8, 'launcher.sharding': 'fsdp' }, text: 'launcher.kind: torchrun, launcher.nproc_per_node: 8, launcher.sharding: fsdp (per GPU; the global batch grows 8x)', total_gib: 36.1, fits: true },
    { set: { 'train.gradient_checkpointing': true }, text: 'train.gradient_checkpointing: true', total_gib: 95.2, fits: false },
  ],
  notes: ['one micro-batch per step: gradients are made while activations are freed, so the total is below the sum of the parts'],
};
const FITS: MemoryEstimate = { ...OVER, total_gib: 3.1, weights_gib: 0.5, gradients_gib: 0.02, optimizer_gib: 0.04, activations_gib: 2.6, fits: true, advice: [] };

const FILE = `name: big
model: {base: "hf:/models/llama-3-8b"}
data: {train: data.jsonl, format: chat, seq_len: 2048}
method: full
train:
  batch_size: 1
`;

test('words: summary, over-limit message with the advice that fits, CodeLens title', () => {
  assert.equal(memorySummary(OVER), '≈ 85.2 GiB per GPU (weights 44.9 · grads 29.9 · optimizer 59.8 · activations 17.8)');
  assert.equal(memorySummary({ ...FITS, device: 'cpu', gradients_gib: 0.02 }), '≈ 3.1 GiB on the CPU (weights 0.5 · grads 0.02 · optimizer 0.04 · activations 2.6)');
  assert.equal(memorySummary({ ...FITS, devices: 8 }).startsWith('≈ 3.1 GiB per GPU × 8 GPUs'), true);
  const message = overLimitMessage(OVER);
  assert.match(message, /^This run needs ≈ 85\.2 GiB per GPU \(.*\), over the 74\.2 GiB usable of NVIDIA H100 80GB HBM3 \(79\.1 GiB\)\./);
  assert.match(message, /Would fit: method: lora \(rank 16, all modules\) → 33\.2 GiB; launcher\.kind: torchrun.* → 36\.1 GiB\.$/);
  assert.doesNotMatch(message, /gradient_checkpointing/); // does not fit: not offered while others do
  const nothing = overLimitMessage({ ...OVER, advice: OVER.advice.map((a) => ({ ...a, fits: false })) });
  assert.match(nothing, /Nothing tried fits; smallest: method: lora/);
  const cpu = overLimitMessage({ ...OVER, device: 'cpu', limit: { gib: 23.5, usable_gib: 20.2, source: 'host', name: 'host RAM' } });
  assert.match(cpu, /over the 20\.2 GiB usable of host RAM \(23\.5 GiB\) \(no GPU here: the run trains on the CPU and uses host RAM\)/);

  const runs = plannedRunEstimates(expandSweep(parseExperiment(FILE).value!), [{ memory: OVER }]);
  assert.equal(lensTitle(runs), '$(warning) ≈ 85.2 GiB per GPU (weights 44.9 · grads 29.9 · optimizer 59.8 · activations 17.8) — over the 74.2 GiB usable');
  const sweep = plannedRunEstimates(expandSweep(parseExperiment(FILE + 'sweep: {method: [full, lora]}\n').value!), [{ memory: OVER }, { memory: FITS }]);
  assert.match(lensTitle(sweep), /^\$\(warning\) ≈ 3\.1–85\.2 GiB per GPU over 2 runs \(largest: full, weights 44\.9 .*\) — 1 of 2 runs over the 74\.2 GiB usable$/);
  assert.match(lensTitle(plannedRunEstimates(expandSweep(parseExperiment(FILE).value!), new Error('no Python'))), /No memory estimate: no Python/);
});

test('--dry-run --json items match the schema (with and without an estimate)', () => {
  const planned = expandSweep(parseExperiment(FILE).value!);
  const validate = validatePlannedRun();
  for (const item of [...plannedRunEstimates(planned, [{ memory: OVER }]), ...plannedRunEstimates(planned, [{ error: 'model.base hf:x: cannot read its config.json' }])]) {
    assert.ok(validate(item), JSON.stringify(validate.errors));
  }
  assert.equal(plannedRunEstimates(planned, new Error('boom'))[0].memory_error, 'boom');
});

test('the warning sits on the line that moves the estimate: method, the batch, or the sweep', () => {
  const loaded = parseExperiment(FILE);
  const runs = plannedRunEstimates(expandSweep(loaded.value!), [{ memory: OVER }]);
  const [d] = memoryDiagnostics(loaded, runs);
  assert.equal(d.severity, 'warning');
  assert.equal(d.code, 'memory-over-limit');
  assert.equal(d.line, 4); // method: full (weights, gradients and optimizer dominate)
  assert.match(d.message, /85\.2 GiB per GPU.*Would fit: method: lora/);
  const activations = { ...OVER, weights_gib: 1, gradients_gib: 0.1, optimizer_gib: 0.2, activations_gib: 80 };
  const [b] = memoryDiagnostics(loaded, plannedRunEstimates(expandSweep(loaded.value!), [{ memory: activations }]));
  assert.equal(b.line, 6); // train.batch_size
  const swept = parseExperiment(FILE + 'sweep: {method: [full, lora]}\n');
  const [s] = memoryDiagnostics(swept, plannedRunEstimates(expandSweep(swept.value!), [{ memory: OVER }, { memory: FITS }]));
  assert.equal(s.line, 7);
  assert.match(s.message, /^1 of 2 runs need more memory than the 74\.2 GiB usable .*: full ≈ 85\.2 GiB\. Run full needs/);
  assert.deepEqual(memoryDiagnostics(loaded, plannedRunEstimates(expandSweep(loaded.value!), [{ memory: FITS }])), []);
  const [info] = memoryDiagnostics(loaded, plannedRunEstimates(expandSweep(loaded.value!), [{ error: 'model.base hf:/models/llama-3-8b: cannot read its config.json' }]));
  assert.deepEqual([info.severity, info.code, info.line], ['info', 'memory-no-estimate', 2]);
});

test('the trainer command line and its output are checked', () => {
  assert.deepEqual(estimateArgs({ baseDir: '/w', gpu: { gib: 79.1, count: 8, name: 'H100' }, advice: false }),
    ['-m', 'finetune_lab', 'estimate', '--config', '-', '--base-dir', '/w', '--gpu-gib', '79.1', '--gpus', '8', '--gpu-name', 'H100', '--no-advice']);
  assert.deepEqual(estimateArgs({ gpu: { gib: 0 } }), ['-m', 'finetune_lab', 'estimate', '--config', '-']);
  assert.deepEqual(parseEstimateOutput(`noise\n${JSON.stringify([{ memory: OVER }])}\n`, 1), [{ memory: OVER }]);
  assert.throws(() => parseEstimateOutput('[{"memory": {"total_gib": -1}}]', 1), /does not match schemas\/estimate\.schema\.json/);
  assert.throws(() => parseEstimateOutput('[]', 1), /answered 0 estimates for 1 runs/);
  assert.throws(() => parseEstimateOutput('Traceback ...', 1), /printed no estimate/);
});

test('the real trainer estimates a sweep in one process; a 1 GiB GPU gets advice', async () => {
  const found = await findPython(cliPythonCandidates(packageRoot()));
  assert.ok(found.python, found.message);
  const loaded = parseExperiment('name: t\nmodel: {base: builtin:350m}\ndata: {train: builtin:brown, seq_len: 512}\nmethod: full\ntrain: {batch_size: 4}\nsweep: {method: [full, lora]}\n');
  const planned = expandSweep(loaded.value!);
  const items = await runEstimate(found.python!, trainerDir(), planned.map((p) => p.config), { gpu: { gib: 1 } });
  const runs = plannedRunEstimates(planned, items);
  assert.deepEqual(runs.map((r) => [r.label, r.memory?.device, r.memory?.precision, r.memory?.fits]), [['full', 'cuda', 'bf16-mixed', false], ['lora-r16', 'cuda', 'bf16-mixed', false]]);
  const [full, lora] = runs.map((r) => r.memory!);
  assert.ok(full.params.trainable > 300e6 && lora.params.trainable < 10e6);
  assert.ok(full.optimizer_gib > 2 && lora.optimizer_gib < 0.1);
  assert.ok(full.advice.length > 0 && full.advice.every((a) => a.total_gib > 0));
  assert.equal(memoryDiagnostics(loaded, runs)[0].code, 'memory-over-limit');
});
