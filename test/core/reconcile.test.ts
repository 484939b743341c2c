import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reconcileStatus, pidAlive, STALE_AFTER_S } from '../../src/core/reconcile';
import type { RunStatus } from '../../src/core/generated/status';
import type { RunEvent } from '../../src/core/generated/events';

const running: RunStatus = { v: 1, state: 'running', pid: 4242, heartbeat: 1000, step: 10, total_steps: 100 };
const alive = () => true;
const dead = () => false;

test('running with the pid gone and no run_finished: failed, process disappeared', () => {
  const r = reconcileStatus(running, { pidAlive: dead, now: 1005 });
  assert.equal(r.state, 'failed');
  assert.equal(r.error, 'process disappeared');
});

test('heartbeat older than 60 s with the pid alive: still running, flagged stale', () => {
  assert.equal(reconcileStatus(running, { pidAlive: alive, now: 1000 + STALE_AFTER_S - 1 }).stale, undefined);
  const r = reconcileStatus(running, { pidAlive: alive, now: 1000 + STALE_AFTER_S + 1 });
  assert.equal(r.state, 'running');
  assert.equal(r.stale, true);
});

test('run_finished in events wins over status.json', () => {
  const fin: RunEvent = { v: 1, type: 'run_finished', time: 1010, status: 'stopped', error: null, step: 12 };
  const r = reconcileStatus(running, { pidAlive: dead, lastEvent: fin, now: 2000 });
  assert.equal(r.state, 'stopped');
  assert.equal(r.step, 12);
  const failed = reconcileStatus({ ...running, state: 'completed' }, { pidAlive: dead, lastEvent: { ...fin, status: 'failed', error: 'OOM' }, now: 2000 });
  assert.deepEqual([failed.state, failed.error], ['failed', 'OOM']);
});

test('terminal and queued states pass through; pidAlive sees this process', () => {
  const done: RunStatus = { v: 1, state: 'completed', pid: 1, step: 100, total_steps: 100 };
  assert.deepEqual(reconcileStatus(done, { pidAlive: dead, now: 0 }), done);
  assert.equal(reconcileStatus({ ...running, state: 'queued' }, { pidAlive: dead, now: 0 }).state, 'queued');
  assert.equal(pidAlive(process.pid), true);
  assert.equal(pidAlive(-1), false);
});
