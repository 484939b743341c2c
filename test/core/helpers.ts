// Shared by the core tests: the repo root (tests run bundled from out/test/...) and temp folders.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'schemas', 'events.schema.json'))) return dir;
    if (path.dirname(dir) === dir) return process.cwd();
  }
}

// Each test file runs in its own process: its temp folders go when it exits, so repeated runs do
// not fill the disk (CI runs on the same machine; leftovers once left pip no room).
// FINETUNE_LAB_KEEP_TMP=1 keeps them to look at.
const madeTmpDirs: string[] = [];
process.once('exit', () => {
  if (process.env.FINETUNE_LAB_KEEP_TMP) return;
  for (const dir of madeTmpDirs) {
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* still mounted or in use: leave it */ }
  }
});

export function tmpDir(prefix = 'ftl-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  madeTmpDirs.push(dir);
  return dir;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until true or the timeout passes. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 20): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await sleep(stepMs);
  }
}
