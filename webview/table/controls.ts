/**
 * The runs table's controls, from @vscode-elements: the text filter, numeric range filters (as
 * removable chips), grouping, the Columns panel (show, hide, reorder by keyboard), the selection's
 * actions (toolbar buttons and the row context menu) and CSV export.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-context-menu/index.js';
import type { TableAction, TableColumn, TableRow } from '../../src/core/tableProtocol';
import type { GroupBy, RangeFilter } from '../../src/core/tableQuery';
import { el } from '../common/dom';

type Field = HTMLElement & { value: string; invalid?: boolean };
type Select = HTMLElement & { value: string };

export function button(label: string, onClick: () => void, title = ''): HTMLElement & { disabled: boolean } {
  const b = el('vscode-button', '', label) as HTMLElement & { disabled: boolean };
  b.setAttribute('secondary', '');
  if (title) b.title = title;
  b.addEventListener('click', () => { if (!b.disabled) onClick(); });
  return b;
}

function select(options: { value: string; label: string }[], value: string, onChange: (v: string) => void, label: string): Select {
  const s = el('vscode-single-select') as Select;
  s.setAttribute('aria-label', label);
  for (const o of options) {
    const opt = el('vscode-option', '', o.label);
    opt.setAttribute('value', o.value);
    if (o.value === value) opt.setAttribute('selected', '');
    s.append(opt);
  }
  s.value = value;
  s.addEventListener('change', () => onChange(s.value));
  return s;
}

export function textField(placeholder: string, value: string, cls: string, label: string): Field {
  const f = el('vscode-textfield', cls) as Field;
  f.setAttribute('placeholder', placeholder);
  f.setAttribute('aria-label', label);
  f.value = value;
  return f;
}

export function groupSelect(value: GroupBy, onChange: (v: GroupBy) => void): Select {
  return select([{ value: 'none', label: 'No grouping' }, { value: 'experiment', label: 'Group by experiment' }, { value: 'sweep', label: 'Group by sweep' }],
    value, (v) => onChange(v as GroupBy), 'Group rows');
}

/** Range filters: pick a numeric column, a min and/or a max, Add; each range is a chip with ×. */
export class RangeControls {
  readonly root = el('div', 'group');
  readonly chips = el('div', 'chips');
  private column: Select;
  private readonly min = textField('min', '', 'num', 'Range minimum');
  private readonly max = textField('max', '', 'num', 'Range maximum');

  constructor(private readonly onChange: (ranges: RangeFilter[]) => void, private ranges: RangeFilter[]) {
    this.column = select([], '', () => undefined, 'Range column');
    const add = button('Add range', () => this.add(), 'Keep only the runs whose value in the column lies in [min, max] (either may be empty)');
    for (const f of [this.min, this.max]) f.addEventListener('keydown', (e) => { if (e.key === 'Enter') this.add(); });
    this.root.append(this.column, this.min, this.max, add);
  }

  setColumns(numeric: TableColumn[]): void {
    const cur = this.column.value;
    const fresh = select(numeric.map((c) => ({ value: c.id, label: c.title })), numeric.some((c) => c.id === cur) ? cur : numeric[0]?.id ?? '', () => undefined, 'Range column');
    this.column.replaceWith(fresh);
    this.column = fresh;
  }

  render(titleOf: (id: string) => string): void {
    this.chips.replaceChildren(...this.ranges.map((r, i) => {
      const chip = el('span', 'chip');
      const text = `${titleOf(r.column)} ${r.min !== null && r.max !== null ? `${r.min} … ${r.max}` : r.min !== null ? `≥ ${r.min}` : `≤ ${r.max}`}`;
      const x = el('button', '', '×');
      x.setAttribute('aria-label', `Remove the filter ${text}`);
      x.addEventListener('click', () => { this.ranges = this.ranges.filter((_, k) => k !== i); this.onChange(this.ranges); });
      chip.append(el('span', '', text), x);
      return chip;
    }));
  }

  private add(): void {
    const parse = (f: Field): number | null | undefined => {
      const t = f.value.trim();
      if (!t) return null;
      const v = Number(t);
      f.invalid = !Number.isFinite(v);
      return Number.isFinite(v) ? v : undefined;
    };
    const min = parse(this.min), max = parse(this.max);
    if (min === undefined || max === undefined || (min === null && max === null) || !this.column.value) return;
    this.ranges = [...this.ranges.filter((r) => r.column !== this.column.value), { column: this.column.value, min, max }];
    this.min.value = ''; this.max.value = '';
    this.onChange(this.ranges);
  }
}

/** What each action is called and when it applies to the selection. */
export const ACTIONS: { action: TableAction; label: string; title?: string; applies: (rows: TableRow[], trusted: boolean) => boolean }[] = [
  { action: 'dashboard', label: 'Dashboard', applies: (r) => r.length >= 1 },
  { action: 'compare', label: 'Compare', applies: (r) => r.length >= 2 },
  { action: 'pareto', label: 'Pareto', applies: (r) => r.length >= 1 },
  { action: 'spectra', label: 'Spectra', applies: (r) => r.length >= 1 },
  { action: 'playground', label: 'Playground', applies: (r) => r.length >= 1 && r.some((x) => x.kind === 'training') },
  { action: 'stop', label: 'Stop', applies: (r) => r.some((x) => x.state === 'running' || x.state === 'queued') },
  { action: 'resume', label: 'Resume', applies: (r, t) => t && r.some((x) => x.state === 'stopped' || x.state === 'failed' || x.state === 'queued') },
  { action: 'duplicate', label: 'Duplicate…', title: 'Duplicate with Changes: a new experiment file from this run\'s resolved config, to edit and start', applies: (r, t) => t && r.length === 1 },
  { action: 'delete', label: 'Delete…', applies: (r) => r.length >= 1 },
];
const MENU_EXTRA: { action: TableAction; label: string }[] = [{ action: 'openLog', label: 'Open Log' }, { action: 'revealFolder', label: 'Reveal Run Folder' }];

