// `finetune-lab analyse` and `reduce-intruders` through the CLI's main() with the REAL trainer: a
// PEFT adapter made on builtin:tiny the way other tools make one (get_peft_model + save_pretrained),
// analysed; the run read back through the RunStore (kind analysis, its config validated against
// analysis.schema.json, completed); then a λ sweep of PEFT's intruder reduction on it, grouped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../../src/cli/commands';
import { RunStore } from '../../src/core/runStore';
import { readEventsFrom } from '../../src/core/events';
import { cliPythonCandidates, findPython, trainerDir } from '../../src/core/trainerLaunch';
import { validateEvent, errorsText } from '../../src/core/schemas';
import { repoRoot, tmpDir } from '../core/helpers';

test('analyse an adapter, then reduce its intruders over a λ sweep, with the real trainer', { timeout: 900_000 }, async () => {
  const found = await findPython(cliPythonCandidates(repoRoot()));
  assert.ok(found.python, found.message);
  const tmp = tmpDir('ftl-analysis-');
  const env = { FINETUNE_LAB_CACHE: path.join(tmp, 'cache'), PYTHONPATH: trainerDir() };
  const saved = { ...process.env };
  Object.assign(process.env, env, { FINETUNE_LAB_PYTHON: found.python });
  try {
    const made = spawnSync(found.python, [path.join(repoRoot(), 'test', 'fixtures', 'make_peft_adapter.py'), path.join(tmp, 'checkpoint-30'), '20'], { env: process.env, encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr.slice(-2000));
    const exp = path.join(tmp, 'tiny.finetune.yaml');
    fs.writeFileSync(exp, `name: x\nmodel: {base: builtin:tiny, pretrain_steps: 20}\ndata: {train: builtin:python-stdlib, seq_len: 32}\nmethod: lora\n`
      + 'evals:\n  learning: [{name: code, type: loss, data: "builtin:python-stdlib#heldout", max_examples: 4}]\n'
      + '  forgetting: [{name: english, type: loss, data: "builtin:brown#heldout", max_examples: 4}]\n');
    const runs = path.join(tmp, 'runs');
    assert.equal(await main(['analyse', '--base', 'builtin:tiny', '--adapter', path.join(tmp, 'checkpoint-30'), '--experiment', exp, '--runs-dir', runs]), 0);
    const store = new RunStore(runs);
    const [run] = await store.list();
    assert.equal(run.error, undefined);
    assert.equal(run.meta.kind, 'analysis');
    assert.equal(run.status.state, 'completed');
    assert.equal(run.config, undefined);
    assert.equal(run.analysis?.method, 'lora');
    assert.deepEqual(run.analysis?.source, { adapter: path.join(tmp, 'checkpoint-30'), step: 30 });
    const { events } = await readEventsFrom(path.join(run.dir, 'events.jsonl'), 0);
    const v = validateEvent();
    for (const e of events) assert.ok(v(e), `${e.type}: ${errorsText(v.errors)}`);
    assert.deepEqual(events.filter((e) => e.type === 'eval').map((e) => e.type === 'eval' && e.step), [0, 30]);
    assert.equal(events.filter((e) => e.type === 'spectrum').length, 14);
    assert.equal(events.filter((e) => e.type === 'train').length, 0);

    assert.equal(await main(['reduce-intruders', run.id, '--runs-dir', runs, '--lambda', '0.5,1']), 0);
    const reduced = (await store.list()).filter((r) => r.analysis?.reduce_intruders);
    assert.equal(reduced.length, 2);
    assert.equal(new Set(reduced.map((r) => r.meta.sweep_id)).size, 1);
    assert.ok(reduced[0].meta.sweep_id);
    assert.deepEqual(reduced.map((r) => r.analysis!.reduce_intruders!.lambda).sort(), [0.5, 1]);
    for (const r of reduced) {
      assert.equal(r.status.state, 'completed');
      assert.ok(fs.existsSync(path.join(r.dir, 'adapter', 'adapter_model.safetensors')));
    }
  } finally {
    process.env = saved;
  }
});
