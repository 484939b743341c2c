/**
 * What the runs table shows of its rows: filtered (text and numeric ranges), the learning–forgetting
 * frontier of what is left, sorted by any columns, grouped by experiment or sweep, and as CSV. Pure
 * and synchronous: the webview runs it on every change (10,000 rows sort in milliseconds; see
 * bench/table/RESULTS.md), node --test checks it.
 */
import { paretoFrontier } from './pareto';
import { formatCell } from './tableFormat';
import type { CellValue, TableColumn, TableRow } from './tableProtocol';

export interface SortKey { column: string; descending: boolean }
export interface RangeFilter { column: string; min: number | null; max: number | null }
export type GroupBy = 'none' | 'experiment' | 'sweep';

export interface ViewSettings {
  sort: SortKey[];
  text: string;
  ranges: RangeFilter[];
  groupBy: GroupBy;
  /** Keys of collapsed groups. */
  collapsed: string[];
}

/** A row's value in a column; `frontier` is computed over the rows shown, not stored in the row. */
export type CellOf = (row: TableRow, column: string) => CellValue | undefined;
export const cellOf = (frontier: ReadonlySet<string>): CellOf => (row, column) => (column === 'frontier' ? (row.pareto ? (frontier.has(row.id) ? 1 : 0) : null) : row.cells[column]);

/** Terms of a text filter: space-separated, quoted phrases kept together, lower case. */
export function filterTerms(text: string): string[] {
  return [...text.toLowerCase().matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]).filter((t) => t.length > 0);
}

/** Each row's searchable text for a set of columns; rows are replaced, never changed, when they update. */
const searchText = new WeakMap<TableRow, { sig: string; text: string }>();

/**
 * Rows whose shown text contains every term (in any of the given columns, or the run id) and whose
 * values lie in every range (a row with no value in a ranged column is left out).
 */
export function filterRows(rows: readonly TableRow[], columns: readonly TableColumn[], text: string, ranges: readonly RangeFilter[], cell: CellOf = (r, c) => r.cells[c]): TableRow[] {
  const terms = filterTerms(text);
  const active = ranges.filter((r) => r.min !== null || r.max !== null);
  if (!terms.length && !active.length) return [...rows];
  // The frontier column depends on the other rows shown: it is filtered by range, not searched.
  const searched = columns.filter((c) => c.id !== 'frontier');
  const sig = searched.map((c) => c.id).join('\u0000');
  const haystack = (r: TableRow): string => {
    const hit = searchText.get(r);
    if (hit?.sig === sig) return hit.text;
    const text = [r.id, ...searched.map((c) => formatCell(cell(r, c.id), c.format))].join('\u0000').toLowerCase();
    searchText.set(r, { sig, text });
    return text;
  };
  return rows.filter((r) => {
    for (const f of active) {
      const v = cell(r, f.column);
      if (typeof v !== 'number') return false;
      if (f.min !== null && v < f.min) return false;
      if (f.max !== null && v > f.max) return false;
    }
    if (!terms.length) return true;
    const h = haystack(r);
    return terms.every((t) => h.includes(t));
  });
}

/**
 * Ids of the rows on the learning–forgetting frontier: among the rows evaluated on the same tasks
 * (ParetoPoint.group), those no other row beats on both axes (src/core/pareto.ts), each by its last
 * evaluation's change from the base.
 */
