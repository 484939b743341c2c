/**
 * How a runs-table cell reads: the text the grid shows and the text filter searches. The CSV
 * export writes raw values instead (full precision), so a spreadsheet can compute with them.
 */
import { formatDuration } from './duration';
import type { CellFormat, CellValue } from './tableProtocol';

/** Three significant figures, exponent form for very small or large magnitudes. */
export function sig(v: number, digits = 3): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(digits - 1).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(digits)));
}

/** A learning rate as people write it: 2e-4, 3e-3, 0.1. */
export function sci(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a < 0.01) return v.toExponential(1).replace(/\.0e/, 'e');
  return String(Number(v.toPrecision(3)));
}

function date(seconds: number): string {
  const d = new Date(seconds * 1000);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function formatCell(v: CellValue | undefined, format: CellFormat): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  switch (format) {
    case 'int': return Math.round(v).toLocaleString('en-US');
    case 'sci': return sci(v);
    case 'delta': return `${v > 0 ? '+' : v < 0 ? '−' : '±'}${sig(Math.abs(v))}`;
    case 'seconds': return formatDuration(v);
    case 'mib': return v >= 1024 ? `${sig(v / 1024)} GiB` : `${Math.round(v)} MiB`;
    case 'rate': return v >= 1e4 ? `${sig(v / 1000)}k` : String(Math.round(v));
    case 'time': return date(v);
    case 'bool': return v ? 'yes' : '';
    case 'score': case 'text': case 'state': default: return sig(v, 4);
  }
}
