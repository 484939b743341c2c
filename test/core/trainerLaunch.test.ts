import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { trainerCommand, startTrainer, stopRun, findPython, cliPythonCandidates, trainerDir } from '../../src/core/trainerLaunch';
import { pidAlive } from '../../src/core/reconcile';
import { tmpDir, waitFor } from './helpers';

test('trainerCommand: argv array, PYTHONPATH and PYTHONUNBUFFERED, cwd = run dir', () => {
  const c = trainerCommand('/py', '/ext/trainer', '/runs/r1', { resume: true, env: { PATH: '/bin', PYTHONPATH: '/other' } });
  assert.equal(c.command, '/py');
  assert.deepEqual(c.args, ['-m', 'finetune_lab', 'run', '--run-dir', '/runs/r1', '--resume']);
  assert.equal(c.env.PYTHONPATH, `/ext/trainer${path.delimiter}/other`);
  assert.equal(c.env.PYTHONUNBUFFERED, '1');
  assert.equal(c.env.PATH, '/bin');
  assert.equal(c.cwd, '/runs/r1');
  assert.deepEqual(trainerCommand('/py', '/t', '/r').args.slice(-1), ['/r']);
});

test('findPython takes the first candidate with everything, and says what each lacked', async () => {
  const probe = async (p: string) => (p === 'good' ? { ok: true, missing: [] } : p === 'none' ? { ok: false, missing: ['torch', 'peft', 'transformers', 'safetensors'], error: 'not found' } : { ok: false, missing: ['peft'] });
  const r = await findPython(['none', 'nopeft', 'good', 'later'], probe);
  assert.equal(r.python, 'good');
  assert.deepEqual(r.tried.map((t) => t.python), ['none', 'nopeft', 'good']);
  const bad = await findPython(['none', 'nopeft'], probe);
  assert.equal(bad.python, undefined);
  assert.match(bad.message ?? '', /no Python with torch: set finetuneLab.pythonPath or run npm run setup/);
  assert.match(bad.message ?? '', /nopeft: missing peft/);
  assert.deepEqual(cliPythonCandidates('/repo', { FINETUNE_LAB_PYTHON: '/x/python' }), ['/x/python', '/repo/.venv/bin/python', 'python3']);
  assert.ok(fs.existsSync(path.join(trainerDir(), 'finetune_lab')));
});

test('startTrainer runs detached with output in train.log; stopRun sends SIGINT to the group', { skip: process.platform === 'win32' }, async () => {
  const dir = tmpDir();
  // A stand-in "python": logs its argv, and exits 0 on SIGINT like the trainer does.
  const fake = path.join(dir, 'fakepython');
  fs.writeFileSync(fake, '#!/bin/sh\necho "args: $*"\necho "pp: $PYTHONPATH"\ntrap \'echo got SIGINT; exit 0\' INT\necho ready\nwhile true; do sleep 0.05; done\n', { mode: 0o755 });
  const runDir = path.join(dir, 'run');
  fs.mkdirSync(runDir);
  const pid = await startTrainer(fake, '/the/trainer', runDir, {});
  assert.ok(pidAlive(pid));
  await waitFor(() => fs.existsSync(path.join(runDir, 'train.log')) && fs.readFileSync(path.join(runDir, 'train.log'), 'utf8').includes('ready'));
  assert.equal(await stopRun(pid, { graceMs: 5000, pollMs: 20 }), 'stopped');
  const log = fs.readFileSync(path.join(runDir, 'train.log'), 'utf8');
  assert.match(log, /args: -m finetune_lab run --run-dir .*run/);
  assert.match(log, /pp: \/the\/trainer/);
  assert.match(log, /got SIGINT/);
  assert.equal(await stopRun(pid), 'not-running');
});

test('stopRun escalates to SIGKILL after the grace period', { skip: process.platform === 'win32' }, async () => {
  const dir = tmpDir();
  const fake = path.join(dir, 'stubborn');
  fs.writeFileSync(fake, "#!/bin/sh\ntrap '' INT\necho ready\nwhile true; do sleep 0.05; done\n", { mode: 0o755 });
  const pid = await startTrainer(fake, '/t', dir);
  // Signal only once the trap is set, or the default SIGINT action ends it early.
  await waitFor(() => fs.existsSync(path.join(dir, 'train.log')) && fs.readFileSync(path.join(dir, 'train.log'), 'utf8').includes('ready'));
  assert.equal(await stopRun(pid, { graceMs: 300, pollMs: 20 }), 'killed');
  await waitFor(() => !pidAlive(pid));
});

test('startTrainer rejects when the interpreter does not exist', async () => {
  await assert.rejects(startTrainer('/no/such/python', '/t', tmpDir()));
});

test('a trainer that dies before writing status.json is found failed, not left queued', { skip: process.platform === 'win32' }, async () => {
  const { RunStore } = await import('../../src/core/runStore');
  const { expandSweep } = await import('../../src/core/sweep');
  const { parseExperiment } = await import('../../src/core/experiment');
  const runs = tmpDir();
  const loaded = parseExperiment('name: dies\nmodel: {base: builtin:tiny}\ndata: {train: builtin:python-stdlib}\nmethod: full\n');
  assert.ok(loaded.value);
  const store = new RunStore(runs);
  const run = await store.create(expandSweep(loaded.value)[0], { experimentName: 'dies' });
  assert.equal(run.status.state, 'queued');
  const crash = path.join(runs, 'crash');
  fs.writeFileSync(crash, '#!/bin/sh\necho "ImportError: no module named torch" >&2\nexit 1\n', { mode: 0o755 });
  const pid = await startTrainer(crash, '/t', run.dir);
  const started = JSON.parse(fs.readFileSync(path.join(run.dir, 'status.json'), 'utf8'));
  assert.equal(started.pid, pid);
  assert.equal(started.state, 'running');
  await waitFor(() => !pidAlive(pid));
  const after = await store.get(run.id);
  assert.equal(after?.status.state, 'failed');
  assert.equal(after?.status.error, 'process disappeared');
});

test('otherNodeCommands: one pasteable command per other machine, quoted, --node-rank K', async () => {
  const { otherNodeCommands } = await import('../../src/core/trainerLaunch');
  assert.deepEqual(otherNodeCommands('/opt/py env/python', '/ext/trainer', '/shared/runs/r1', { nnodes: 3, node_rank: 1 }, true), [
    "PYTHONPATH=/ext/trainer '/opt/py env/python' -m finetune_lab run --run-dir /shared/runs/r1 --node-rank 0 --resume",
    "PYTHONPATH=/ext/trainer '/opt/py env/python' -m finetune_lab run --run-dir /shared/runs/r1 --node-rank 2 --resume",
  ]);
  assert.deepEqual(otherNodeCommands('/py', '/t', '/r', { nnodes: 1 }), []);
});
