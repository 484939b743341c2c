// The file-system watcher's fallback for live progress: notices a running run's status.json
// changing by its modification time. A watcher can miss or delay events (a busy host, a runs
// folder on NFS written by a Slurm node, inotify limits reached); a stat of each running run's
// status.json every few seconds cannot, and costs one stat per running run.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export class StatusChangePoll {
  private seen = new Map<string, number>();

  /**
   * True when a status.json in `runDirs` changed since the last call (a folder not seen before
   * counts as changed). Folders left out are forgotten; a missing file reads as unchanged.
   */
  async changed(runDirs: readonly string[]): Promise<boolean> {
    const next = new Map<string, number>();
    let changed = false;
    for (const dir of runDirs) {
      let mtime: number;
      try { mtime = (await fs.stat(path.join(dir, 'status.json'))).mtimeMs; } catch { continue; }
      next.set(dir, mtime);
      if (this.seen.get(dir) !== mtime) changed = true;
    }
    this.seen = next;
    return changed;
  }
}
