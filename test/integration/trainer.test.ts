// Starts the REAL trainer (python -m finetune_lab run) through RunStore + startTrainer on a tiny
// config, waits for it to finish, and reads its events back through EventTail, validating each line
// against events.schema.json. Needs a Python with torch: $FINETUNE_LAB_PYTHON or the repo's .venv.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunStore } from '../../src/core/runStore';
import { parseExperiment } from '../../src/core/experiment';
import { expandSweep } from '../../src/core/sweep';
import { EventTail } from '../../src/core/events';
import { spawnTrainer, trainerCommand, trainerDir, findPython, cliPythonCandidates } from '../../src/core/trainerLaunch';
import { validateEvent, validateStatus, errorsText } from '../../src/core/schemas';
import { summarizeRun } from '../../src/core/runSummary';
import type { RunEvent } from '../../src/core/generated/events';
import { repoRoot, tmpDir } from '../core/helpers';

const EXPERIMENT = `name: itest
model: {base: builtin:tiny, pretrain_steps: 20}
data: {train: builtin:python-stdlib, seq_len: 32}
evals:
  every_steps: 5
  learning:
    - {name: code, type: loss, data: "builtin:python-stdlib#heldout", max_examples: 4}
    - {name: arith, type: lm_eval, task: finetune_lab_arithmetic, limit: 2, max_gen_toks: 4}
  forgetting:
    - {name: english, type: loss, data: "builtin:brown#heldout", max_examples: 4}
    - {name: kl, type: kl_to_base, data: "builtin:brown#heldout", n: 2}
method: lora
lora: {rank: 4}
train: {steps: 10, batch_size: 4, lr: 1.0e-3, warmup_steps: 2, device: cpu}
spectra: {every_steps: 5}
checkpoint: {every_steps: 5}
`;

test('the real trainer runs a tiny LoRA run to completion and writes valid events', { timeout: 600_000 }, async () => {
  const found = await findPython(cliPythonCandidates(repoRoot()));
  // `npm test` makes .venv first, so a missing Python is a broken set-up: fail, never skip.
  assert.ok(found.python, found.message);
  const tmp = tmpDir('ftl-itest-');
  const loaded = parseExperiment(EXPERIMENT, undefined, { lints: false });
  assert.equal(loaded.ok, true, JSON.stringify(loaded.diagnostics));
  const store = new RunStore(path.join(tmp, 'runs'));
  const run = await store.create(expandSweep(loaded.value!)[0], { experimentName: 'itest' });

  const env = { ...process.env, FINETUNE_LAB_CACHE: path.join(tmp, 'cache') };
  const trainer = await spawnTrainer(trainerCommand(found.python, trainerDir(), run.dir, { env }));
  const tail = new EventTail(path.join(run.dir, 'events.jsonl'), { pollMs: 200 });
  const seen: RunEvent[] = [];
  tail.onEvents((es) => seen.push(...es));
  try {
    const exit = await trainer.exit;
    await tail.poll();
    const log = fs.readFileSync(path.join(run.dir, 'train.log'), 'utf8');
    assert.equal(exit.code, 0, `trainer exited ${exit.code ?? exit.signal}\n${log.slice(-3000)}`);
  } finally {
    tail.dispose();
  }

  const all = await new EventTail(path.join(run.dir, 'events.jsonl'), { pollMs: 60_000 }).readAll();
  assert.equal(seen.length, all.length, 'the tail saw every event');
  const v = validateEvent();
  for (const e of all) assert.ok(v(e), `${e.type}: ${errorsText(v.errors)} in ${JSON.stringify(e).slice(0, 300)}`);
  const types = new Set(all.map((e) => e.type));
  for (const want of ['run_started', 'train', 'eval', 'run_finished'] as const) assert.ok(types.has(want), `no ${want} event`);
  const last = all[all.length - 1];
  assert.equal(last.type, 'run_finished');
  assert.equal(last.type === 'run_finished' && last.status, 'completed');

  const info = await store.get(run.id);
  assert.equal(info?.status.state, 'completed');
  assert.ok(validateStatus()(JSON.parse(fs.readFileSync(path.join(run.dir, 'status.json'), 'utf8'))));
  const summary = summarizeRun(all);
  assert.equal(summary.lastStep, 10);
  assert.ok(summary.tasks.some((x) => x.role === 'forgetting' && x.base !== undefined));
  // an lm-eval task and KL to the base, as the trainer writes them, validate and carry their version and n
  const arith = summary.tasks.find((x) => x.name === 'arith')!;
  assert.deepEqual([arith.type, arith.task, arith.version, arith.n, arith.metric], ['lm_eval', 'finetune_lab_arithmetic', '1.0', 2, 'exact_match,strict-match']);
  const kl = summary.tasks.find((x) => x.name === 'kl')!;
  assert.deepEqual([kl.type, kl.base, kl.n], ['kl_to_base', 0, 2]);
  assert.ok(kl.final > 0, 'KL grows from 0 once LoRA trains');
  assert.ok(all.every((e) => e.type !== 'eval' || (typeof e.seconds === 'number' && e.tasks.every((t) => typeof t.seconds === 'number'))), 'every evaluation says what it took');
});
