/**
 * The runs table's grid: an ARIA grid (role=grid, rows and cells, aria-sort on headers,
 * aria-activedescendant for the focused row) whose rows are virtual: only the rows in view (and a
 * few around) exist in the DOM, positioned in a body as tall as all of them, so 10,000 runs scroll
 * and sort like 10. Sticky header (gridHeader.ts: sort, reorder, resize) and first column; click,
 * Ctrl/Cmd+click and Shift+click select; arrows, Page Up/Down, Home/End, Space, Ctrl+A, Enter,
 * Delete and the context-menu key work from the keyboard.
 */
import type { TableRow } from '../../src/core/tableProtocol';
import type { CellOf, SortKey, ViewItem } from '../../src/core/tableQuery';
import { formatCell } from '../../src/core/tableFormat';
import { STATE_ICON } from '../../src/core/runStateIcons';
import { el } from '../common/dom';
import { codicon } from '../common/codicons';
import { GridHeader, type GridColumn } from './gridHeader';

export type { GridColumn };

export const ROW_H = 24;
const OVERSCAN = 8;


export interface GridEvents {
  sort(column: string, add: boolean): void;
  reorder(column: string, before: string | null): void;
  resize(column: string, width: number): void;
  selectionChanged(): void;
  /** Enter or double-click: open the selection. */
  open(): void;
  contextMenu(x: number, y: number): void;
  toggleGroup(key: string): void;
  delete(): void;
  scrolled(): void;
  /** The swatch class of a run's colour (webview/common/theme.ts runColor). */
  swatch(row: TableRow): string;
}

const itemKey = (it: ViewItem): string => (it.kind === 'row' ? it.row.id : `group:${it.key}`);

export class Grid {
  readonly root = el('div', 'runs-grid');
  private readonly body = el('div', 'body');
  private readonly empty = el('div', 'empty hidden');
  private columns: GridColumn[] = [];
  private readonly header: GridHeader;
  private items: ViewItem[] = [];
  private cell: CellOf = (r, c) => r.cells[c];
  private frontier: ReadonlySet<string> = new Set();
  /** Row elements in use, by item index. */
  private live = new Map<number, { el: HTMLElement; item: ViewItem; epoch: number }>();
  private epoch = 0;
  /** Bumped when the columns change: a row's cell elements are reused until then. */
  private columnsEpoch = 0;
  private frame = 0;
  readonly selected = new Set<string>();
  private anchor: string | null = null;
  /** The focused line (a run id or `group:<key>`). */
  active: string | null = null;

  constructor(parent: HTMLElement, private readonly on: GridEvents) {
    this.root.setAttribute('role', 'grid');
    this.root.setAttribute('aria-multiselectable', 'true');
    this.root.setAttribute('aria-label', 'Runs');
    this.root.tabIndex = 0;
    this.header = new GridHeader(this.root, on);
    this.root.append(this.header.root, this.body, this.empty);
    parent.append(this.root);
    this.root.addEventListener('scroll', () => { this.schedule(); this.on.scrolled(); }, { passive: true });
    new ResizeObserver(() => this.schedule()).observe(this.root);
    this.body.addEventListener('mousedown', (e) => this.onMouseDown(e));
    this.body.addEventListener('dblclick', (e) => { if (this.itemAt(e)?.kind === 'row') this.on.open(); });
    this.body.addEventListener('contextmenu', (e) => this.onContextMenu(e));
    this.root.addEventListener('keydown', (e) => this.onKey(e));
  }

  // ---- data -----------------------------------------------------------------------------

  setColumns(columns: GridColumn[], sort: readonly SortKey[]): void {
    this.columns = columns;
    this.root.setAttribute('aria-colcount', String(columns.length));
    this.header.set(columns, sort);
    this.epoch++;
    this.columnsEpoch++;
    this.schedule();
  }

  /** The sort changed: only the headers' indicators and aria-sort (the rows come with setItems). */
  setSort(sort: readonly SortKey[]): void { this.header.setSort(sort); }

  /** Puts the keyboard on the header row. */
  focusHeader(): void { this.header.focus(); }

