/**
 * Host side of a view's data: tails each run's events.jsonl with the core's EventTail,
 * converts new events to drawing-ready batches (parsing stays here, off the webview's drawing
 * path) and hands them on at most 10 times a second. Keeps each run's data in a RunSeries
 * (linear to append, one copy to replay) so a webview that is reloaded (hidden and shown, or
 * revived) can be sent everything again after its `ready`. Run states come from a
 * RunStateSource — the one place that reconciles them — never from the feed's own reading.
 */
import * as path from 'node:path';
import { EventTail } from '../core/events';
import type { RunAppend, RunHeader } from '../core/messages';
import type { RunRef } from '../core/runRef';
import { RunSeries, concatAppends } from '../core/runSeries';
import { filterAppend, runHeaderFrom, toAppend, type FeedFilter, type FoldStats, type ReconciledState } from './wire';

export const FLUSH_MS = 100;

export interface FeedSink {
  batches(b: RunAppend[]): void;
  header(header: RunHeader): void;
}

/** Who knows a run's reconciled state (the RunManager in the editor; a fake in tests). */
export interface RunStateSource {
  stateOf(id: string): ReconciledState | undefined;
  onDidChangeStates(listener: () => void): { dispose(): void };
}

export type { FeedFilter };

class RunTail {
  readonly series = new RunSeries();
  private readonly meta: unknown[] = [];
  private readonly fold: FoldStats = { skipped: 0 };
  header: RunHeader;
  private readonly tail: EventTail;
  constructor(readonly ref: RunRef, private readonly feed: RunFeed) {
    this.header = runHeaderFrom(ref.id, ref.dir, [], feed.stateOf(ref.id));
    this.tail = new EventTail(path.join(ref.dir, 'events.jsonl'));
    this.tail.onEvents((events) => this.onEvents(events));
    this.tail.onReset(() => { this.series.clear(); this.meta.length = 0; this.fold.skipped = 0; });
    this.tail.onSkipped(() => this.refreshHeader());
  }
  private onEvents(events: readonly unknown[]): void {
    let metaChanged = false;
    for (const e of events) {
      const t = (e as { type?: unknown }).type;
      if (t === 'run_started' || t === 'run_finished') { this.meta.push(e); metaChanged = true; }
    }
    const skippedBefore = this.fold.skipped;
    const a = toAppend(this.ref.id, events, this.fold);
    if (metaChanged || this.fold.skipped !== skippedBefore) this.refreshHeader();
    const f = a && this.feed.filterAppend(a);
    if (f) { this.series.add(f); this.feed.queue(f); }
  }
  /** Re-reads the header; tells the feed when what a view shows of it changed. */
  refreshHeader(): void {
    const skipped = { skipped: this.tail.malformed + this.tail.newer + this.fold.skipped, newer: this.tail.newer };
    const next = runHeaderFrom(this.ref.id, this.ref.dir, this.meta, this.feed.stateOf(this.ref.id), skipped);
    const changed = JSON.stringify(next) !== JSON.stringify(this.header);
    this.header = next;
    if (changed) this.feed.headerChanged(this);
  }
  /** Resolves when everything in the file now has been read. */
  caughtUp(): Promise<unknown> { return this.tail.poll(); }
  dispose(): void { this.tail.dispose(); }
}

export class RunFeed {
  private readonly tails = new Map<string, RunTail>();
  private pending: RunAppend[] = [];
  private timer?: NodeJS.Timeout;
  private lastFlush = 0;
  private sink?: FeedSink;
  private readonly stateListener?: { dispose(): void };

  constructor(runs: readonly RunRef[], private readonly filter: FeedFilter, private readonly states?: RunStateSource) {
    for (const r of runs) this.add(r);
    this.stateListener = states?.onDidChangeStates(() => { for (const t of this.tails.values()) t.refreshHeader(); });
  }

  add(ref: RunRef): void {
    if (!this.tails.has(ref.id)) this.tails.set(ref.id, new RunTail(ref, this));
  }

  get refs(): RunRef[] { return [...this.tails.values()].map((t) => t.ref); }
  get headers(): RunHeader[] { return [...this.tails.values()].map((t) => t.header); }

  stateOf(id: string): ReconciledState | undefined { return this.states?.stateOf(id); }

  /** Starts (or restarts, after a webview reload) delivery: everything so far, then new batches. */
  attach(sink: FeedSink): RunAppend[] {
    this.sink = sink;
    this.pending = [];
    return [...this.tails.values()].map((t) => t.series.snapshot(t.ref.id)).filter((a): a is RunAppend => !!a);
  }

  detach(): void { this.sink = undefined; this.pending = []; }

  /** Resolves when every run's events.jsonl has been read as far as it is now written. */
  async caughtUp(): Promise<void> { await Promise.all([...this.tails.values()].map((t) => t.caughtUp())); }

  filterAppend(a: RunAppend): RunAppend | undefined { return filterAppend(a, this.filter); }

  queue(a: RunAppend): void {
    if (!this.sink) return;
    this.pending.push(a);
    if (this.timer) return;
    const wait = Math.max(0, FLUSH_MS - (Date.now() - this.lastFlush));
    this.timer = setTimeout(() => this.flush(), wait);
  }

  headerChanged(t: RunTail): void { this.sink?.header(t.header); }

  private flush(): void {
    this.timer = undefined;
    this.lastFlush = Date.now();
    if (!this.sink || this.pending.length === 0) return;
    // Coalesce per run so one message carries at most one batch per run.
    const byRun = new Map<string, RunAppend[]>();
    for (const a of this.pending) { const l = byRun.get(a.runId); if (l) l.push(a); else byRun.set(a.runId, [a]); }
    this.pending = [];
    this.sink.batches([...byRun].map(([id, list]) => concatAppends(id, list)).filter((a): a is RunAppend => !!a));
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.stateListener?.dispose();
    for (const t of this.tails.values()) t.dispose();
    this.tails.clear();
    this.sink = undefined;
  }
}
