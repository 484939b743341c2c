// Reads a run's events.jsonl: one JSON object a line, append-only (docs/ARCHITECTURE.md). Readers skip a partial
// last line (the trainer may be mid-write) and count malformed lines instead of failing. EventTail
// follows the file by byte offset as the trainer appends.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunEvent } from './generated/events';
import { validateEvent } from './schemas';

/** The `v` of events this reader understands (schemas/events.schema.json); lines of a newer one are skipped. */
export const EVENTS_PROTOCOL = 1;

export interface ParsedEvents {
  events: RunEvent[];
  /** Complete lines that were not a JSON object with a string `type`. */
  malformed: number;
  /** Lines of a newer protocol version (`v` above EVENTS_PROTOCOL): skipped, their fields may mean other things. */
  newer: number;
  /** Text after the last newline: a line still being written; prepend it to the next read. */
  partial: string;
}

/**
 * Parses JSONL text. Lines are checked for shape only (an object with a string `type`), which keeps a
 * million lines to about a second; pass `validate: true` to check each against events.schema.json.
 * Events are appended to `into` when given (and returned in `events`).
 */
export function parseEvents(text: string, opts: { validate?: boolean } = {}, into: RunEvent[] = []): ParsedEvents {
  const events = into;
  let malformed = 0;
  let newer = 0;
  const check = opts.validate ? validateEvent() : undefined;
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) break;
    let end = nl;
    if (end > start && text.charCodeAt(end - 1) === 13) end--; // \r\n
    if (end > start) {
      const line = text.slice(start, end);
      let v: unknown;
      try { v = JSON.parse(line); } catch { v = undefined; }
      if (typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string' && (!check || check(v))) {
        const version = (v as { v?: unknown }).v;
        if (typeof version === 'number' && version > EVENTS_PROTOCOL) newer++;
        else events.push(v as RunEvent);
      } else if (line.trim()) malformed++;
    }
    start = nl + 1;
  }
  return { events, malformed, newer, partial: text.slice(start) };
}

const CHUNK = 8 * 1024 * 1024;
/** No event is this long (a spectrum of a 7B model's widest matrix is well under 1 MB): longer lines are skipped unread. */
export const MAX_LINE = 64 * 1024 * 1024;
const NEWLINE = 0x0a;

/**
 * Reads complete lines from `offset`. Returns the events and the offset just past the last newline
 * (a partial last line is left for the next read). Works in chunks, so a large file never becomes one
 * string. Decoding happens on whole lines only, so a multi-byte character split by a chunk is safe.
 * With `onChunk`, each chunk's events go there as they are parsed and are not collected: a reader of
 * a million-line file then holds one chunk of parsed objects at a time, not a million.
 */
export async function readEventsFrom(file: string, offset: number, onChunk?: (events: RunEvent[]) => void): Promise<{ events: RunEvent[]; malformed: number; newer: number; offset: number; size: number }> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const { size } = await fh.stat();
    const events: RunEvent[] = [];
    let malformed = 0;
    let newer = 0;
    let pos = offset;
    let carry: Buffer = Buffer.alloc(0);
    let longFrom = -1; // where a line longer than MAX_LINE began: skipped up to its newline, never held
    while (pos < size) {
      if (longFrom >= 0) {
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - pos));
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        const nl = buf.subarray(0, bytesRead).indexOf(NEWLINE);
        if (nl < 0) { pos += bytesRead; continue; }
        malformed++;
        longFrom = -1;
        pos += nl + 1;
        continue;
      }
      // The carried partial line goes in front of the next read, in one buffer (no concat copy).
      const buf = Buffer.allocUnsafe(carry.length + Math.min(CHUNK, size - pos));
      carry.copy(buf, 0);
      const { bytesRead } = await fh.read(buf, carry.length, buf.length - carry.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      const data = buf.subarray(0, carry.length + bytesRead);
      const last = data.lastIndexOf(NEWLINE);
      if (last < 0) {
        if (data.length > MAX_LINE) { longFrom = pos - data.length; carry = Buffer.alloc(0); } else carry = Buffer.from(data);
        continue;
      }
      const parsed = parseEvents(data.toString('utf8', 0, last + 1), {}, onChunk ? undefined : events);
      if (onChunk && parsed.events.length) onChunk(parsed.events);
      malformed += parsed.malformed;
      newer += parsed.newer;
      carry = Buffer.from(data.subarray(last + 1));
    }
    // A long line still being written (no newline yet) is read again next time, from its start.
    if (longFrom >= 0) return { events, malformed, newer, offset: longFrom, size };
    return { events, malformed, newer, offset: pos - carry.length, size };
  } finally {
    await fh.close();
  }
}

export interface EventTailOptions {
  /** Fallback poll interval (fs.watch misses events on some file systems); default 1000 ms. */
  pollMs?: number;
  /** Start reading at this byte offset instead of 0. */
  fromOffset?: number;
}

