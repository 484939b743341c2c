/**
 * The runs table (webview side): every run of a scope as a row of its settings and scores, from the
 * host's `init` and `update` messages (src/core/tableProtocol.ts, checked on receipt). Filtering,
 * the frontier, sorting and grouping run here on every change (src/core/tableQuery.ts), so rows
 * that update live keep the sort, the scroll position and the selection. Everything the user set
 * (sort, filters, grouping, columns, selection, scroll) is kept with setState: a hidden, reloaded
 * or revived panel comes back as it was.
 */
import baseCss from '../common/base.css';
import css from './table.css';
import { adoptCss, el } from '../common/dom';
import { adoptCodicons } from '../common/codicons';
import { readPalette, onThemeChange, runColor, type Palette } from '../common/theme';
import { assertNever, isHostToTable, type HostToTable, type TableAction, type TableColumn, type TableRow, type TableScope, type TableToHost } from '../../src/core/tableProtocol';
import { cellOf, filterRows, frontierIds, orderColumns, sortRows, toCsv, viewItems, type GroupBy, type RangeFilter, type SortKey } from '../../src/core/tableQuery';
import { Grid, type GridColumn } from './grid';
import { ActionBar, ColumnsPanel, RangeControls, RowMenu, button, groupSelect, textField } from './controls';

interface State {
  scope: TableScope;
  sort: SortKey[];
  text: string;
  ranges: RangeFilter[];
  groupBy: GroupBy;
  collapsed: string[];
  /** Columns shown or hidden by the user, over each column's default. */
  visible: Record<string, boolean>;
  order: string[];
  widths: Record<string, number>;
  selection: string[];
  active: string | null;
  scrollTop: number;
  scrollLeft: number;
}

const vscode = acquireVsCodeApi<State>();
const post = (m: TableToHost): void => vscode.postMessage(m);
const saved = vscode.getState() as Partial<State> | undefined;
const state: State = {
  scope: {}, sort: [], text: '', ranges: [], groupBy: 'none', collapsed: [], visible: {}, order: [], widths: {}, selection: [], active: null, scrollTop: 0, scrollLeft: 0,
  ...(saved && typeof saved === 'object' ? saved : {}),
};
let saveTimer = 0;
const save = (): void => { clearTimeout(saveTimer); saveTimer = window.setTimeout(() => vscode.setState(state), 100); };

adoptCss(baseCss);
adoptCss(css);
adoptCodicons();
document.body.classList.add('runs-table');
let pal: Palette = readPalette();

const rows = new Map<string, TableRow>();
let columns: TableColumn[] = [];
let trusted = true;
let loading = true;
let received = false;

// ---- layout -----------------------------------------------------------------------------------
const bar = el('div', 'toolbar');
const title = el('h1', '', 'Runs');
const count = el('span', 'count', 'loading runs…');
const filter = textField('Filter: all words must match', state.text, 'filter', 'Filter runs by text');
let filterTimer = 0;
filter.addEventListener('input', () => { clearTimeout(filterTimer); filterTimer = window.setTimeout(() => { state.text = filter.value; save(); refresh(); }, 80); });
const ranges = new RangeControls((r) => { state.ranges = r; save(); refresh(); }, state.ranges);
const group = groupSelect(state.groupBy, (v) => { state.groupBy = v; save(); refresh(); });
const columnsButton = button('Columns…', () => (panel.open ? panel.hide() : panel.show(columnsButton, orderedColumns(), isShown)), 'Show, hide and reorder columns');
columnsButton.classList.add('columns-button');
const exportButton = button('Export CSV', () => exportCsv(), 'The rows and columns shown, in this order, raw values');
bar.append(title, count, filter, group, el('span', 'spacer'), columnsButton, exportButton);
const rangeBar = el('div', 'actions');
rangeBar.append(el('span', 'label', 'Range:'), ranges.root, ranges.chips);
const actions = new ActionBar((a) => act(a));
document.body.append(bar, rangeBar, actions.root);
const panel = new ColumnsPanel({
  toggle: (id, shown) => { state.visible[id] = shown; save(); layoutColumns(); },
  move: (id, by) => { moveColumn(id, by); },
  reset: () => { state.visible = {}; state.order = []; state.widths = {}; save(); layoutColumns(); panel.render(orderedColumns(), isShown); },
});
document.body.append(panel.root);

