import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { adoptOrphanQueues, queueFilePath, saveQueue } from '../../src/core/queueFile';
import { tmpDir } from './helpers';

const dead = (): boolean => false;

test('saveQueue writes the queue in order and removes the file when it empties', () => {
  const dir = tmpDir();
  saveQueue(dir, [{ id: 'a', resume: false }, { id: 'b', resume: true }], 111);
  const content = JSON.parse(fs.readFileSync(queueFilePath(dir, 111), 'utf8'));
  assert.deepEqual(content.runs, [{ id: 'a', resume: false }, { id: 'b', resume: true }]);
  assert.equal(content.owner.pid, 111);
  saveQueue(dir, [], 111);
  assert.equal(fs.existsSync(queueFilePath(dir, 111)), false);
});

test('a dead window\'s queue is adopted once, in order, and its file removed', () => {
  const dir = tmpDir();
  saveQueue(dir, [{ id: 'r1', resume: false }, { id: 'r2', resume: false }], 111);
  const adopted = adoptOrphanQueues(dir, 222, dead);
  assert.deepEqual(adopted.map((e) => e.id), ['r1', 'r2']);
  assert.equal(fs.existsSync(queueFilePath(dir, 111)), false);
  assert.deepEqual(adoptOrphanQueues(dir, 333, dead), [], 'a second window finds nothing left to adopt');
  assert.deepEqual(fs.readdirSync(dir), [], 'no claim or temp files are left behind');
});

test('queues of live processes, of this process and of another host are left alone', () => {
  const dir = tmpDir();
  saveQueue(dir, [{ id: 'live', resume: false }], 111);
  saveQueue(dir, [{ id: 'mine', resume: false }], 222);
  const other = { v: 1, owner: { pid: 444, host: `${os.hostname()}-elsewhere` }, runs: [{ id: 'remote', resume: false }] };
  fs.writeFileSync(path.join(dir, '.queue-window-444.json'), JSON.stringify(other));
  assert.deepEqual(adoptOrphanQueues(dir, 222, (pid) => pid === 111), []);
  assert.equal(fs.readdirSync(dir).length, 3);
});

test('several orphan queues come back oldest first; broken files are skipped, not deleted', () => {
  const dir = tmpDir();
  saveQueue(dir, [{ id: 'new', resume: false }], 12);
  saveQueue(dir, [{ id: 'old', resume: true }], 11);
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(queueFilePath(dir, 11), past, past);
  fs.writeFileSync(path.join(dir, '.queue-window-13.json'), '{ not json');
  assert.deepEqual(adoptOrphanQueues(dir, 99, dead), [{ id: 'old', resume: true }, { id: 'new', resume: false }]);
  assert.ok(fs.existsSync(path.join(dir, '.queue-window-13.json')));
});

test('a missing runs folder adopts nothing', () => {
  assert.deepEqual(adoptOrphanQueues(path.join(tmpDir(), 'absent'), 1, dead), []);
});
