// Plain-text tables for the terminal, and the results table that ends `finetune-lab demo`.
import type { RunSummary } from '../core/runSummary';

/** Left-aligned columns (right-aligned where the header starts with '>'), two spaces apart. */
export function formatTable(headers: string[], rows: string[][]): string {
  const right = headers.map((h) => h.startsWith('>'));
  const heads = headers.map((h) => h.replace(/^>/, ''));
  const widths = heads.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(heads), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export const num = (v: number | null | undefined, digits = 3): string => (v == null || !Number.isFinite(v) ? '-' : v.toFixed(digits));
const signed = (v: number | undefined, digits = 3): string => (v == null ? '-' : `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`);

/**
 * One row per run: final train loss, then each eval task as `final (Δ vs step 0)`. For a loss task a
 * negative Δ on a learning task is learning, a positive Δ on a forgetting task is forgetting.
 */
export function resultsTable(runs: { label: string; summary: RunSummary }[]): string {
  const taskKeys: { role: string; name: string }[] = [];
  for (const r of runs) for (const t of r.summary.tasks) if (!taskKeys.some((k) => k.role === t.role && k.name === t.name)) taskKeys.push({ role: t.role, name: t.name });
  const headers = ['run', 'status', '>steps', '>train loss', ...taskKeys.map((k) => `>${k.role} ${k.name} (Δ)`)];
  const rows = runs.map(({ label, summary: s }) => [
    label, s.finished?.status ?? 'unfinished', s.lastStep == null ? '-' : String(s.lastStep), num(s.finalTrainLoss),
    ...taskKeys.map((k) => {
      const t = s.tasks.find((x) => x.role === k.role && x.name === k.name);
      return t ? `${num(t.final)} (${signed(t.base == null ? undefined : t.final - t.base)})` : '-';
    }),
  ]);
  return formatTable(headers, rows);
}