const grid = new Grid(document.body, {
  sort: (column, add) => sortBy(column, add),
  reorder: (column, before) => { const ids = orderedColumns().map((c) => c.id).filter((id) => id !== column); const at = before ? ids.indexOf(before) : ids.length; ids.splice(at < 0 ? ids.length : at, 0, column); state.order = ids; save(); layoutColumns(); },
  resize: (column, width) => { state.widths[column] = width; save(); },
  selectionChanged: () => { state.selection = [...grid.selected]; state.active = grid.active; save(); updateActions(); },
  open: () => act('dashboard'),
  contextMenu: (x, y) => menu.open(x, y, grid.selectedRows(), trusted),
  toggleGroup: (key) => { const s = new Set(state.collapsed); if (s.has(key)) s.delete(key); else s.add(key); state.collapsed = [...s]; save(); refresh(); },
  delete: () => act('delete'),
  scrolled: () => { state.scrollTop = grid.root.scrollTop; state.scrollLeft = grid.root.scrollLeft; save(); },
  swatch: (row) => swatchClass(row),
});
const menu = new RowMenu(document.body, (a) => act(a), () => grid.root.focus({ preventScroll: true }));

// ---- colours: one class per distinct run colour (the CSP allows no inline style attributes) -----
const swatches = new Map<string, string>();
const swatchSheet = new CSSStyleSheet();
document.adoptedStyleSheets = [...document.adoptedStyleSheets, swatchSheet];
function swatchClass(row: TableRow): string {
  const color = runColor(pal, row);
  let cls = swatches.get(color);
  if (!cls) {
    cls = `c${swatches.size}`;
    swatches.set(color, cls);
    swatchSheet.replaceSync([...swatches].map(([c, k]) => `.swatch.${k}{background:${c}}`).join('\n'));
  }
  return cls;
}

// ---- columns --------------------------------------------------------------------------------
const isShown = (id: string): boolean => id === 'run' || (state.visible[id] ?? !columns.find((c) => c.id === id)?.hiddenByDefault);
const orderedColumns = (): TableColumn[] => orderColumns(columns, state.order);
const defaultWidth = (c: TableColumn): number => ({ run: 220, state: 130, experiment: 150, sweep: 170, created: 135, id: 300 } as Record<string, number>)[c.id]
  ?? Math.max(c.kind === 'number' ? 78 : 96, Math.min(220, c.title.length * 7.5 + 34));
let shownColumns: GridColumn[] = [];

function layoutColumns(): void {
  shownColumns = orderedColumns().filter((c) => isShown(c.id)).map((c) => ({ ...c, width: state.widths[c.id] ?? defaultWidth(c) }));
  grid.setColumns(shownColumns, state.sort);
  // Scores first: what a range is usually about.
  const numeric = shownColumns.filter((c) => c.kind === 'number');
  ranges.setColumns([...numeric.filter((c) => c.group === 'score'), ...numeric.filter((c) => c.group !== 'score')]);
  if (panel.open) panel.render(orderedColumns(), isShown);
  refresh();
}

function moveColumn(id: string, by: -1 | 1): void {
  const ids = orderedColumns().map((c) => c.id);
  const i = ids.indexOf(id), j = i + by;
  if (i < 0 || j < 0 || j >= ids.length) return;
  [ids[i], ids[j]] = [ids[j], ids[i]];
  state.order = ids; save(); layoutColumns();
}

/** First click: best first for a score (by its direction), A→Z for text; again: reversed; a third time: off. */
function sortBy(column: string, add: boolean): void {
  const col = columns.find((c) => c.id === column);
  const first = col?.better === 'higher' || (col?.format === 'time');
  const cur = state.sort.find((s) => s.column === column);
  let next: SortKey[];
  if (!cur) next = add ? [...state.sort, { column, descending: first }] : [{ column, descending: first }];
  else if (cur.descending === first) next = (add ? state.sort : [cur]).map((s) => (s.column === column ? { column, descending: !first } : s));
  else next = add ? state.sort.filter((s) => s.column !== column) : [];
  state.sort = next;
  save();
  grid.setSort(state.sort);
  refresh();
}

