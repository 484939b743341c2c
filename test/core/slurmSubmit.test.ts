import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { parseExperiment } from '../../src/core/experiment';
import { expandSweep } from '../../src/core/sweep';
import { RunStore } from '../../src/core/runStore';
import { JobTracker } from '../../src/core/slurm/tracker';
import { SlurmError, type SlurmClient } from '../../src/core/slurm/client';
import { submitRuns } from '../../src/core/slurm/submit';
import { tmpDir } from './helpers';

const BASE = `name: sw
model: {base: builtin:tiny}
data: {train: builtin:brown}
method: lora
train: {steps: 4}
`;

const codes = (text: string) => parseExperiment(text, undefined, { lints: false }).diagnostics.map((d) => `${d.severity}:${d.code}:${d.line}:${d.message}`);

test('launcher checks: a multi-machine torchrun needs rdzv_endpoint and a node rank below nnodes; foreign keys warn', () => {
  const missing = codes(`${BASE}launcher: {kind: torchrun, nnodes: 2}\n`);
  assert.ok(missing.some((d) => /^error:launcher-rdzv-endpoint:6:launcher.nnodes is 2: set launcher.rdzv_endpoint/.test(d)), missing.join('\n'));
  const rank = codes(`${BASE}launcher: {kind: torchrun, nnodes: 2, node_rank: 2, rdzv_endpoint: "n0:29500"}\n`);
  assert.ok(rank.some((d) => /^error:launcher-node-rank:6:launcher.node_rank 2 must be below launcher.nnodes \(2\)/.test(d)), rank.join('\n'));
  assert.deepEqual(codes(`${BASE}launcher: {kind: torchrun, nnodes: 2, node_rank: 1, rdzv_endpoint: "n0:29500"}\n`), []);
  const local = codes(`${BASE}launcher: {partition: gpu, gpus_per_node: 8}\n`);
  assert.deepEqual(local.map((d) => d.split(':').slice(0, 2).join(':')), ['warning:launcher-unused', 'warning:launcher-unused']);
  assert.match(local[0], /launcher.partition is only read when launcher.kind is slurm \(it is local\)/);
  const bad = codes(`${BASE}launcher: {kind: slurm, partition: "my queue", time: "4 hours", mem: 64GB, rdzv_endpoint: nohost}\n`);
  assert.ok(bad.some((d) => /launcher.partition must be one word, without spaces/.test(d)), bad.join('\n'));
  assert.ok(bad.some((d) => /launcher.time must be a Slurm time: minutes, MM:SS, HH:MM:SS/.test(d)), bad.join('\n'));
  assert.ok(bad.some((d) => /launcher.mem must be a Slurm memory size/.test(d)), bad.join('\n'));
  assert.ok(bad.some((d) => /launcher.rdzv_endpoint must be host:port/.test(d)), bad.join('\n'));
});

test('launcher checks: sharding fsdp needs torchrun or slurm and full finetuning, naming launcher.sharding', () => {
  const local = codes(`${BASE.replace('method: lora', 'method: full')}launcher: {sharding: fsdp}\n`);
  assert.deepEqual(local.map((d) => d.split(':').slice(0, 3).join(':')), ['error:launcher-sharding-local:6']);
  assert.match(local[0], /launcher.sharding fsdp shards the model over several processes: set launcher.kind to torchrun/);
  const lora = codes(`${BASE}launcher: {kind: torchrun, nproc_per_node: 2, sharding: fsdp}\n`);
  assert.deepEqual(lora.map((d) => d.split(':').slice(0, 3).join(':')), ['error:launcher-sharding-lora:6']);
  assert.match(lora[0], /launcher.sharding fsdp is for full finetuning; LoRA keeps its frozen base in bf16/);
  const swept = codes(`${BASE.replace('method: lora', 'method: full')}launcher: {kind: slurm, sharding: fsdp}\nsweep: {method: [full, lora]}\n`);
  assert.ok(swept.some((d) => /^error:launcher-sharding-lora:.*LoRA \(swept in method\)/.test(d)), swept.join('\n'));
  assert.deepEqual(codes(`${BASE.replace('method: lora', 'method: full')}launcher: {kind: torchrun, nproc_per_node: 2, sharding: fsdp}\n`), []);
  assert.deepEqual(codes(`${BASE.replace('method: lora', 'method: full')}launcher: {kind: slurm, sharding: fsdp}\n`), []);
  assert.deepEqual(codes(`${BASE}launcher: {kind: torchrun, nproc_per_node: 2, sharding: none}\n`), []);
});

