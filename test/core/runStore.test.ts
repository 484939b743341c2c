import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { RunStore } from '../../src/core/runStore';
import { expandSweep } from '../../src/core/sweep';
import { validateExperiment, validateMeta, validateStatus } from '../../src/core/schemas';
import type { ExperimentConfig } from '../../src/core/generated/experiment';
import { tmpDir } from './helpers';

const cfg = { name: 'exp', model: { base: 'builtin:tiny' }, data: { train: 'builtin:brown' }, method: 'lora', sweep: { method: ['full', 'lora'] } } as unknown as ExperimentConfig;

test('create writes valid meta.json, config.yaml, status.json; list/get read them back', async () => {
  const dir = tmpDir();
  let t = new Date(2024, 4, 6, 7, 8, 9).getTime() / 1000;
  const store = new RunStore(path.join(dir, 'runs'), { now: () => t, pidAlive: () => false });
  const planned = expandSweep(cfg);
  const a = await store.create(planned[0], { experimentName: 'exp', experimentFile: '/w/exp.finetune.yaml', sweepId: 's1', sweepIndex: 0, sweepSize: 2 });
  const b = await store.create(planned[1], { experimentName: 'exp', sweepId: 's1', sweepIndex: 1, sweepSize: 2 });
  const c = await store.create(planned[1], { experimentName: 'exp' });
  assert.equal(a.id, 'exp-20240506-070809-full');
  assert.equal(b.id, 'exp-20240506-070809-lora-r16');
  assert.equal(c.id, 'exp-20240506-070809-lora-r16-2', 'collision gets a suffix');
  const meta = JSON.parse(fs.readFileSync(path.join(a.dir, 'meta.json'), 'utf8'));
  assert.ok(validateMeta()(meta));
  assert.equal(meta.sweep_size, 2);
  assert.ok(validateStatus()(JSON.parse(fs.readFileSync(path.join(a.dir, 'status.json'), 'utf8'))));
  const config = YAML.parse(fs.readFileSync(path.join(b.dir, 'config.yaml'), 'utf8'));
  assert.ok(validateExperiment()(config));
  assert.equal(config.sweep, undefined);
  assert.equal(config.lora?.alpha, 32);
  t += 1;
  const list = await store.list();
  assert.deepEqual(list.map((r) => r.id).sort(), [a.id, b.id, c.id].sort());
  const got = await store.get(b.id);
  assert.equal(got?.status.state, 'queued');
  assert.equal(got?.config?.method, 'lora');
  assert.equal(got?.meta.label, 'lora-r16');
  assert.equal(got?.error, undefined);
  await store.delete(c.id);
  assert.equal(await store.get(c.id), undefined);
  assert.equal(fs.readdirSync(a.dir).some((f) => f.endsWith('.tmp')), false, 'no temp files left');
});

test('a broken folder yields a StoredRun with an error; list never throws', async () => {
  const dir = tmpDir();
  const store = new RunStore(dir, { pidAlive: () => false });
  fs.mkdirSync(path.join(dir, 'broken'));
  fs.writeFileSync(path.join(dir, 'broken', 'status.json'), '{"v":1,"state":"runn');
  fs.mkdirSync(path.join(dir, 'not-a-run'));
  fs.writeFileSync(path.join(dir, 'stray.txt'), 'x');
  const list = await store.list();
  assert.equal(list.length, 1);
  assert.equal(list[0].id, 'broken');
  assert.match(list[0].error ?? '', /status\.json: not JSON/);
  assert.equal(await new RunStore(path.join(dir, 'nope')).list().then((l) => l.length), 0);
});

test('list reconciles a running run whose process is gone', async () => {
  const dir = tmpDir();
  const store = new RunStore(dir, { pidAlive: () => false, now: () => 100 });
  const run = await store.create(expandSweep(cfg)[0], { experimentName: 'exp' });
  await store.writeStatus(run.id, { v: 1, state: 'running', pid: 999999, heartbeat: 99, step: 3, total_steps: 200 });
  assert.equal((await store.get(run.id))?.status.state, 'failed');
  fs.writeFileSync(path.join(run.dir, 'events.jsonl'), JSON.stringify({ v: 1, type: 'run_finished', time: 99, status: 'completed', error: null }) + '\n');
  assert.equal((await store.get(run.id))?.status.state, 'completed');
});
