/** DOM helpers shared by the views: elements without innerHTML, chart cards, state banners, export. */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-label/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import css from './base.css';
import { post } from './vscodeApi';
import { adoptCss, el } from './dom';
import type { Chart } from 'chart.js';

export { el } from './dom';

/** The views' shared stylesheet (base.css). */
export function adoptStyles(): void {
  adoptCss(css);
}

export interface Card { root: HTMLElement; canvas: HTMLCanvasElement; title: HTMLElement; note: HTMLElement }

/** A titled box holding one canvas; `size` picks a CSS height class. */
export function card(parent: HTMLElement, title: string, size: 'short' | 'tall' = 'short', wide = false): Card {
  const root = el('section', `card ${wide ? 'wide' : ''}`);
  const head = el('header', 'card-head');
  const t = el('h2', '', title);
  const note = el('span', 'card-note');
  head.append(t, note);
  const box = el('div', `chart-box ${size}`);
  const canvas = el('canvas');
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', title);
  box.append(canvas);
  root.append(head, box);
  parent.append(root);
  return { root, canvas, title: t, note };
}

/** The view-wide banner for empty / loading / error states; hidden when `text` is null. */
export class Banner {
  readonly root = el('div', 'banner hidden');
  private readonly ring = el('vscode-progress-ring');
  private readonly text = el('span');
  constructor(parent: HTMLElement) {
    this.root.setAttribute('role', 'status');
    this.root.append(this.ring, this.text);
    parent.prepend(this.root);
  }
  show(kind: 'loading' | 'empty' | 'error' | null, text = ''): void {
    this.root.className = `banner ${kind ?? 'hidden'}`;
    this.ring.classList.toggle('hidden', kind !== 'loading');
    this.text.textContent = text;
  }
}

export function button(label: string, onClick: () => void, secondary = true): HTMLElement {
  const b = el('vscode-button', '', label);
  if (secondary) b.setAttribute('secondary', '');
  b.addEventListener('click', onClick);
  return b;
}

export function checkbox(label: string, checked: boolean, onChange: (v: boolean) => void): HTMLElement {
  const c = el('vscode-checkbox') as HTMLElement & { checked: boolean };
  c.setAttribute('label', label);
  c.checked = checked;
  if (checked) c.setAttribute('checked', '');
  c.addEventListener('change', () => onChange(c.checked));
  return c;
}

export function select(options: { value: string; label: string }[], value: string, onChange: (v: string) => void): HTMLElement & { value: string } {
  const s = el('vscode-single-select') as HTMLElement & { value: string };
  setOptions(s, options, value);
  s.addEventListener('change', () => onChange(s.value));
  return s;
}

export function setOptions(s: HTMLElement & { value: string }, options: { value: string; label: string }[], value: string): void {
  s.replaceChildren(...options.map((o) => {
    const opt = el('vscode-option', '', o.label);
    opt.setAttribute('value', o.value);
    if (o.value === value) opt.setAttribute('selected', '');
    return opt;
  }));
  s.value = value;
}

/** One canvas → PNG (on the theme's background, so it reads outside the editor), sent to the host to save. */
export function exportPng(chart: Chart, name: string, bg: string): void {
  const src = chart.canvas;
  const c = document.createElement('canvas');
  c.width = src.width; c.height = src.height;
  const ctx = c.getContext('2d')!;
  ctx.fillStyle = bg;
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.drawImage(src, 0, 0);
  post({ type: 'export', format: 'png', name: safeName(name, 'png'), data: c.toDataURL('image/png') });
}

export function exportCsv(header: string[], rows: (string | number | null)[][], name: string): void {
  const q = (v: string | number | null): string => (v === null || (typeof v === 'number' && !Number.isFinite(v)) ? '' : typeof v === 'number' ? String(v) : /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const csv = [header.map(q).join(','), ...rows.map((r) => r.map(q).join(','))].join('\n') + '\n';
  post({ type: 'export', format: 'csv', name: safeName(name, 'csv'), data: csv });
}

function safeName(name: string, ext: string): string {
  return `${name.replace(/[^\w.\- ]+/g, '_').replace(/^[^\w]+/, '').slice(0, 100) || 'export'}.${ext}`;
}

export function fmt(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1);
  return String(Number(v.toPrecision(digits)));
}
