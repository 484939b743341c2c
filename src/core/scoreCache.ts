/**
 * Scores of many runs without a watcher per run: each run's ScoreFold is kept with the identity
 * of the events.jsonl it has read (inode, size, mtime, byte offset). Asking again costs one stat
 * when nothing changed; a file that grew is read from the offset where the last read stopped
 * (the trainer only appends); a file that shrank or was replaced is read again from the start.
 * The caller decides when to ask (the runs table: on RunManager changes, and on a throttled poll
 * while runs are running).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readEventsFrom } from './events';
import { ScoreFold, type RunScores } from './runScores';

interface Entry {
  ino: number;
  size: number;
  mtimeMs: number;
  offset: number;
  fold: ScoreFold;
  scores: RunScores;
}

export interface ScoreLookup {
  scores: RunScores | null;
  /** True when this call read new bytes (or found the file gone): what was returned before is stale. */
  changed: boolean;
}

export class ScoreCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<ScoreLookup>>();
  /** Bytes read so far (tests check that an unchanged file is not read again). */
  bytesRead = 0;

  /** The scores of the run folder `dir` (null when it has no events.jsonl yet). */
  get(dir: string): Promise<ScoreLookup> {
    // Two callers asking at once share one read: the fold must see each byte once.
    const running = this.inflight.get(dir);
    if (running) return running;
    const p = this.read(dir).finally(() => this.inflight.delete(dir));
    this.inflight.set(dir, p);
    return p;
  }

  /** What was computed last, without touching the disk. */
  peek(dir: string): RunScores | null { return this.entries.get(dir)?.scores ?? null; }

  forget(dir: string): void { this.entries.delete(dir); }

  /** Drops the entries of folders not in `dirs` (runs deleted). */
  retain(dirs: Iterable<string>): void {
    const keep = new Set(dirs);
    for (const d of this.entries.keys()) if (!keep.has(d)) this.entries.delete(d);
  }

  private async read(dir: string): Promise<ScoreLookup> {
    const file = path.join(dir, 'events.jsonl');
    let st: fs.Stats;
    try { st = await fs.promises.stat(file); } catch {
      const had = this.entries.delete(dir);
      return { scores: null, changed: had };
    }
    let e = this.entries.get(dir);
    if (e && e.ino === st.ino && e.size === st.size && e.mtimeMs === st.mtimeMs) return { scores: e.scores, changed: false };
    if (!e || e.ino !== st.ino || st.size < e.offset) {
      e = { ino: st.ino, size: 0, mtimeMs: 0, offset: 0, fold: new ScoreFold(), scores: new ScoreFold().result() };
    }
    const fold = e.fold;
    const r = await readEventsFrom(file, e.offset, (events) => fold.add(events));
    this.bytesRead += r.size - e.offset;
    const next: Entry = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, offset: r.offset, fold, scores: fold.result() };
    this.entries.set(dir, next);
    return { scores: next.scores, changed: true };
  }
}
