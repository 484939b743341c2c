// Slurm for real: a single-node cluster (slurmctld + slurmd, scripts/slurmCluster.mjs) in a temp
// folder; builtin:tiny runs submitted through the CLI (`finetune-lab run/stop/resume/list`, its
// main()) as a user would, with the runs folder on a path with a space. Needs root and Debian's
// slurm-wlm + munge (scripts/slurmSetup.mjs, run by `npm test`'s set-up): a missing piece fails.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { main } from '../../src/cli/commands';
import { RunStore } from '../../src/core/runStore';
import { validateEvent, errorsText } from '../../src/core/schemas';
import { readEventsFrom } from '../../src/core/events';
import { cliPythonCandidates, findPython } from '../../src/core/trainerLaunch';
import { repoRoot, sleep, tmpDir } from '../core/helpers';

const tmp = tmpDir('ftl-slurm-');
const clusterDir = path.join(tmp, 'cluster');
const runs = path.join(tmp, 'shared fs', 'runs');
let node = '';

function experiment(name: string, steps: number, launcher: string): string {
  return [
    `name: ${name}`,
    'model: {base: builtin:tiny, pretrain_steps: 20}',
    'data: {train: builtin:python-stdlib, seq_len: 32}',
    'evals: {every_steps: 5, learning: [{name: code, type: loss, data: "builtin:python-stdlib#heldout", max_examples: 2}]}',
    'method: lora',
    'lora: {rank: 4, alpha: 8}',
    `train: {steps: ${steps}, batch_size: 2, lr: 1.0e-3, warmup_steps: 1, device: cpu}`,
    'spectra: {every_steps: 0}',
    'checkpoint: {every_steps: 2, keep_last: 2}',
    `launcher: ${launcher}`,
    '',
  ].join('\n');
}

function write(name: string, text: string): string {
  const file = path.join(tmp, `${name}.finetune.yaml`);
  fs.writeFileSync(file, text);
  return file;
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try { return { code: await main([...args, '--runs-dir', runs]), out: out.join('\n'), err: err.join('\n') }; } finally { console.log = log; console.error = error; }
}

const store = () => new RunStore(runs);
const runOf = async (prefix: string) => (await store().list()).find((r) => r.id.startsWith(prefix));

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 180_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