export function frontierIds(rows: readonly TableRow[]): Set<string> {
  const groups = new Map<string, TableRow[]>();
  for (const r of rows) if (r.pareto) { const g = groups.get(r.pareto.group); if (g) g.push(r); else groups.set(r.pareto.group, [r]); }
  const out = new Set<string>();
  for (const list of groups.values()) {
    const p0 = list[0].pareto!;
    const d = { learningHigherIsBetter: p0.learningHigherIsBetter, forgettingHigherIsBetter: p0.forgettingHigherIsBetter };
    for (const i of paretoFrontier(list.map((r) => ({ learning: r.pareto!.learning, forgetting: r.pareto!.forgetting })), d)) out.add(list[i].id);
    // The frontier keeps one of several identical points; a tie with a frontier point is on it too.
    const on = list.filter((r) => out.has(r.id));
    for (const r of list) if (!out.has(r.id) && on.some((f) => f.pareto!.learning === r.pareto!.learning && f.pareto!.forgetting === r.pareto!.forgetting)) out.add(r.id);
  }
  return out;
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** Numbers by value, text by natural order; an empty cell sorts last in either direction. */
export function compareCells(a: CellValue | undefined, b: CellValue | undefined, descending: boolean): number {
  const ea = a === null || a === undefined, eb = b === null || b === undefined;
  if (ea || eb) return ea && eb ? 0 : ea ? 1 : -1;
  let c: number;
  if (typeof a === 'number' && typeof b === 'number') c = a - b;
  else if (typeof a === 'number') c = -1;
  else if (typeof b === 'number') c = 1;
  else c = collator.compare(a, b);
  return descending ? -c : c;
}

/**
 * Sorted by the keys in order; ties (and no keys) keep the newest sweep or run first, a sweep's runs in
 * the sweep's order, then the id (a stable, total order).
 */
export function sortRows(rows: readonly TableRow[], sort: readonly SortKey[], cell: CellOf = (r, c) => r.cells[c]): TableRow[] {
  // Decorate once: a comparator that looks cells up is the cost of sorting 10,000 rows. A sweep is
  // as new as its first run, so its runs (created a few ms apart) stay together.
  const sweepStart = new Map<string, number>();
  const created = (r: TableRow): number => (typeof r.cells.created === 'number' ? r.cells.created : 0);
  for (const r of rows) if (r.sweepId) sweepStart.set(r.sweepId, Math.min(sweepStart.get(r.sweepId) ?? Infinity, created(r)));
  const keyed = rows.map((r) => ({
    r, k: sort.map((s) => cell(r, s.column)),
    at: r.sweepId ? sweepStart.get(r.sweepId)! : created(r),
    index: typeof r.cells.sweepIndex === 'number' ? r.cells.sweepIndex : 0,
  }));
  keyed.sort((x, y) => {
    for (let i = 0; i < sort.length; i++) {
      const c = compareCells(x.k[i], y.k[i], sort[i].descending);
      if (c) return c;
    }
    return y.at - x.at || (x.r.sweepId === y.r.sweepId ? x.index - y.index : 0) || (x.r.id < y.r.id ? -1 : x.r.id > y.r.id ? 1 : 0);
  });
  return keyed.map((x) => x.r);
}

export type ViewItem =
  | { kind: 'group'; key: string; label: string; count: number; collapsed: boolean }
  | { kind: 'row'; row: TableRow };

export function groupKey(row: TableRow, by: GroupBy): string {
  if (by === 'experiment') return `experiment:${row.experiment}`;
  if (by === 'sweep') return row.sweepId ? `sweep:${row.sweepId}` : `run:${row.experiment}`;
  return '';
}

function groupLabel(row: TableRow, by: GroupBy): string {
  if (by === 'experiment') return row.experiment;
  return row.sweepId ? `${row.experiment} · sweep ${row.sweepId}` : `${row.experiment} · runs outside a sweep`;
}

/**
 * The grid's lines: with grouping, a header per group (in the order of the group's first row in the
 * sorted list, so the group holding the best row comes first), then its rows unless collapsed.
 */
export function viewItems(sorted: readonly TableRow[], by: GroupBy, collapsed: ReadonlySet<string>): ViewItem[] {
  if (by === 'none') return sorted.map((row) => ({ kind: 'row', row }));
  const groups = new Map<string, TableRow[]>();
  for (const r of sorted) { const k = groupKey(r, by); const g = groups.get(k); if (g) g.push(r); else groups.set(k, [r]); }
  const out: ViewItem[] = [];
  for (const [key, rows] of groups) {
    const isCollapsed = collapsed.has(key);
    out.push({ kind: 'group', key, label: groupLabel(rows[0], by), count: rows.length, collapsed: isCollapsed });
    if (!isCollapsed) for (const row of rows) out.push({ kind: 'row', row });
  }
  return out;
}

/** What is shown, as CSV: the shown columns in their order (titles as headers), raw values, rows as sorted. */
export function toCsv(columns: readonly TableColumn[], rows: readonly TableRow[], cell: CellOf = (r, c) => r.cells[c]): string {
  const q = (v: CellValue | undefined): string => {
    if (v === null || v === undefined) return '';
    if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
    return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
  };
  const lines = [columns.map((c) => q(c.title)).join(',')];
  for (const r of rows) lines.push(columns.map((c) => q(cell(r, c.id))).join(','));
  return lines.join('\n') + '\n';
}

/**
 * Column order: the user's saved order for the columns it names, and every other column (new since)
 * right after the column it follows by default.
 */
export function orderColumns(columns: readonly TableColumn[], saved: readonly string[]): TableColumn[] {
  const byId = new Map(columns.map((c) => [c.id, c]));
  const out = saved.filter((id) => byId.has(id)).map((id) => byId.get(id)!);
  const placed = new Set(out.map((c) => c.id));
  columns.forEach((c, i) => {
    if (placed.has(c.id)) return;
    let at = 0;
    for (let j = i - 1; j >= 0; j--) { const k = out.findIndex((o) => o.id === columns[j].id); if (k >= 0) { at = k + 1; break; } }
    out.splice(at, 0, c);
    placed.add(c.id);
  });
  return out;
}