type Listener<T> = (value: T) => void;

/**
 * Follows an events.jsonl as it grows: reads what is there, then each append, by byte offset. The
 * file may not exist yet (the trainer creates it); if it shrinks (truncated or replaced), reading
 * starts again at 0 and `onReset` listeners are told first.
 */
export class EventTail {
  private offset: number;
  private watcher?: fs.FSWatcher;
  private timer?: NodeJS.Timeout;
  private readonly listeners = new Set<Listener<RunEvent[]>>();
  private readonly resetListeners = new Set<Listener<void>>();
  private readonly skippedListeners = new Set<Listener<void>>();
  private reading?: Promise<number>;
  private again = false;
  private disposed = false;
  /** Malformed lines seen so far. */
  malformed = 0;
  /** Lines of a newer protocol version seen so far (skipped). */
  newer = 0;

  constructor(readonly file: string, opts: EventTailOptions = {}) {
    this.offset = opts.fromOffset ?? 0;
    this.timer = setInterval(() => void this.poll(), opts.pollMs ?? 1000);
    this.timer.unref?.();
    this.watch();
    // Let the caller register listeners first, then deliver what the file already holds.
    setImmediate(() => void this.poll());
  }

  /** Listens for new events; returns a disposable. */
  onEvents(cb: Listener<RunEvent[]>): { dispose(): void } {
    this.listeners.add(cb);
    return { dispose: () => this.listeners.delete(cb) };
  }

  /** Listens for changes of the skipped-line counts (`malformed`, `newer`). */
  onSkipped(cb: Listener<void>): { dispose(): void } {
    this.skippedListeners.add(cb);
    return { dispose: () => this.skippedListeners.delete(cb) };
  }

  onReset(cb: Listener<void>): { dispose(): void } {
    this.resetListeners.add(cb);
    return { dispose: () => this.resetListeners.delete(cb) };
  }

  /** Every complete event in the file from the start, independent of where the tail is. */
  async readAll(): Promise<RunEvent[]> {
    try { return (await readEventsFrom(this.file, 0)).events; } catch (e) { if (isMissing(e)) return []; throw e; }
  }

  /** Reads new complete lines now and delivers them to the listeners; resolves to how many came. */
  poll(): Promise<number> {
    if (this.reading) { this.again = true; return this.reading; }
    this.reading = (async () => {
      let n = 0;
      do {
        this.again = false;
        n += await this.readOnce();
      } while (this.again && !this.disposed);
      return n;
    })().finally(() => { this.reading = undefined; });
    return this.reading;
  }

  private async readOnce(): Promise<number> {
    if (this.disposed) return 0;
    let size: number;
    try { size = (await fs.promises.stat(this.file)).size; } catch (e) { if (isMissing(e)) return 0; throw e; }
    if (!this.watcher) this.watch();
    if (size < this.offset) {
      this.offset = 0;
      this.malformed = 0;
      this.newer = 0;
      for (const cb of this.resetListeners) cb();
    }
    if (size === this.offset) return 0;
    let n = 0;
    const r = await readEventsFrom(this.file, this.offset, (events) => {
      n += events.length;
      if (!this.disposed) for (const cb of this.listeners) cb(events);
    });
    this.offset = r.offset;
    this.malformed += r.malformed;
    this.newer += r.newer;
    if ((r.malformed || r.newer) && !this.disposed) for (const cb of this.skippedListeners) cb();
    return n;
  }

  private watch(): void {
    if (this.disposed || this.watcher) return;
    // Watch the folder, not the file: the file may not exist yet, and a replaced file keeps its name.
    try {
      const name = path.basename(this.file);
      this.watcher = fs.watch(path.dirname(this.file), { persistent: false }, (_ev, f) => {
        if (!f || f === name) void this.poll();
      });
      this.watcher.on('error', () => { this.watcher?.close(); this.watcher = undefined; });
    } catch {
      this.watcher = undefined; // the folder does not exist yet: the poll timer covers it
    }
  }

  /** Byte offset just past the last complete line read. */
  get position(): number { return this.offset; }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
    this.listeners.clear();
    this.resetListeners.clear();
    this.skippedListeners.clear();
  }
}

const isMissing = (e: unknown): boolean => (e as NodeJS.ErrnoException)?.code === 'ENOENT';

/** The last event of a file (reads only its tail), e.g. to find run_finished when reconciling. */
export async function lastEvents(file: string, bytes = 64 * 1024): Promise<RunEvent[]> {
  let fh: fs.promises.FileHandle;
  try { fh = await fs.promises.open(file, 'r'); } catch (e) { if (isMissing(e)) return []; throw e; }
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - bytes);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    let text = buf.toString('utf8');
    if (start > 0) text = text.slice(text.indexOf('\n') + 1); // drop the cut first line
    return parseEvents(text).events;
  } finally {
    await fh.close();
  }
}
