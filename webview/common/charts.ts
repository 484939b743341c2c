/**
 * chart.js set-up shared by the views: only the parts we draw with are registered (smaller
 * bundle), animation is off (live updates redraw at most 10×/s and must not queue tweens),
 * data arrives decimated and pre-parsed ({x, y} objects, `parsing: false`), and every colour
 * comes from the theme palette.
 */
import {
  Chart, LineController, LineElement, PointElement, ScatterController, BarController, BarElement,
  LinearScale, LogarithmicScale, CategoryScale, Tooltip, Legend, Filler,
  type ChartConfiguration, type ChartType, type Plugin, type ChartOptions,
} from 'chart.js';
import type { Palette } from './theme';

Chart.register(LineController, LineElement, PointElement, ScatterController, BarController, BarElement,
  LinearScale, LogarithmicScale, CategoryScale, Tooltip, Legend, Filler);

export { Chart };

/**
 * A horizontal reference line (LoRA rank, random-matrix rank90) drawn over the data. A line
 * above the y scale's top (a reference kept off scale so the bars stay readable) is drawn as
 * a dashed marker along the top edge, labelled "<label> ↑ (off scale)" at the top left, so it is
 * still shown.
 */
export interface RefLine { value: number; label: string; color: string; dash?: number[] }

/** A vertical mark at a step (where a run's loss diverged), labelled at the top. */
export interface XMark { value: number; label: string; color: string; /** Behind the label, so it reads over a line. */ background?: string }

declare module 'chart.js' {
  interface PluginOptionsByType<TType extends ChartType> {
    refLines?: { lines: RefLine[]; _t?: TType };
    xMarks?: { marks: XMark[]; _t?: TType };
  }
}

/** A dashed line from (x0, y0) to (x1, y1) in `color`, which also becomes the fill for its label. */
function dashedLine(ctx: CanvasRenderingContext2D, color: string, width: number, dash: number[], x0: number, y0: number, x1: number, y1: number): void {
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = width;
  ctx.setLineDash(dash);
  ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
  ctx.setLineDash([]);
}

export const refLinesPlugin: Plugin = {
  id: 'refLines',
  afterDatasetsDraw(chart, _args, opts: { lines?: RefLine[] }) {
    const y = chart.scales.y;
    if (!y || !opts?.lines?.length) return;
    const { ctx, chartArea: a } = chart;
    ctx.save();
    ctx.font = `11px ${Chart.defaults.font.family ?? 'sans-serif'}`;
    ctx.textAlign = 'right';
    const off: RefLine[] = [];
    for (const l of opts.lines) {
      const py = y.getPixelForValue(l.value);
      if (!Number.isFinite(py) || py > a.bottom + 1) continue;
      if (py < a.top - 1) { off.push(l); continue; }
      dashedLine(ctx, l.color, 1.5, l.dash ?? [6, 4], a.left, py, a.right, py);
      ctx.fillText(l.label, a.right - 4, py - 4);
    }
    if (off.length) {
      // Off scale: one marker along the top edge and one label at the top left (the in-scale
      // labels sit at the right), e.g. "random 65 (attn) · random 98 (mlp) ↑ (off scale)".
      const l = off[0];
      dashedLine(ctx, l.color, 1.5, l.dash ?? [6, 4], a.left, a.top + 0.75, a.right, a.top + 0.75);
      ctx.textAlign = 'left';
      ctx.fillText(`${off.map((o) => o.label).join(' · ')} ↑ (off scale)`, a.left + 4, a.top + 12);
    }
    ctx.restore();
  },
};
Chart.register(refLinesPlugin);

export const xMarksPlugin: Plugin = {
  id: 'xMarks',
  afterDatasetsDraw(chart, _args, opts: { marks?: XMark[] }) {
    const x = chart.scales.x;
    if (!x || !opts?.marks?.length) return;
    const { ctx, chartArea: a } = chart;
    ctx.save();
    ctx.font = `11px ${Chart.defaults.font.family ?? 'sans-serif'}`;
    opts.marks.forEach((m, i) => {
      // A mark past the last drawn step (no train event is written for the diverged step) sits at
      // the right edge, so it is never off the chart.
      const px = Math.min(a.right, Math.max(a.left, x.getPixelForValue(m.value)));
      if (!Number.isFinite(px)) return;
      dashedLine(ctx, m.color, 2, [4, 3], px, a.top, px, a.bottom);
      const w = ctx.measureText(m.label).width;
      const right = px + 4 + w > a.right;
      const tx = right ? px - 4 - w : px + 4, ty = a.top + 12 + 14 * i;
      if (m.background) { ctx.fillStyle = m.background; ctx.fillRect(tx - 2, ty - 10, w + 4, 13); ctx.fillStyle = m.color; }
      ctx.textAlign = 'left';
      ctx.fillText(m.label, tx, ty);
    });
    ctx.restore();
  },
};
Chart.register(xMarksPlugin);

