import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StatusChangePoll } from '../../src/core/statusPoll';
import { tmpDir } from './helpers';

function runDir(root: string, id: string, mtimeS: number): string {
  const dir = path.join(root, id);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'status.json');
  fs.writeFileSync(file, '{"state":"running"}');
  fs.utimesSync(file, mtimeS, mtimeS);
  return dir;
}

test('StatusChangePoll: a new or rewritten status.json is a change; an untouched one is not', async () => {
  const root = tmpDir();
  const a = runDir(root, 'a', 1_000);
  const poll = new StatusChangePoll();
  assert.equal(await poll.changed([a]), true, 'first sight counts as a change');
  assert.equal(await poll.changed([a]), false, 'nothing written since');
  fs.utimesSync(path.join(a, 'status.json'), 1_001, 1_001); // the trainer replaced it
  assert.equal(await poll.changed([a]), true);
  assert.equal(await poll.changed([a]), false);
  const b = runDir(root, 'b', 2_000);
  assert.equal(await poll.changed([a, b]), true, 'a second run started');
  assert.equal(await poll.changed([b]), false, 'a run that stopped running is dropped, not a change');
  assert.equal(await poll.changed([a, b]), true, 'and seen afresh when it runs again');
});

test('StatusChangePoll: a folder without status.json (being created, deleted) is no change and no error', async () => {
  const root = tmpDir();
  const poll = new StatusChangePoll();
  assert.equal(await poll.changed([path.join(root, 'gone')]), false);
  assert.equal(await poll.changed([]), false);
});