  setItems(items: ViewItem[], cell: CellOf, frontier: ReadonlySet<string>, emptyText: string): void {
    this.items = items;
    this.cell = cell;
    this.frontier = frontier;
    this.epoch++;
    this.root.setAttribute('aria-rowcount', String(items.length + 1));
    this.body.style.height = `${items.length * ROW_H}px`;
    this.empty.textContent = emptyText;
    this.empty.classList.toggle('hidden', items.length > 0);
    if (this.active && !items.some((it) => itemKey(it) === this.active)) this.active = null;
    this.schedule();
  }

  /** The selected runs in the order shown (what the actions act on). */
  selectedRows(): TableRow[] {
    return this.items.flatMap((it) => (it.kind === 'row' && this.selected.has(it.row.id) ? [it.row] : []));
  }

  rowsShown(): TableRow[] { return this.items.flatMap((it) => (it.kind === 'row' ? [it.row] : [])); }

  setSelection(ids: Iterable<string>, active: string | null): void {
    this.selected.clear();
    for (const id of ids) this.selected.add(id);
    this.active = active;
    this.anchor = active;
    this.repaint();
  }

  /** Draws the rows in view now (the benchmark times this). */
  renderNow(): void { cancelAnimationFrame(this.frame); this.frame = 0; this.render(); }

