/**
 * Host side of the runs table's data: the runs of a scope from the RunManager (the one place that
 * reconciles states), each with its scores from a ScoreCache, turned into rows (src/core/tableRows)
 * and posted as `init`, then `update`s of only the rows that changed, at most 4 times a second.
 *
 * No watcher per run: a run's scores are recomputed when the RunManager reports a change (its
 * status.json changed, or it appeared) and, while any run of the scope is running, on a poll
 * every 2 s of the running runs' events.jsonl (one stat each; new bytes only are read). Finished
 * runs are read once. No vscode import: test/shell/tableFeed.test.ts drives it with real run folders.
 */
import type { StoredRun } from '../core/runStore';
import { ScoreCache } from '../core/scoreCache';
import type { RunScores } from '../core/runScores';
import { columnShape, tableColumns, taskInfoOf } from '../core/tableColumns';
import type { HostToTable, TableColumn, TableRow, TableScope } from '../core/tableProtocol';
import { tableRow, type RunInput } from '../core/tableRows';

/** The RunManager as the feed sees it. */
export interface TableRunSource {
  readonly runs: readonly StoredRun[];
  onDidChangeRuns(listener: () => void): { dispose(): void };
}

export type TableSink = (msg: HostToTable) => void;

export interface TableFeedOptions { pollMs?: number; flushMs?: number; concurrency?: number }

export function inScope(r: StoredRun, scope: TableScope): boolean {
  return (!scope.experiment || r.meta.experiment_name === scope.experiment) && (!scope.sweepId || r.meta.sweep_id === scope.sweepId);
}

/** What of a stored run makes its row change (besides its scores). */
const signature = (r: StoredRun): string => JSON.stringify([r.status.state, r.status.stale, r.status.error, r.status.step, r.meta, r.config || r.analysis ? 1 : 0, r.error ?? '']);

function runInput(r: StoredRun, scores: RunScores | null): RunInput {
  return {
    id: r.id, meta: r.meta as RunInput['meta'], state: r.status.state, stale: r.status.stale === true, error: r.status.error ?? null,
    // An analysis run's settings are its analysis config's (method, lora.rank, model.base, reduce_intruders.lambda…).
    step: r.status.step, totalSteps: r.status.total_steps, config: r.config ?? r.analysis, scores, ...(r.error ? { folderError: r.error } : {}),
  };
}

export class TableFeed {
  private readonly runs = new Map<string, StoredRun>();
  private readonly sigs = new Map<string, string>();
  private readonly rows = new Map<string, TableRow>();
  private readonly postedRows = new Map<string, string>();
  private readonly dirty = new Set<string>();
  private readonly removed = new Set<string>();
  private postedColumns = '';
  /** Each row's columnShape; the columns are recomputed (O(rows × cells)) only when one changes. */
  private readonly shapes = new Map<string, string>();
  private columnsStale = true;
  private postedLoading = true;
  private sink?: TableSink;
  private loading = true;
  private flushTimer?: NodeJS.Timeout;
  private lastFlush = 0;
  private readonly pollTimer: NodeJS.Timeout;
  private readonly listener: { dispose(): void };
  private disposed = false;
  private readonly pollMs: number;
  private readonly flushMs: number;
  private readonly concurrency: number;
  private firstRead: Promise<void>;

  constructor(private readonly source: TableRunSource, readonly scope: TableScope, private readonly cache = new ScoreCache(), opts: TableFeedOptions = {}) {
    this.pollMs = opts.pollMs ?? 2000;
    this.flushMs = opts.flushMs ?? 250;
    this.concurrency = opts.concurrency ?? 8;
    this.listener = source.onDidChangeRuns(() => this.sync());
    this.pollTimer = setInterval(() => this.poll(), this.pollMs);
    this.pollTimer.unref?.();
    this.firstRead = this.sync(true);
  }

  /** Resolves when every run known now has had its scores read once. */
  ready(): Promise<void> { return this.firstRead; }