/** A store whose Slurm client records the sbatch calls and answers from `answer`. */
function storeWith(answer: (script: string, args: string[]) => string | Error) {
  const calls: { script: string; args: string[] }[] = [];
  const client: SlurmClient = {
    async submit(script, opts = {}) {
      calls.push({ script, args: opts.args ?? [] });
      const r = answer(script, opts.args ?? []);
      if (r instanceof Error) throw r;
      return r;
    },
    async jobs(ids) { return { jobs: new Map(ids.map((id) => [id, { jobId: id, state: 'PENDING', reason: 'Priority', nodes: null, exitCode: null, source: 'squeue' as const }])), missing: [] }; },
    async cancel() { return { ok: true, message: '' }; },
  };
  return { store: new RunStore(path.join(tmpDir('ftl-submit-'), 'runs'), { jobs: new JobTracker(client) }), calls };
}

async function createSweep(store: RunStore, launcher: string, ranks = '[2, 4, 8]') {
  const loaded = parseExperiment(`${BASE}launcher: ${launcher}\nsweep: {lora.rank: ${ranks}}\n`, undefined, { lints: false });
  assert.ok(loaded.ok, JSON.stringify(loaded.diagnostics));
  const ids: string[] = [];
  for (const [i, p] of expandSweep(loaded.value!).entries()) ids.push((await store.create(p, { experimentName: 'sw', sweepId: 'sw-abc', sweepIndex: i, sweepSize: 3 })).id);
  return ids;
}

test('a sweep is one job per run; max_running makes job i wait for job i-N (--dependency=afterany)', async () => {
  let n = 100;
  const { store, calls } = storeWith(() => String(n++));
  const ids = await createSweep(store, '{kind: slurm, max_running: 2}');
  const r = await submitRuns(store, ids, { python: '/py', trainerDir: '/t' });
  assert.deepEqual([...r.submitted.values()], ['100', '101', '102']);
  assert.deepEqual(calls.map((c) => c.args), [[], [], ['--dependency=afterany:100']]);
  for (const [i, id] of ids.entries()) {
    const run = (await store.get(id))!;
    assert.equal(run.slurm?.job_id, String(100 + i));
    assert.equal(run.status.state, 'queued');
    assert.equal(run.status.slurm?.text, `job ${100 + i} pending (Priority)`);
    assert.ok(fs.readFileSync(path.join(run.dir, 'slurm.sbatch'), 'utf8').includes(`#SBATCH --job-name=${id}`));
  }
});

test('launcher.array: one job array, task i = run i, each task\'s output its run\'s train.log', async () => {
  const { store, calls } = storeWith(() => '555');
  const ids = await createSweep(store, '{kind: slurm, array: true, max_running: 1}');
  const r = await submitRuns(store, ids, { python: '/py', trainerDir: '/t' });
  assert.equal(calls.length, 1);
  assert.deepEqual([...r.submitted.values()], ['555_0', '555_1', '555_2']);
  const script = fs.readFileSync(calls[0].script, 'utf8');
  assert.match(script, /^#SBATCH --array=0-2%1$/m);
  assert.match(script, /^#SBATCH --job-name=sw-abc$/m);
  for (const [i, id] of ids.entries()) {
    const run = (await store.get(id))!;
    assert.equal(run.slurm?.array_task, i);
    // Slurm opens <runs>/.slurm/sw-abc/<i>/train.log: the link leads to this run's folder.
    assert.equal(fs.realpathSync(path.join(store.runsDir, '.slurm', 'sw-abc', String(i), 'train.log').replace(/train\.log$/, '')), fs.realpathSync(run.dir));
    assert.equal(fs.realpathSync(path.join(run.dir, 'slurm.sbatch')), fs.realpathSync(calls[0].script));
  }
});

test('sbatch\'s rejection fails the run with its message; the submit limit defers the rest, still queued', async () => {
  const { store } = storeWith((script) => script.includes('lora-r4')
    ? new SlurmError('sbatch: error: QOSMaxSubmitJobPerUserLimit; sbatch: error: Batch job submission failed: Job violates accounting/QOS policy (job submit limit, user\'s size and/or time limits)', 'rejected')
    : script.includes('lora-r2') ? '7' : new Error('unexpected'));
  const ids = await createSweep(store, '{kind: slurm}');
  const r = await submitRuns(store, ids, { python: '/py', trainerDir: '/t' });
  assert.deepEqual([...r.submitted.keys()], [ids[0]]);
  assert.deepEqual(r.deferred, [ids[1], ids[2]]);
  for (const id of r.deferred) assert.equal((await store.get(id))!.status.state, 'queued');

  const rejecting = storeWith(() => new SlurmError('sbatch: error: invalid account or account/partition combination specified', 'rejected'));
  const [one] = await createSweep(rejecting.store, '{kind: slurm, account: nope}', '[2]');
  const rr = await submitRuns(rejecting.store, [one], { python: '/py', trainerDir: '/t' });
  assert.match(rr.rejected.get(one) ?? '', /^sbatch rejected the job: sbatch: error: invalid account/);
  const failed = (await rejecting.store.get(one))!;
  assert.equal(failed.status.state, 'failed');
  assert.equal(failed.status.error, rr.rejected.get(one));
  assert.equal(YAML.parse(fs.readFileSync(path.join(failed.dir, 'config.yaml'), 'utf8')).launcher.account, 'nope');
});