  private schedule(): void { if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); }); }

  /** Selection and focus changed, not the rows: only the lines' classes and ARIA states are updated. */
  private repaint(): void {
    for (const { el: rowEl, item } of this.live.values()) {
      const key = itemKey(item);
      rowEl.classList.toggle('active', key === this.active);
      if (item.kind === 'row') {
        const sel = this.selected.has(item.row.id);
        rowEl.classList.toggle('selected', sel);
        rowEl.setAttribute('aria-selected', String(sel));
      }
    }
    this.markActive();
  }

  private markActive(): void {
    const act = this.active ? [...this.live.values()].find((r) => itemKey(r.item) === this.active) : undefined;
    if (act) this.root.setAttribute('aria-activedescendant', act.el.id); else this.root.removeAttribute('aria-activedescendant');
  }

  // ---- drawing ----------------------------------------------------------------------------

  private render(): void {
    const top = this.root.scrollTop;
    const height = this.root.clientHeight || 600;
    const first = Math.max(0, Math.floor((top - 28) / ROW_H) - OVERSCAN);
    const last = Math.min(this.items.length - 1, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const next = new Map<number, { el: HTMLElement; item: ViewItem; epoch: number }>();
    const spare: HTMLElement[] = [];
    for (const [i, r] of this.live) if (i < first || i > last) spare.push(r.el); else next.set(i, r);
    for (let i = first; i <= last; i++) {
      const item = this.items[i];
      let cur = next.get(i);
      if (cur && cur.item === item && cur.epoch === this.epoch) continue;
      const rowEl = cur?.el ?? spare.pop() ?? this.body.appendChild(el('div', 'row'));
      this.fill(rowEl, item, i);
      cur = { el: rowEl, item, epoch: this.epoch };
      next.set(i, cur);
    }
    for (const s of spare) s.remove();
    this.live = next;
    this.markActive();
    document.dispatchEvent(new CustomEvent('finetunelab:table-drawn', { detail: { rows: this.items.length } }));
  }

  private fill(rowEl: HTMLElement, item: ViewItem, i: number): void {
    rowEl.style.transform = `translateY(${i * ROW_H}px)`;
    rowEl.id = `line-${i}`;
    rowEl.setAttribute('role', 'row');
    rowEl.setAttribute('aria-rowindex', String(i + 2));
    const key = itemKey(item);
    rowEl.dataset.key = key;
    rowEl.classList.toggle('active', key === this.active);
    if (item.kind === 'group') {
      rowEl.className = `row group${key === this.active ? ' active' : ''}`;
      rowEl.removeAttribute('aria-selected');
      rowEl.setAttribute('aria-expanded', String(!item.collapsed));
      rowEl.title = '';
      const c = el('div', 'cell');
      c.setAttribute('role', 'gridcell');
      c.append(codicon(item.collapsed ? 'chevron-right' : 'chevron-down'), document.createTextNode(item.label), el('span', 'count', `${item.count} run${item.count === 1 ? '' : 's'}`));
      rowEl.replaceChildren(c);
      delete rowEl.dataset.columns;
      return;
    }
    const row = item.row;
    const sel = this.selected.has(row.id);
    rowEl.className = `row${sel ? ' selected' : ''}${key === this.active ? ' active' : ''}`;
    rowEl.removeAttribute('aria-expanded');
    rowEl.setAttribute('aria-selected', String(sel));
    rowEl.title = row.error ? `${row.id}\n${row.error}` : row.id;
    // The cell elements of a line are kept while the columns stay (scrolling and live updates refill them).
    if (rowEl.dataset.columns !== String(this.columnsEpoch)) {
      rowEl.replaceChildren(...this.columns.map((_, ci) => {
        const td = el('div');
        td.setAttribute('role', 'gridcell');
        td.setAttribute('aria-colindex', String(ci + 1));
        return td;
      }));
      rowEl.dataset.columns = String(this.columnsEpoch);
    }
    const cells = rowEl.children;
    this.columns.forEach((c, ci) => {
      const td = cells[ci] as HTMLElement;
      td.className = c.kind === 'number' ? 'cell num' : 'cell';
      td.removeAttribute('title');
      td.textContent = '';
      this.fillCell(td, row, c);
    });
  }

  private fillCell(td: HTMLElement, row: TableRow, c: GridColumn): void {
    const v = this.cell(row, c.id);
    if (c.id === 'run') {
      td.append(el('span', `swatch ${this.on.swatch(row)}`), codicon(row.kind === 'analysis' ? 'telescope' : 'beaker'));
      td.append(document.createTextNode(typeof v === 'string' ? v : row.id));
      if (this.frontier.has(row.id)) { const s = codicon('star-full'); s.classList.add('star'); s.title = 'on the learning–forgetting frontier'; td.append(document.createTextNode(' '), s); }
      return;
    }
    if (c.id === 'state') {
      const state = row.state === 'unknown' ? null : row.state;
      const icon = codicon(state ? STATE_ICON[state] : 'question');
      td.classList.add(`state-${row.state}`);
      td.append(icon, document.createTextNode(`${row.state}${row.stale ? ' (no heartbeat)' : ''}`));
      return;
    }
    if (c.id === 'frontier') {
      if (v === 1) { const s = codicon('star-full'); s.classList.add('star'); td.append(s, document.createTextNode('yes')); }
      else if (v === 0) td.textContent = 'no';
      return;
    }
    const text = formatCell(v, c.format);
    td.textContent = text;
    if (text.length * 7 > c.width - 16) td.title = text; // cut off: the whole value on hover
    // A change from the base in the better direction reads green, in the worse one red; the
    // learning and forgetting aggregates go by the run's own direction (runs' tasks may differ).
    if (c.format !== 'delta' || typeof v !== 'number' || v === 0) return;
    const role = /^(learning|forgetting)\./.exec(c.id)?.[1];
    const higher = role && row.pareto ? (role === 'learning' ? row.pareto.learningHigherIsBetter : row.pareto.forgettingHigherIsBetter) : c.better ? c.better === 'higher' : undefined;
    if (higher !== undefined) td.classList.add((v > 0) === higher ? 'better' : 'worse');
  }

  // ---- input ------------------------------------------------------------------------------

  private itemAt(e: MouseEvent): ViewItem | undefined {
    const rowEl = (e.target as HTMLElement).closest('.row') as HTMLElement | null;
    const key = rowEl?.dataset.key;
    return key ? this.items.find((it) => itemKey(it) === key) : undefined;
  }

  private indexOf(key: string | null): number { return key ? this.items.findIndex((it) => itemKey(it) === key) : -1; }

  private onMouseDown(e: MouseEvent): void {
    const item = this.itemAt(e);
    if (!item) return;
    this.root.focus({ preventScroll: true });
    if (item.kind === 'group') { this.active = itemKey(item); if (e.button === 0) this.on.toggleGroup(item.key); this.repaint(); return; }
    const id = item.row.id;
    if (e.button === 2) { if (!this.selected.has(id)) this.select(id, {}); return; }
    this.select(id, { toggle: e.ctrlKey || e.metaKey, range: e.shiftKey });
  }

  private onContextMenu(e: MouseEvent): void {
    e.preventDefault();
    const item = this.itemAt(e);
    if (item?.kind === 'row') this.on.contextMenu(e.clientX, e.clientY);
  }

  private select(id: string, how: { toggle?: boolean; range?: boolean }): void {
    if (how.range && this.anchor) {
      const a = this.indexOf(this.anchor), b = this.indexOf(id);
      if (!how.toggle) this.selected.clear();
      for (let i = Math.min(a, b); i <= Math.max(a, b); i++) { const it = this.items[i]; if (it?.kind === 'row') this.selected.add(it.row.id); }
    } else if (how.toggle) {
      if (this.selected.has(id)) this.selected.delete(id); else this.selected.add(id);
      this.anchor = id;
    } else {
      this.selected.clear(); this.selected.add(id); this.anchor = id;
    }
    this.active = id;
    this.repaint();
    this.on.selectionChanged();
  }

  private moveTo(index: number, e: KeyboardEvent): void {
    const i = Math.max(0, Math.min(this.items.length - 1, index));
    const it = this.items[i];
    if (!it) return;
    const key = itemKey(it);
    if (it.kind === 'row' && !(e.ctrlKey || e.metaKey)) this.select(it.row.id, { range: e.shiftKey });
    else { this.active = key; this.repaint(); }
    this.reveal(i);
  }

  private reveal(i: number): void {
    const top = i * ROW_H, view = this.root.clientHeight - 28 - 14;
    if (top < this.root.scrollTop) this.root.scrollTop = top;
    else if (top + ROW_H > this.root.scrollTop + view) this.root.scrollTop = top + ROW_H - view;
  }

  private onKey(e: KeyboardEvent): void {
    if ((e.target as HTMLElement) !== this.root) return; // header cells handle their own keys
    const cur = this.indexOf(this.active);
    const page = Math.max(1, Math.floor((this.root.clientHeight - 28) / ROW_H) - 1);
    const item = cur >= 0 ? this.items[cur] : undefined;
    switch (e.key) {
      case 'ArrowDown': e.preventDefault(); return this.moveTo(cur + 1, e);
      case 'ArrowUp': e.preventDefault(); if (cur <= 0) { this.focusHeader(); return; } return this.moveTo(cur - 1, e);
      case 'PageDown': e.preventDefault(); return this.moveTo(cur + page, e);
      case 'PageUp': e.preventDefault(); return this.moveTo(cur - page, e);
      case 'Home': e.preventDefault(); return this.moveTo(0, e);
      case 'End': e.preventDefault(); return this.moveTo(this.items.length - 1, e);
      case 'ArrowLeft': case 'ArrowRight':
        if (item?.kind === 'group' && item.collapsed === (e.key === 'ArrowRight')) { e.preventDefault(); this.on.toggleGroup(item.key); return; }
        this.root.scrollLeft += e.key === 'ArrowRight' ? 80 : -80; e.preventDefault(); return;
      case ' ':
        e.preventDefault();
        if (item?.kind === 'row') this.select(item.row.id, { toggle: true }); else if (item?.kind === 'group') this.on.toggleGroup(item.key);
        return;
      case 'Enter':
        e.preventDefault();
        if (item?.kind === 'group') this.on.toggleGroup(item.key); else if (this.selected.size) this.on.open();
        return;
      case 'Escape': if (this.selected.size) { this.selected.clear(); this.repaint(); this.on.selectionChanged(); } return;
      case 'Delete': if (this.selected.size) { e.preventDefault(); this.on.delete(); } return;
      case 'ContextMenu': case 'F10': {
        if (e.key === 'F10' && !e.shiftKey) return;
        e.preventDefault();
        const r = this.root.querySelector(`.row[data-key="${CSS.escape(this.active ?? '')}"]`)?.getBoundingClientRect();
        const box = r ?? this.root.getBoundingClientRect();
        this.on.contextMenu(box.left + 40, box.top + ROW_H);
        return;
      }
      default:
        if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'a') {
          e.preventDefault();
          for (const it of this.items) if (it.kind === 'row') this.selected.add(it.row.id);
          this.repaint(); this.on.selectionChanged();
        }
    }
  }
}
