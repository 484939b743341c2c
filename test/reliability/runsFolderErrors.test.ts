// A full or read-only runs folder when a run is created (issue 17): the error is thrown with the
// file system's reason (the editor and the CLI show it), and no half-made run folder is left. A
// small tmpfs needs root (the project's machines run the tests as root); elsewhere it says so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { RunStore } from '../../src/core/runStore';
import { expandSweep } from '../../src/core/sweep';
import type { ExperimentConfig } from '../../src/core/generated/experiment';
import { tmpDir } from '../core/helpers';

const root = process.getuid?.() === 0;
const planned = expandSweep({ name: 'x', model: { base: 'builtin:tiny' }, data: { train: 'builtin:brown' }, method: 'lora', description: 'd'.repeat(20_000) } as unknown as ExperimentConfig)[0];

function tmpfs(size: string, readOnly = false): string {
  const dir = tmpDir('ftl-tmpfs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${readOnly ? ',ro' : ''}`, 'tmpfs', dir]);
  return dir;
}

test('a runs folder that fills up while runs are created: ENOSPC, and no half-made run folder', { skip: !root && 'needs root for a tmpfs' }, async () => {
  const disk = tmpfs('64k');
  try {
    const store = new RunStore(path.join(disk, 'runs'));
    let made = 0;
    await assert.rejects(async () => { for (;;) { await store.create(planned, { experimentName: 'x' }); made++; } }, /ENOSPC/);
    const left = fs.readdirSync(path.join(disk, 'runs'));
    assert.equal(left.length, made, `the folder of the run that did not fit was left: ${left.join(', ')}`);
    for (const id of left) assert.deepEqual(fs.readdirSync(path.join(disk, 'runs', id)).sort(), ['config.yaml', 'meta.json', 'status.json']);
    assert.ok(made >= 1, 'the disk was too small to hold even one run');
  } finally { execFileSync('umount', ['-l', disk]); }
});

test('a read-only runs folder: EROFS, and nothing is made', { skip: !root && 'needs root for a tmpfs' }, async () => {
  const disk = tmpfs('1m', true);
  try {
    await assert.rejects(new RunStore(disk).create(planned, { experimentName: 'x' }), /EROFS/);
    assert.deepEqual(fs.readdirSync(disk), []);
  } finally { execFileSync('umount', ['-l', disk]); }
});
