// A hung trainer (issue 17): its heartbeat stops while its process lives. The reader flags the run
// stale after the configured time (finetuneLab.stalledAfterSeconds → RunStore's staleAfterS); the
// Runs view, status bar and dashboard read it as "stalled"; Kill Trainer's SIGKILL then leaves the
// run failed. The last test hangs a REAL trainer (SIGSTOP: alive, silent) and watches all of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { reconcileStatus } from '../../src/core/reconcile';
import { RunStore } from '../../src/core/runStore';
import { parseExperiment } from '../../src/core/experiment';
import { expandSweep } from '../../src/core/sweep';
import { cliPythonCandidates, findPython, killGroup, spawnTrainer, trainerCommand, trainerDir } from '../../src/core/trainerLaunch';
import { isTrainerOf } from '../../src/core/trainerProcess';
import { runDescription, statusBarText } from '../../src/views/runFormat';
import type { RunStatus } from '../../src/core/generated/status';
import { repoRoot, tmpDir, waitFor } from '../core/helpers';

const running: RunStatus = { v: 1, state: 'running', pid: 4242, heartbeat: 1000, step: 12, total_steps: 100, started: 900 };

test('the stalled threshold is the setting\'s: flagged after staleAfterS without a heartbeat, not before', () => {
  const alive = () => true;
  assert.equal(reconcileStatus(running, { pidAlive: alive, now: 1009, staleAfterS: 10 }).stale, undefined);
  assert.equal(reconcileStatus(running, { pidAlive: alive, now: 1011, staleAfterS: 10 }).stale, true);
  assert.equal(reconcileStatus(running, { pidAlive: alive, now: 1011 }).stale, undefined, 'the default is 60 s');
});

test('a stalled run reads "stalled" in the Runs view and the status bar, with no ETA', () => {
  const s = { ...running, stale: true };
  assert.equal(runDescription(s, 1075), 'running · stalled (no heartbeat for 1m15s) · step 12/100');
  assert.equal(statusBarText('lora-r4', s), '$(warning) lora-r4 12/100 stalled');
  assert.match(runDescription(running, 1001), /ETA/);
});

test('a real trainer frozen with SIGSTOP is read stalled, is its run folder\'s trainer, and after the group\'s SIGKILL reads failed', { timeout: 600_000 }, async () => {
  const found = await findPython(cliPythonCandidates(repoRoot()));
  assert.ok(found.python, found.message);
  const parsed = parseExperiment('name: hang\nmodel: {base: builtin:tiny, pretrain_steps: 10}\ndata: {train: builtin:brown, seq_len: 32}\nmethod: lora\nlora: {rank: 4}\ntrain: {steps: 100000, batch_size: 2, device: cpu}\nspectra: {every_steps: 0}\ncheckpoint: {every_steps: 0}\n', undefined, { lints: false });
  assert.ok(parsed.ok, JSON.stringify(parsed.diagnostics));
  const runsDir = path.join(tmpDir('ftl-hang-'), 'runs');
  const run = await new RunStore(runsDir).create(expandSweep(parsed.value!)[0], { experimentName: 'hang' });
  const trainer = await spawnTrainer(trainerCommand(found.python!, trainerDir(), run.dir));
  try {
    const store = new RunStore(runsDir, { staleAfterS: 3 });
    await waitFor(async () => ((await store.get(run.id))?.status.step ?? 0) > 0, 400_000, 200);
    assert.equal((await store.get(run.id))?.status.stale, undefined, 'a training run is not stalled');
    assert.equal(isTrainerOf(trainer.pid, run.dir), true);
    process.kill(-trainer.pid, 'SIGSTOP'); // hung: the process exists, nothing it runs gets a turn
    await waitFor(async () => (await store.get(run.id))?.status.stale === true, 30_000, 250);
    const stalled = (await store.get(run.id))!.status;
    assert.equal(stalled.state, 'running');
    assert.match(runDescription(stalled), /^running · stalled \(no heartbeat for \d+s\)/);
    killGroup(trainer.pid); // Kill Trainer (RunManager.kill adds the reason to status.json first)
    const exit = await trainer.exit;
    assert.equal(exit.signal, 'SIGKILL');
    const after = (await store.get(run.id))!.status;
    assert.deepEqual([after.state, after.error], ['failed', 'process disappeared']);
    assert.equal(fs.readFileSync(path.join(run.dir, 'events.jsonl'), 'utf8').includes('run_finished'), false);
  } finally {
    try { process.kill(-trainer.pid, 'SIGKILL'); } catch { /* gone */ }
  }
});
