// A window's run queue, kept on disk beside the runs (`<runs>/.queue-window-<pid>.json`) so that a
// window reload does not strand a sweep: the new extension host finds the file of a host that is
// gone and takes its queue over. Taking over is a rename, which only one claimant can win, so two
// windows reloading at once never start the same run twice.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isRunId } from './runPath';

export interface QueueEntry { id: string; resume: boolean }

interface QueueFileContent {
  v: 1;
  owner: { pid: number; host: string };
  runs: QueueEntry[];
}

const PREFIX = '.queue-window-';

export function queueFilePath(runsDir: string, pid = process.pid): string {
  return path.join(runsDir, `${PREFIX}${pid}.json`);
}

/** Writes this process's queue (atomically), or removes the file when the queue is empty. */
export function saveQueue(runsDir: string, runs: readonly QueueEntry[], pid = process.pid): void {
  const file = queueFilePath(runsDir, pid);
  if (!runs.length) { fs.rmSync(file, { force: true }); return; }
  const content: QueueFileContent = { v: 1, owner: { pid, host: os.hostname() }, runs: runs.map(({ id, resume }) => ({ id, resume })) };
  fs.mkdirSync(runsDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(content, null, 1));
  fs.renameSync(tmp, file);
}

export function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * The queues left by processes on this machine that no longer exist, oldest file first, claimed by
 * `myPid` (their files are removed). Queues of live processes, or of another host (whose processes
 * cannot be checked from here), are left alone. Unreadable files are skipped, not deleted.
 */
export function adoptOrphanQueues(runsDir: string, myPid = process.pid, alive: (pid: number) => boolean = pidAlive): QueueEntry[] {
  let names: string[];
  try { names = fs.readdirSync(runsDir).filter((n) => n.startsWith(PREFIX) && n.endsWith('.json')); } catch { return []; }
  const found: { mtime: number; runs: QueueEntry[] }[] = [];
  for (const name of names) {
    const pid = Number(name.slice(PREFIX.length, -'.json'.length));
    if (!Number.isInteger(pid) || pid === myPid) continue;
    const file = path.join(runsDir, name);
    let content: QueueFileContent;
    try { content = JSON.parse(fs.readFileSync(file, 'utf8')) as QueueFileContent; } catch { continue; }
    if (content?.v !== 1 || !Array.isArray(content.runs) || content.owner?.host !== os.hostname() || alive(pid)) continue;
    const claimed = `${file}.adopted-by-${myPid}`;
    let mtime: number;
    try {
      mtime = fs.statSync(file).mtimeMs;
      fs.renameSync(file, claimed); // the claim: whoever renames first owns the queue
    } catch { continue; }
    fs.rmSync(claimed, { force: true });
    found.push({ mtime, runs: content.runs.filter((r) => isRunId(r?.id)).map((r) => ({ id: r.id, resume: !!r.resume })) });
  }
  return found.sort((a, b) => a.mtime - b.mtime).flatMap((q) => q.runs);
}