// ---- what is shown ----------------------------------------------------------------------------
let shownRows: TableRow[] = [];
let cell = cellOf(new Set());
let frame = 0;
function refresh(): void { if (!frame) frame = requestAnimationFrame(() => { frame = 0; recompute(); }); }

function recompute(): void {
  const all = [...rows.values()];
  const plain = state.ranges.filter((r) => r.column !== 'frontier');
  const filtered = filterRows(all, shownColumns, state.text, plain);
  const frontier = frontierIds(filtered);
  cell = cellOf(frontier);
  const onFrontier = state.ranges.filter((r) => r.column === 'frontier');
  shownRows = sortRows(onFrontier.length ? filterRows(filtered, [], '', onFrontier, cell) : filtered, state.sort, cell);
  const items = viewItems(shownRows, state.groupBy, new Set(state.collapsed));
  const empty = !received ? 'loading runs…' : all.length === 0 ? 'No runs here yet. Start a run (or a sweep) from an experiment file\'s CodeLens.' : 'No run matches the filters.';
  grid.setItems(items, cell, frontier, empty);
  const titleOf = (id: string): string => columns.find((c) => c.id === id)?.title ?? id;
  ranges.render(titleOf);
  count.textContent = `${shownRows.length === all.length ? `${all.length}` : `${shownRows.length} of ${all.length}`} run${all.length === 1 ? '' : 's'}${frontier.size ? ` · ${frontier.size} on the frontier` : ''}${loading ? ' · reading scores…' : ''}`;
  updateActions();
}

function updateActions(): void { actions.update(grid.selectedRows(), shownRows.length, trusted); }

function act(action: TableAction): void {
  const ids = grid.selectedRows().map((r) => r.id);
  if (ids.length) post({ type: 'action', action, runIds: ids });
}

function exportCsv(): void {
  // "Runs: e2e-table sweep" → runs-e2e-table-sweep.csv
  const what = (title.textContent ?? '').replace(/^Runs:?\s*/, '').replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 100);
  const name = `runs${what ? `-${what}` : ''}.csv`;
  post({ type: 'export', name, data: toCsv(shownColumns, shownRows, cell) });
}

// ---- messages -------------------------------------------------------------------------------
function onMessage(msg: HostToTable): void {
  switch (msg.type) {
    case 'init': {
      const first = !received;
      received = true;
      state.scope = msg.scope; trusted = msg.trusted; loading = msg.loading;
      title.textContent = msg.title;
      columns = msg.columns;
      rows.clear();
      for (const r of msg.rows) rows.set(r.id, r);
      save();
      layoutColumns();
      if (first) {
        grid.setSelection(state.selection, state.active);
        // Back where the user was, once the rows are laid out.
        requestAnimationFrame(() => requestAnimationFrame(() => { grid.root.scrollTop = state.scrollTop; grid.root.scrollLeft = state.scrollLeft; }));
      }
      return;
    }
    case 'update': {
      for (const id of msg.remove) rows.delete(id);
      for (const r of msg.upsert) rows.set(r.id, r);
      loading = msg.loading;
      if (msg.columns) { columns = msg.columns; layoutColumns(); } else refresh();
      return;
    }
    case 'error': count.textContent = msg.message; return;
    default: return assertNever(msg);
  }
}

window.addEventListener('message', (ev: MessageEvent<unknown>) => {
  if (!isHostToTable(ev.data)) {
    post({ type: 'log', level: 'error', message: `runs table dropped an invalid message: ${String((ev.data as { type?: unknown })?.type)}` });
    return;
  }
  onMessage(ev.data);
});
onThemeChange(() => { pal = readPalette(); swatches.clear(); grid.setColumns(shownColumns, state.sort); refresh(); });
post({ type: 'ready' });
