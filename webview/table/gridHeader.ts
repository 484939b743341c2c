/**
 * The runs grid's header row: one columnheader per shown column with its sort mark (aria-sort on the
 * first key), sorted by a click (Shift+click adds a key) or Enter; dragged onto another header to
 * move; resized by its right edge. Column widths live in one adopted stylesheet (the CSP allows no
 * inline style attributes), which the rows share.
 */
import type { TableColumn } from '../../src/core/tableProtocol';
import type { SortKey } from '../../src/core/tableQuery';
import { el } from '../common/dom';

export interface GridColumn extends TableColumn { width: number }

export interface HeaderEvents {
  sort(column: string, add: boolean): void;
  reorder(column: string, before: string | null): void;
  resize(column: string, width: number): void;
}

/** ▲ ascending, ▼ descending, with the key's place when several columns sort. */
const sortMark = (sort: readonly SortKey[], k: number): string => `${sort[k].descending ? '▼' : '▲'}${sort.length > 1 ? k + 1 : ''}`;

export class GridHeader {
  readonly root = el('div', 'head');
  private readonly sheet = new CSSStyleSheet();
  private columns: GridColumn[] = [];
  private resizing = false;

  /** `grid` takes the keyboard back from the headers (ArrowDown, Escape). */
  constructor(private readonly grid: HTMLElement, private readonly on: HeaderEvents) {
    this.root.setAttribute('role', 'row');
    this.root.setAttribute('aria-rowindex', '1');
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, this.sheet];
  }

  set(columns: GridColumn[], sort: readonly SortKey[]): void {
    this.columns = columns;
    this.layoutSheet();
    this.root.replaceChildren(...columns.map((c, i) => this.headerCell(c, i, sort)));
  }

  setSort(sort: readonly SortKey[]): void {
    this.root.querySelectorAll('.hcell').forEach((h) => {
      const id = (h as HTMLElement).dataset.col ?? '';
      const k = sort.findIndex((s) => s.column === id);
      if (k === 0) h.setAttribute('aria-sort', sort[0].descending ? 'descending' : 'ascending'); else h.removeAttribute('aria-sort');
      h.querySelector('.sort')?.remove();
      if (k >= 0) h.querySelector('.title')!.after(el('span', 'sort', sortMark(sort, k)));
    });
  }

  /** The keyboard on the header row: the sorted column's header, else the first. */
  focus(): void {
    const h = (this.root.querySelector('.hcell[aria-sort]') ?? this.root.querySelector('.hcell')) as HTMLElement | null;
    h?.focus();
  }

  private headerCell(c: GridColumn, i: number, sort: readonly SortKey[]): HTMLElement {
    const h = el('div', `hcell ${c.kind === 'number' ? 'num' : ''}`);
    h.setAttribute('role', 'columnheader');
    h.setAttribute('aria-colindex', String(i + 1));
    h.tabIndex = -1;
    h.title = `${c.title}: ${c.description}${c.better ? ` (${c.better} is better)` : ''}\nClick to sort, Shift+click to add a sort key; drag to move; drag the edge to resize.`;
    h.dataset.col = c.id;
    const k = sort.findIndex((s) => s.column === c.id);
    if (k === 0) h.setAttribute('aria-sort', sort[0].descending ? 'descending' : 'ascending');
    const title = el('span', 'title', c.title);
    h.append(title);
    if (k >= 0) h.append(el('span', 'sort', sortMark(sort, k)));
    h.addEventListener('click', (e) => { if (!(e.target as HTMLElement).classList.contains('resizer')) this.on.sort(c.id, e.shiftKey); });
    h.addEventListener('keydown', (e) => this.onHeaderKey(e, c, i));
    // Reorder: drag a header onto another.
    h.draggable = true;
    h.addEventListener('dragstart', (e) => {
      if (this.resizing) { e.preventDefault(); return; } // the edge was grabbed: a resize, not a move
      e.dataTransfer?.setData('text/x-column', c.id); e.dataTransfer!.effectAllowed = 'move';
    });
    h.addEventListener('dragover', (e) => {
      if (!e.dataTransfer?.types.includes('text/x-column')) return;
      e.preventDefault();
      const after = e.offsetX > h.clientWidth / 2;
      h.classList.toggle('drop-after', after); h.classList.toggle('drop-before', !after);
    });
    h.addEventListener('dragleave', () => h.classList.remove('drop-before', 'drop-after'));
    h.addEventListener('drop', (e) => {
      e.preventDefault();
      h.classList.remove('drop-before', 'drop-after');
      const moved = e.dataTransfer?.getData('text/x-column');
      if (!moved || moved === c.id) return;
      const after = e.offsetX > h.clientWidth / 2;
      this.on.reorder(moved, after ? this.columns[i + 1]?.id ?? null : c.id);
    });
    const grip = el('span', 'resizer');
    grip.addEventListener('pointerdown', (e) => this.startResize(e, c, grip));
    grip.addEventListener('mousedown', (e) => e.preventDefault()); // no drag of the header from its edge
    h.append(grip);
    return h;
  }

  /** Column widths as one stylesheet (no inline styles under the CSP); a group line spans them all. */
  private layoutSheet(): void {
    const total = this.columns.reduce((a, c) => a + c.width, 0);
    this.sheet.replaceSync(`.head, .row { grid-template-columns: ${this.columns.map((c) => `${c.width}px`).join(' ') || '1fr'}; } .row, .head { width: ${total}px; }`);
  }

  /**
   * The header row from the keyboard: ArrowUp on the first line enters it;
   * Left/Right move between headers, Enter/Space sorts (Shift adds a key), Ctrl+Left/Right moves the
   * column, ArrowDown or Escape goes back to the lines.
   */
  private onHeaderKey(e: KeyboardEvent, c: GridColumn, i: number): void {
    const cells = [...this.root.querySelectorAll<HTMLElement>('.hcell')];
    const focusAt = (k: number): void => { const h = cells[Math.max(0, Math.min(cells.length - 1, k))]; h?.focus(); h?.scrollIntoView({ block: 'nearest', inline: 'nearest' }); };
    e.stopPropagation();
    switch (e.key) {
      case 'Enter': case ' ': e.preventDefault(); this.on.sort(c.id, e.shiftKey); this.focusHeaderSoon(c.id); return;
      case 'ArrowLeft': case 'ArrowRight': {
        e.preventDefault();
        const by = e.key === 'ArrowLeft' ? -1 : 1;
        if (e.ctrlKey || e.metaKey) { const to = this.columns[i + by + (by > 0 ? 1 : 0)]?.id ?? null; if (i + by >= 0 && i + by < this.columns.length) { this.on.reorder(c.id, to); this.focusHeaderSoon(c.id); } return; }
        return focusAt(i + by);
      }
      case 'Home': e.preventDefault(); return focusAt(0);
      case 'End': e.preventDefault(); return focusAt(cells.length - 1);
      case 'ArrowDown': case 'Escape': e.preventDefault(); this.grid.focus({ preventScroll: true }); return;
      default: return;
    }
  }

  /** After the header row is rebuilt, focus stays on the column's header. */
  private focusHeaderSoon(id: string): void {
    requestAnimationFrame(() => (this.root.querySelector(`.hcell[data-col="${CSS.escape(id)}"]`) as HTMLElement | null)?.focus());
  }

  private startResize(e: PointerEvent, c: GridColumn, grip: HTMLElement): void {
    e.preventDefault(); e.stopPropagation();
    const x0 = e.clientX, w0 = c.width;
    grip.setPointerCapture(e.pointerId);
    grip.classList.add('active');
    this.resizing = true;
    const move = (ev: PointerEvent): void => {
      c.width = Math.max(40, Math.round(w0 + ev.clientX - x0));
      this.layoutSheet();
    };
    const up = (): void => {
      grip.removeEventListener('pointermove', move); grip.removeEventListener('pointerup', up); grip.classList.remove('active');
      this.resizing = false;
      this.on.resize(c.id, c.width);
    };
    grip.addEventListener('pointermove', move);
    grip.addEventListener('pointerup', up);
  }
}