/**
 * Text beside each point of a dataset that carries `pointLabels` (the Pareto view's λ of an
 * intruder-reduction path), in the dataset's colour; an empty label draws nothing.
 */
export const pointLabelsPlugin: Plugin = {
  id: 'pointLabels',
  afterDatasetsDraw(chart) {
    const { ctx } = chart;
    chart.data.datasets.forEach((ds, i) => {
      const labels = (ds as { pointLabels?: string[] }).pointLabels;
      if (!labels || !chart.isDatasetVisible(i)) return;
      ctx.save();
      ctx.font = `11px ${Chart.defaults.font.family ?? 'sans-serif'}`;
      ctx.fillStyle = typeof ds.borderColor === 'string' ? ds.borderColor : '#888';
      ctx.textAlign = 'left';
      chart.getDatasetMeta(i).data.forEach((pt, k) => { if (labels[k]) ctx.fillText(labels[k], pt.x + 8, pt.y + 14); });
      ctx.restore();
    });
  },
};
Chart.register(pointLabelsPlugin);

/** Applies the palette to chart.js's defaults (new charts) — call before creating charts. */
export function applyDefaults(p: Palette): void {
  Chart.defaults.color = p.fg;
  Chart.defaults.borderColor = p.grid;
  Chart.defaults.font.family = p.font;
  Chart.defaults.font.size = Math.max(11, p.fontSize - 1);
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.responsive = true;
  Chart.defaults.plugins.legend.labels.boxWidth = 12;
  Chart.defaults.plugins.legend.labels.boxHeight = 2;
  Chart.defaults.plugins.tooltip.backgroundColor = p.bg;
  Chart.defaults.plugins.tooltip.titleColor = p.fg;
  Chart.defaults.plugins.tooltip.bodyColor = p.fg;
  Chart.defaults.plugins.tooltip.borderColor = p.highContrast ? p.axis : p.grid;
  Chart.defaults.plugins.tooltip.borderWidth = 1;
}

/** Re-themes an existing chart's scales (text, grid) after a theme switch. */
export function themeScales(chart: Chart, p: Palette): void {
  for (const s of Object.values(chart.options.scales ?? {})) {
    if (!s) continue;
    const sc = s as { ticks?: { color?: unknown }; grid?: { color?: unknown }; title?: { color?: unknown }; border?: { color?: unknown } };
    if (sc.ticks) sc.ticks.color = p.muted;
    if (sc.grid) sc.grid.color = p.grid;
    if (sc.title) sc.title.color = p.fg;
    if (sc.border) sc.border.color = p.axis;
  }
  const legend = chart.options.plugins?.legend;
  if (legend?.labels) legend.labels.color = p.fg;
}

export function linearAxis(p: Palette, title: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'linear',
    title: { display: !!title, text: title, color: p.fg },
    ticks: { color: p.muted, maxTicksLimit: 8 },
    grid: { color: p.grid },
    border: { color: p.axis, width: p.highContrast ? 1.5 : 1 },
    ...extra,
  };
}

export function lineOptions(p: Palette, xTitle: string, yTitle: string, logY = false): ChartOptions<'line'> {
  return {
    parsing: false,
    normalized: true,
    animation: false,
    spanGaps: true,
    interaction: { mode: 'nearest', axis: 'x', intersect: false },
    elements: { point: { radius: 0, hoverRadius: 3 }, line: { borderWidth: 1.5 } },
    scales: {
      x: linearAxis(p, xTitle) as never,
      y: linearAxis(p, yTitle, { type: logY ? 'logarithmic' : 'linear' }) as never,
    },
    plugins: { legend: { display: true, position: 'top', align: 'end', labels: { color: p.fg } } },
  };
}

export function makeChart<T extends ChartType>(canvas: HTMLCanvasElement, cfg: ChartConfiguration<T>): Chart<T> {
  return new Chart(canvas, cfg);
}

/** Canvas width in device-independent pixels → decimation buckets (M4 keeps ≤ 4 a bucket, ≈ 2 per px). */
export function bucketsFor(canvas: HTMLCanvasElement): number {
  return Math.max(50, Math.round((canvas.clientWidth || 600) / 2));
}