function scontrol(...args: string[]): string {
  const r = spawnSync('scontrol', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `scontrol ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot(), 'scripts', 'slurmCluster.mjs'), 'start', clusterDir], { encoding: 'utf8' });
  assert.equal(r.status, 0, `the test cluster did not start (run node scripts/slurmSetup.mjs as root):\n${r.stderr}`);
  const info = JSON.parse(r.stdout) as { SLURM_CONF: string; node: string };
  process.env.SLURM_CONF = info.SLURM_CONF;
  node = info.node;
  const found = await findPython(cliPythonCandidates(repoRoot()));
  assert.ok(found.python, found.message);
  process.env.FINETUNE_LAB_PYTHON = found.python;
  process.env.FINETUNE_LAB_CACHE = path.join(tmp, 'cache');
  process.env.OMP_NUM_THREADS = '1';
});

after(() => {
  spawnSync('scancel', ['--user', 'root'], { encoding: 'utf8' });
  spawnSync(process.execPath, [path.join(repoRoot(), 'scripts', 'slurmCluster.mjs'), 'stop', clusterDir]);
});

test('a builtin:tiny run submitted through the CLI runs as a Slurm job to completion', { timeout: 300_000 }, async () => {
  const file = write('s-done', experiment('s-done', 6, '{kind: slurm, partition: debug, cpus_per_task: 1, mem: "1G", time: "00:10:00"}'));
  const r = await cli(['run', file]);
  assert.equal(r.code, 0, `${r.out}\n${r.err}`);
  const job = /submitted as Slurm job (\d+)/.exec(r.out)?.[1];
  assert.ok(job, r.out);
  assert.match(r.out, /completed/);
  const run = (await runOf('s-done'))!;
  assert.equal(run.status.state, 'completed');
  assert.equal(run.status.step, 6);
  assert.equal(run.slurm?.job_id, job);
  // the CLI waits for the job to leave Slurm's queue too, so slurm.json has how it ended
  assert.equal(run.slurm?.state, 'COMPLETED');
  assert.equal(run.slurm?.exit_code, '0:0');
  // The job's output file is the run's train.log (the quoted #SBATCH --output with a space in it).
  const shown = scontrol('show', 'job', '-o', job!);
  assert.ok(shown.includes(`StdOut=${path.join(run.dir, 'train.log')}`), shown);
  assert.match(shown, /Partition=debug/);
  const log = fs.readFileSync(path.join(run.dir, 'train.log'), 'utf8');
  assert.match(log, new RegExp(`Slurm job ${job} on ${node}`));
  assert.match(log, /run completed/);
  const { events } = await readEventsFrom(path.join(run.dir, 'events.jsonl'), 0);
  for (const e of events) assert.ok(validateEvent()(e), `${e.type}: ${errorsText(validateEvent().errors)}`);
  assert.equal(events.filter((e) => e.type === 'train').length, 6);
  const list = await cli(['list']);
  assert.match(list.out, new RegExp(`s-done\\S+\\s+completed.*job ${job} completed`));
});

test('a sweep with launcher.array is one job array (one task a run, one at a time), each task writing its run\'s train.log', { timeout: 300_000 }, async () => {
  const file = write('s-arr', `${experiment('s-arr', 3, '{kind: slurm, partition: debug, array: true, max_running: 1}')}sweep: {lora.rank: [2, 4]}\n`);
  const r = await cli(['run', file]);
  assert.equal(r.code, 0, `${r.out}\n${r.err}`);
  const runsOf = (await store().list()).filter((x) => x.id.startsWith('s-arr')).sort((a, b) => (a.slurm?.array_task ?? 0) - (b.slurm?.array_task ?? 0));
  assert.equal(runsOf.length, 2);
  const arrayId = runsOf[0].slurm!.job_id.split('_')[0];
  assert.deepEqual(runsOf.map((x) => x.slurm?.job_id), [`${arrayId}_0`, `${arrayId}_1`]);
  for (const run of runsOf) {
    assert.equal(run.status.state, 'completed', run.status.error ?? '');
    assert.match(fs.readFileSync(path.join(run.dir, 'train.log'), 'utf8'), /Slurm job \d+ on .*\n[\s\S]*run completed/);
  }
  assert.match(scontrol('show', 'job', '-o', `${arrayId}_1`), /ArrayTaskThrottle=1/);
});

test('a job Slurm rejects ends the run failed with sbatch\'s own message; no sbatch on PATH is a clear error', { timeout: 120_000 }, async () => {
  const file = write('s-bad', experiment('s-bad', 4, '{kind: slurm, partition: no-such-queue}'));
  const r = await cli(['run', file]);
  assert.equal(r.code, 1);
  assert.match(r.err, /sbatch rejected the job: sbatch: error: invalid partition specified: no-such-queue/);
  const run = (await runOf('s-bad'))!;
  assert.equal(run.status.state, 'failed');
  assert.match(run.status.error ?? '', /invalid partition specified: no-such-queue/);
  assert.equal(run.slurm, undefined);

  const PATH = process.env.PATH;
  process.env.PATH = tmpDir('ftl-empty-path-'); // no Slurm commands (the CLI runs in this process; python is absolute)
  try {
    const r2 = await cli(['run', write('s-nopath', experiment('s-nopath', 4, '{kind: slurm}'))]);
    assert.equal(r2.code, 1);
    assert.match(r2.err, /sbatch not found on PATH: launcher.kind slurm needs Slurm's commands/);
    assert.equal((await runOf('s-nopath'))?.status.state, 'failed');
  } finally { process.env.PATH = PATH; }
});

test('a node failure ends the job with the reason; resume submits a new job with --resume; stop is scancel --signal=INT', { timeout: 400_000 }, async () => {
  // --no-requeue: without it Slurm would requeue the job itself (the script then resumes too).
  const file = write('s-long', experiment('s-long', 5000, '{kind: slurm, partition: debug, extra_sbatch: [--no-requeue]}'));
  assert.equal((await cli(['run', file, '--detach'])).code, 0);
  const first = await until('the first job to train', async () => { const r = await runOf('s-long'); return r && r.status.state === 'running' && r.status.step >= 3 && r; });
  const job1 = first.slurm!.job_id;
  scontrol('update', `nodename=${node}`, 'state=down', 'reason=finetune-lab-test');
  try {
    const ended = await until('the run to end with NODE_FAIL', async () => { store().jobs.invalidate(); const r = await runOf('s-long'); return r && (r.status.state === 'failed' || r.status.state === 'stopped') && r; });
    assert.match(ended.status.error ?? '', new RegExp(`job ${job1} ended by Slurm: NODE_FAIL \\(node failure\\)`));
    assert.match((await cli(['list'])).out, /NODE_FAIL/);
  } finally {
    // ReturnToService=2 may have brought the node back already (then "Invalid node state").
    spawnSync('scontrol', ['update', `nodename=${node}`, 'state=resume']);
  }
  await until('the node to be idle again', async () => /idle/.test(spawnSync('sinfo', ['-h', '-o', '%t'], { encoding: 'utf8' }).stdout));

  const resumed = await cli(['resume', first.id, '--detach']);
  assert.equal(resumed.code, 0, resumed.err);
  const job2 = /submitted as Slurm job (\d+)/.exec(resumed.out)?.[1];
  assert.ok(job2 && job2 !== job1, resumed.out);
  const again = await until('the resumed job to train', async () => { const r = await runOf('s-long'); return r && r.status.state === 'running' && r.slurm?.job_id === job2 && r.status.step > first.status.step && r; });
  assert.deepEqual(again.slurm!.jobs.map((j) => [j.job_id, j.resume]), [[job1, false], [job2, true]]);
  const script = fs.readFileSync(path.join(again.dir, 'slurm.sbatch'), 'utf8');
  assert.match(script, /^RESUME=--resume$/m);
  const { events } = await readEventsFrom(path.join(again.dir, 'events.jsonl'), 0);
  const started = events.filter((e) => e.type === 'run_started');
  assert.equal(started.length, 2);
  assert.ok((started[1] as { resumed_from?: number | null }).resumed_from! >= 2, JSON.stringify(started[1]));

  const stop = await cli(['stop', again.id]);
  assert.equal(stop.code, 0, stop.err);
  assert.match(stop.out, /stopped$/m);
  const stopped = (await runOf('s-long'))!;
  assert.equal(stopped.status.state, 'stopped');
  assert.equal(stopped.slurm?.state, 'COMPLETED'); // the trainer checkpointed and exited 0
  const ckpts = fs.readdirSync(path.join(stopped.dir, 'checkpoints'));
  assert.ok(ckpts.includes(`step-${String(stopped.status.step).padStart(6, '0')}`), ckpts.join(','));
  assert.match(fs.readFileSync(path.join(stopped.dir, 'train.log'), 'utf8'), /received SIGINT: stopping after this step/);
});
