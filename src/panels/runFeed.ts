/**
 * Host side of a view's data: tails each run's events.jsonl with the core's EventTail,
 * converts new events to drawing-ready batches (parsing stays here, off the webview's drawing
 * path) and hands them on at most 10 times a second. Keeps every batch so a webview that is
 * reloaded (hidden and shown, or revived) can be sent everything again after its `ready`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EventTail } from '../core/events';
import type { RunAppend, RunInfo } from '../core/messages';
import { filterAppend, mergeAppend, runInfoFrom, toAppend, type FeedFilter } from './wire';
import type { RunRef } from './runRef';

export const FLUSH_MS = 100;

export interface FeedSink {
  batches(b: RunAppend[]): void;
  status(info: RunInfo): void;
}

export type { FeedFilter };

class RunTail {
  readonly chunks: RunAppend[] = [];
  private readonly meta: unknown[] = [];
  info: RunInfo;
  private readonly tail: EventTail;
  constructor(readonly ref: RunRef, private readonly feed: RunFeed) {
    this.info = runInfoFrom(ref.id, ref.dir, [], readStatus(ref.dir));
    this.tail = new EventTail(path.join(ref.dir, 'events.jsonl'));
    this.tail.onEvents((events) => this.onEvents(events));
    this.tail.onReset(() => { this.chunks.length = 0; this.meta.length = 0; });
  }
  private onEvents(events: readonly unknown[]): void {
    let metaChanged = false;
    for (const e of events) {
      const t = (e as { type?: unknown }).type;
      if (t === 'run_started' || t === 'run_finished') { this.meta.push(e); metaChanged = true; }
    }
    if (metaChanged) { this.info = runInfoFrom(this.ref.id, this.ref.dir, this.meta, readStatus(this.ref.dir)); this.feed.statusChanged(this); }
    const a = toAppend(this.ref.id, events);
    if (a) { const f = this.feed.filterAppend(a); if (f) { this.chunks.push(f); this.feed.queue(f); } }
  }
  /** All data so far as one batch. */
  all(): RunAppend | undefined {
    return this.chunks.length ? this.chunks.reduce(mergeAppend) : undefined;
  }
  dispose(): void { this.tail.dispose(); }
}

function readStatus(dir: string): { state?: unknown; error?: unknown } | undefined {
  try { return JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')) as { state?: unknown; error?: unknown }; } catch { return undefined; }
}

export class RunFeed {
  private readonly tails = new Map<string, RunTail>();
  private pending: RunAppend[] = [];
  private timer?: NodeJS.Timeout;
  private lastFlush = 0;
  private sink?: FeedSink;

  constructor(runs: readonly RunRef[], private readonly filter: FeedFilter) {
    for (const r of runs) this.add(r);
  }

  add(ref: RunRef): void {
    if (!this.tails.has(ref.id)) this.tails.set(ref.id, new RunTail(ref, this));
  }

  get refs(): RunRef[] { return [...this.tails.values()].map((t) => t.ref); }
  get infos(): RunInfo[] { return [...this.tails.values()].map((t) => t.info); }

  /** Starts (or restarts, after a webview reload) delivery: everything so far, then new batches. */
  attach(sink: FeedSink): RunAppend[] {
    this.sink = sink;
    this.pending = [];
    return [...this.tails.values()].map((t) => t.all()).filter((a): a is RunAppend => !!a);
  }

  detach(): void { this.sink = undefined; this.pending = []; }

  filterAppend(a: RunAppend): RunAppend | undefined { return filterAppend(a, this.filter); }

  queue(a: RunAppend): void {
    if (!this.sink) return;
    this.pending.push(a);
    if (this.timer) return;
    const wait = Math.max(0, FLUSH_MS - (Date.now() - this.lastFlush));
    this.timer = setTimeout(() => this.flush(), wait);
  }

  statusChanged(t: RunTail): void { this.sink?.status(t.info); }

  private flush(): void {
    this.timer = undefined;
    this.lastFlush = Date.now();
    if (!this.sink || this.pending.length === 0) return;
    // Coalesce per run so one message carries at most one batch per run.
    const byRun = new Map<string, RunAppend>();
    for (const a of this.pending) byRun.set(a.runId, byRun.has(a.runId) ? mergeAppend(byRun.get(a.runId)!, a) : a);
    this.pending = [];
    this.sink.batches([...byRun.values()]);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    for (const t of this.tails.values()) t.dispose();
    this.tails.clear();
    this.sink = undefined;
  }
}