/** The selection's action buttons; disabled when they do not apply. */
export class ActionBar {
  readonly root = el('div', 'actions selection');
  private readonly count = el('span', 'label');
  private readonly buttons = new Map<TableAction, HTMLElement & { disabled: boolean }>();
  constructor(run: (a: TableAction) => void) {
    this.root.setAttribute('role', 'toolbar');
    this.root.setAttribute('aria-label', 'Selected runs');
    this.count.title = 'Click a row to select it, Ctrl/Cmd+click to add one, Shift+click for a range; arrows, Space, Ctrl+A from the keyboard.';
    this.root.append(this.count);
    for (const a of ACTIONS) { const b = button(a.label, () => run(a.action), a.title); this.buttons.set(a.action, b); this.root.append(b); }
  }
  update(selected: TableRow[], shown: number, trusted: boolean): void {
    this.count.textContent = selected.length ? `${selected.length} of ${shown} selected:` : 'Selected runs:';
    for (const a of ACTIONS) this.buttons.get(a.action)!.disabled = !a.applies(selected, trusted);
  }
}

/** The row context menu: the actions that apply to the selection, then the single-run ones. */
export class RowMenu {
  private readonly menu = el('vscode-context-menu') as HTMLElement & { data: { label?: string; value?: string; separator?: boolean }[]; show: boolean };
  constructor(parent: HTMLElement, run: (a: TableAction) => void, closed: () => void) {
    parent.append(this.menu);
    this.menu.addEventListener('vsc-context-menu-select', (e) => { const v = (e as CustomEvent<{ value: string }>).detail.value; closed(); if (v) run(v as TableAction); });
    // Escape closes the menu; the keyboard goes back to the grid.
    this.menu.addEventListener('keydown', (e) => { if (e.key === 'Escape') requestAnimationFrame(closed); });
  }
  open(x: number, y: number, selected: TableRow[], trusted: boolean): void {
    const items = ACTIONS.filter((a) => a.applies(selected, trusted)).map((a) => ({ label: a.action === 'duplicate' ? 'Duplicate with Changes…' : a.label, value: a.action }));
    const single = selected.length === 1 ? MENU_EXTRA.map((m) => ({ label: m.label, value: m.action })) : [];
    this.menu.data = [...items.slice(0, -1), ...(single.length ? [{ separator: true }, ...single] : []), { separator: true }, ...items.slice(-1)];
    this.menu.style.left = `${Math.min(x, window.innerWidth - 220)}px`;
    this.menu.style.top = `${Math.min(y, window.innerHeight - 320)}px`;
    this.menu.show = true;
  }
}

/** Show, hide and move columns (the keyboard's way to reorder; headers can also be dragged). */
export class ColumnsPanel {
  readonly root = el('div', 'columns-panel hidden');
  constructor(private readonly on: { toggle(id: string, shown: boolean): void; move(id: string, by: -1 | 1): void; reset(): void }) {
    this.root.setAttribute('role', 'dialog');
    this.root.setAttribute('aria-label', 'Columns');
    document.addEventListener('mousedown', (e) => { if (!this.root.contains(e.target as Node) && !(e.target as HTMLElement).closest('.columns-button')) this.hide(); });
    this.root.addEventListener('keydown', (e) => { if (e.key === 'Escape') this.hide(); });
  }
  get open(): boolean { return !this.root.classList.contains('hidden'); }
  hide(): void { this.root.classList.add('hidden'); }
  show(anchor: HTMLElement, columns: TableColumn[], shown: (id: string) => boolean): void {
    this.render(columns, shown);
    const r = anchor.getBoundingClientRect();
    this.root.style.top = `${r.bottom + 4}px`;
    this.root.classList.remove('hidden');
    // Right-aligned with its button, inside the window.
    this.root.style.left = `${Math.max(8, Math.min(r.right - this.root.offsetWidth, window.innerWidth - this.root.offsetWidth - 8))}px`;
    (this.root.querySelector('vscode-checkbox') as HTMLElement | null)?.focus();
  }
  render(columns: TableColumn[], shown: (id: string) => boolean): void {
    const groups: [TableColumn['group'], string][] = [['run', 'Run'], ['setting', 'Settings'], ['score', 'Scores']];
    const parts: HTMLElement[] = [];
    for (const [g, name] of groups) {
      const cols = columns.filter((c) => c.group === g);
      if (!cols.length) continue;
      parts.push(el('h3', '', name));
      for (const c of cols) {
        const line = el('div', 'col');
        const box = el('vscode-checkbox') as HTMLElement & { checked: boolean };
        box.setAttribute('label', c.title);
        box.title = c.description;
        box.checked = shown(c.id);
        if (box.checked) box.setAttribute('checked', '');
        if (c.id === 'run') box.setAttribute('disabled', '');
        box.addEventListener('change', () => this.on.toggle(c.id, box.checked));
        const up = el('button', 'move', '▲'), down = el('button', 'move', '▼');
        up.setAttribute('aria-label', `Move ${c.title} left`); down.setAttribute('aria-label', `Move ${c.title} right`);
        up.addEventListener('click', () => this.on.move(c.id, -1));
        down.addEventListener('click', () => this.on.move(c.id, 1));
        line.append(box, up, down);
        parts.push(line);
      }
    }
    const foot = el('div', 'foot');
    foot.append(button('Reset columns', () => this.on.reset(), 'Default columns, order and widths'), button('Close', () => this.hide()));
    this.root.replaceChildren(...parts, foot);
  }
}