  /** (Re)starts delivery: `init` with every row as known now, then updates. */
  attach(sink: TableSink, title: string, trusted: boolean): void {
    this.sink = sink;
    this.dirty.clear();
    this.removed.clear();
    const rows = [...this.rows.values()];
    const columns = this.columns();
    this.postedColumns = JSON.stringify(columns);
    this.postedLoading = this.loading;
    this.postedRows.clear();
    this.shapes.clear();
    for (const r of rows) { this.postedRows.set(r.id, JSON.stringify(r)); this.shapes.set(r.id, columnShape(r)); }
    this.columnsStale = false;
    sink({ type: 'init', scope: this.scope, title, columns, rows, trusted, loading: this.loading });
  }

  detach(): void { this.sink = undefined; }

  /** Takes in the source's runs: new and changed ones get their scores (re)read, gone ones leave. */
  private async sync(first = false): Promise<void> {
    const now = this.source.runs.filter((r) => inScope(r, this.scope));
    const ids = new Set(now.map((r) => r.id));
    for (const id of this.runs.keys()) if (!ids.has(id)) {
      this.runs.delete(id); this.sigs.delete(id); this.rows.delete(id); this.dirty.delete(id); this.removed.add(id);
    }
    const toRead: StoredRun[] = [];
    for (const r of now) {
      const sig = signature(r);
      const changed = this.sigs.get(r.id) !== sig;
      this.runs.set(r.id, r);
      this.sigs.set(r.id, sig);
      if (changed) { this.rows.set(r.id, tableRow(runInput(r, this.cache.peek(r.dir)))); this.dirty.add(r.id); }
      if (changed || r.status.state === 'running') toRead.push(r);
    }
    this.cache.retain(now.map((r) => r.dir));
    if (this.removed.size || this.dirty.size) this.scheduleFlush();
    await this.readScores(toRead);
    if (first) { this.loading = false; this.scheduleFlush(true); }
  }

  /** The running runs' events, read as far as they are written now. */
  private poll(): void {
    const running = [...this.runs.values()].filter((r) => r.status.state === 'running');
    if (running.length) void this.readScores(running);
  }

  private async readScores(list: StoredRun[]): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < list.length && !this.disposed) {
        const r = list[next++];
        try {
          const { scores, changed } = await this.cache.get(r.dir);
          const cur = this.runs.get(r.id);
          if (!changed || !cur) continue;
          this.rows.set(r.id, tableRow(runInput(cur, scores)));
          this.dirty.add(r.id);
          this.scheduleFlush();
        } catch (e) {
          console.warn(`[finetune-lab] runs table: could not read ${r.id}'s events: ${(e as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, list.length) }, worker));
  }

  private columns(): TableColumn[] {
    const inputs = [...this.runs.values()].map((r) => ({ scores: this.cache.peek(r.dir) }));
    return tableColumns([...this.rows.values()], taskInfoOf(inputs));
  }

  private scheduleFlush(force = false): void {
    if (this.flushTimer || this.disposed) return;
    const wait = force ? 0 : Math.max(0, this.flushMs - (Date.now() - this.lastFlush));
    this.flushTimer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    this.flushTimer = undefined;
    this.lastFlush = Date.now();
    if (!this.sink) return;
    const upsert: TableRow[] = [];
    for (const id of this.dirty) {
      const row = this.rows.get(id);
      if (!row) continue;
      const json = JSON.stringify(row);
      if (this.postedRows.get(id) === json) continue;
      this.postedRows.set(id, json);
      upsert.push(row);
    }
    this.dirty.clear();
    const remove = [...this.removed].filter((id) => this.postedRows.delete(id));
    for (const id of this.removed) if (this.shapes.delete(id)) this.columnsStale = true;
    this.removed.clear();
    for (const r of upsert) {
      const shape = columnShape(r);
      if (this.shapes.get(r.id) !== shape) { this.shapes.set(r.id, shape); this.columnsStale = true; }
    }
    let columnsChanged = false;
    let columns: TableColumn[] | undefined;
    if (this.columnsStale) {
      this.columnsStale = false;
      columns = this.columns();
      const colJson = JSON.stringify(columns);
      columnsChanged = colJson !== this.postedColumns;
      this.postedColumns = colJson;
    }
    if (!upsert.length && !remove.length && !columnsChanged && this.postedLoading === this.loading) return;
    this.postedLoading = this.loading;
    this.sink({ type: 'update', upsert, remove, loading: this.loading, ...(columnsChanged && columns ? { columns } : {}) });
  }

  dispose(): void {
    this.disposed = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.flushTimer);
    this.listener.dispose();
    this.sink = undefined;
  }
}
