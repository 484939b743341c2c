/**
 * Learning vs forgetting (Biderman et al. 2024, Fig. 1): x = forgetting (source-domain score,
 * or its change from the base), y = learning (target-domain score). Which scores are the axes is
 * the user's choice (kept in the webview's state): each role's aggregate (the paper's forgetting
 * score is the mean of its three benchmarks) or any single task, e.g. KL to the base. Each run is
 * a path through its eval steps, points growing with step; colour by method and LoRA rank; the
 * base (step 0) marked; the Pareto frontier over all points drawn as a step line. Axes are flipped
 * by each score's direction so that right is always more forgetting and up always more learning.
 */
import { assertNever, type HostToWebview, type RestoreInfo, type RunHeader } from '../../src/core/messages';
import { paretoFrontier } from '../../src/core/pareto';
import { axisOptions, axisPoint, pickAxis, type AxisKey, type AxisOption } from '../../src/core/evalScores';
import { onHostMessage, loadState, saveState, ready, post } from '../common/vscodeApi';
import { readPalette, onThemeChange, runColor, withAlpha, type Palette } from '../common/theme';
import { applyDefaults, makeChart, linearAxis, themeScales, type Chart } from '../common/charts';
import { adoptStyles, el, card, Banner, button, checkbox, exportCsv, exportPng, fmt, select, setOptions } from '../common/ui';
import { RunData, runLabel } from '../common/runData';

/** learningAxis / forgettingAxis: the user's choice of score per axis ('aggregate' or 'task:<name>'). */
interface State { delta: boolean; learningAxis?: AxisKey; forgettingAxis?: AxisKey; restore?: RestoreInfo }
const state = loadState<State>({ delta: true });
adoptStyles();
let pal: Palette = readPalette();
applyDefaults(pal);

const bar = el('div', 'toolbar');
const axisPicker = (role: 'learning' | 'forgetting'): HTMLElement & { value: string } => {
  const s = select([], '', (v) => { state[role === 'learning' ? 'learningAxis' : 'forgettingAxis'] = v; saveState(state); draw(); });
  s.setAttribute('aria-label', role === 'learning' ? 'Learning axis (y)' : 'Forgetting axis (x)');
  s.classList.add('axis-picker');
  return s;
};
const learningPick = axisPicker('learning');
const forgettingPick = axisPicker('forgetting');
const labelled = (text: string, control: HTMLElement): HTMLElement => { const l = el('label', 'field', text); l.append(control); return l; };
bar.append(el('h1', '', 'Learning vs forgetting'),
  labelled('Learning (y)', learningPick), labelled('Forgetting (x)', forgettingPick),
  checkbox('Change from base', state.delta, (v) => { state.delta = v; saveState(state); draw(); }),
  el('span', 'spacer'),
  button('Export PNG', () => chart && exportPng(chart, 'pareto', pal.bg)), button('Export CSV', () => exportAll()));
document.body.append(bar);
const banner = new Banner(document.body);
bar.after(banner.root);
const main = card(document.body, 'Each run is a path through its evaluations (bigger points = later steps)', 'tall', true);
main.root.classList.add('pareto-card');
const note = el('p', 'legend-note', 'Colour: full finetuning in one hue (fainter = lower learning rate), LoRA ranks on a light→dark scale. ◆ base model (step 0). Dashed step line: the Pareto frontier over all points (upper left is better). Dotted line through triangles: an adapter\'s intruder reduction, from the adapter as trained down to the smallest λ. Click a point to open its run.');
document.body.append(note);

const runs = new Map<string, RunData>();
interface Pt { x: number; y: number; step: number; runId: string; lv: number; fv: number; ld: number; fd: number }
let chart: Chart | undefined;
/** The axes in use: the chosen (or fallback) score of each role, with its name, metric and direction. */
interface Axes { learning?: AxisOption; forgetting?: AxisOption }

function axes(): Axes {
  const list = [...runs.values()];
  const out: Axes = {};
  for (const role of ['learning', 'forgetting'] as const) {
    const options = axisOptions(list, role);
    const key = pickAxis(options, role === 'learning' ? state.learningAxis : state.forgettingAxis);
    out[role] = options.find((o) => o.key === key);
    const picker = role === 'learning' ? learningPick : forgettingPick;
    const want = options.map((o) => `${o.key}\n${o.label}`).join('\n');
    if (picker.dataset.options !== want) { picker.dataset.options = want; setOptions(picker, options.map((o) => ({ value: o.key, label: o.label })), key ?? ''); }
    else if (key && picker.value !== key) picker.value = key;
  }
  return out;
}

function points(r: RunData, a: Axes): Pt[] {
  if (!a.learning || !a.forgetting) return [];
  const out: Pt[] = [];
  r.evals.forEach((e, i) => {
    const l = axisPoint(r.evals, i, 'learning', a.learning!.key), f = axisPoint(r.evals, i, 'forgetting', a.forgetting!.key);
    if (!l || !f) return;
    out.push({ x: state.delta ? f.delta : f.value, y: state.delta ? l.delta : l.value, step: e.step, runId: r.info.id, lv: l.value, fv: f.value, ld: l.delta, fd: f.delta });
  });
  return out;
}

function axisTitles(a: Axes): [string, string] {
  const f = a.forgetting, l = a.learning;
  const fWord = f?.higherIsBetter ? (state.delta ? 'drop vs base' : '(lower →)') : (state.delta ? 'rise vs base' : '');
  const lWord = l?.higherIsBetter ? (state.delta ? 'gain vs base' : '') : (state.delta ? 'change vs base (lower ↑)' : '(lower ↑)');
  // "hellaswag acc_norm", "kl" (its metric is its name), "mean of code + english loss"
  const what = (o: AxisOption | undefined, fallback: string): string => (o ? (o.metric && o.metric !== o.name ? `${o.name} ${o.metric}` : o.name) : fallback);
  return [
    `${what(f, 'source')} ${fWord} → more forgetting`.replace(/\s+/g, ' '),
    `${what(l, 'target')} ${lWord} ↑ more learning`.replace(/\s+/g, ' '),
  ];
}

function draw(): void {
  const list = [...runs.values()];
  const a = axes();
  const d = { forgettingHigherIsBetter: a.forgetting?.higherIsBetter ?? false, learningHigherIsBetter: a.learning?.higherIsBetter ?? false };
  const all: Pt[] = list.flatMap((r) => points(r, a));
  const maxStep = Math.max(1, ...all.map((p) => p.step));
  const radius = (s: number): number => 3 + 6 * Math.sqrt(s / maxStep);
  const datasets: Record<string, unknown>[] = list.map((r) => {
    const pts = points(r, a).filter((p) => p.step > 0);
    // The run's own colour, as in the dashboard and the runs table (full: fainter = lower learning rate).
    const c = runColor(pal, r.info);
    return {
      type: 'line', label: runLabel(r.info), data: pts, runId: r.info.id,
      // An adapter after intruder reduction: a triangle, so it reads apart from the run it came from.
      ...(r.info.reduceIntruders ? { pointStyle: 'triangle' } : {}),
      borderColor: c.startsWith('rgba') ? c : withAlpha(c, 0.8), backgroundColor: c, borderWidth: 1.5,
      pointRadius: pts.map((p) => radius(p.step)), pointHoverRadius: pts.map((p) => radius(p.step) + 2), showLine: true,
    };
  });
  datasets.push(...reductionPaths(a));
  const base = all.filter((p) => p.step === 0);
  if (base.length) {
    // Every run is evaluated at step 0; the base is one model, so one marker (their mean).
    const m = { x: base.reduce((s, p) => s + p.x, 0) / base.length, y: base.reduce((s, p) => s + p.y, 0) / base.length, step: 0, runId: '', lv: base[0].lv, fv: base[0].fv, ld: 0, fd: 0 };
    datasets.push({ type: 'scatter', label: 'base model (step 0)', data: [m], pointStyle: 'rectRot', pointRadius: 9, pointHoverRadius: 10,
      backgroundColor: withAlpha(pal.fg, 0.15), borderColor: pal.fg, borderWidth: 2 });
  }
  const front = paretoFrontier(all.map((p) => ({ forgetting: p.x, learning: p.y })), d).map((i) => all[i]);
  if (front.length) {
    datasets.push({ type: 'line', label: 'Pareto frontier', data: front, stepped: 'before', borderColor: pal.fg, borderDash: [6, 4], borderWidth: 1.5,
      pointRadius: 0, pointHoverRadius: 0, fill: false, order: 10 });
  }
  const [xt, yt] = axisTitles(a);
  const scales = {
    x: linearAxis(pal, xt, { reverse: d.forgettingHigherIsBetter }),
    y: linearAxis(pal, yt, { reverse: !d.learningHigherIsBetter }),
  };
  const tooltip = {
    callbacks: {
      title: (items: { raw: unknown; dataset: { label?: string } }[]) => {
        const p = items[0]?.raw as Pt | undefined;
        if (!p) return '';
        const r = runs.get(p.runId);
        return r ? `${runLabel(r.info)} · step ${p.step}` : 'base model (step 0)';
      },
      label: (item: { raw: unknown }) => {
        const p = item.raw as Pt;
        const r = runs.get(p.runId);
        const cfg = r ? [`${r.info.method}${r.info.rank ? ` r=${r.info.rank}` : ''}${r.info.targetModules ? ` (${r.info.targetModules})` : ''}, lr ${fmt(r.info.lr)}`] : [];
        return [...cfg, `learning ${a.learning?.label ?? ''}: ${fmt(p.lv, 4)} (${p.ld >= 0 ? '+' : ''}${fmt(p.ld, 3)})`, `forgetting ${a.forgetting?.label ?? ''}: ${fmt(p.fv, 4)} (${p.fd >= 0 ? '+' : ''}${fmt(p.fd, 3)})`];
      },
    },
  };
  if (!chart) {
    chart = makeChart(main.canvas, {
      type: 'scatter',
      data: { datasets: datasets as never },
      options: {
        animation: false, parsing: { xAxisKey: 'x', yAxisKey: 'y' }, scales: scales as never,
        interaction: { mode: 'nearest', intersect: true },
        plugins: { legend: { position: 'right', labels: { color: pal.fg, usePointStyle: true, boxWidth: 8, boxHeight: 8 } }, tooltip: tooltip as never },
        onClick: (_e, els) => {
          const hit = els[0];
          const id = hit ? (chart!.data.datasets[hit.datasetIndex] as { runId?: string }).runId : undefined;
          if (id) post({ type: 'openRun', runId: id });
        },
        onHover: (e, els) => { (e.native?.target as HTMLElement | undefined)?.classList.toggle('clickable', els.length > 0); },
      },
    });
  } else {
    chart.data.datasets = datasets as never;
    chart.options.scales = scales as never;
    chart.options.plugins!.tooltip = tooltip as never;
    chart.update('none');
  }
  main.note.textContent = all.length ? `${list.length} runs · ${all.length} points · frontier ${front.length} points` : '';
  if (list.length === 0) banner.show('empty', 'No runs in this experiment yet. Start a run (or a sweep over method, rank and learning rate) to fill this plot.');
  else if (all.length === 0) banner.show('loading', 'waiting for the first evaluation…');
  else banner.show(null);
}

/**
 * reduce-intruders (issue 14): the runs that mitigated one adapter with one top-k and ε, joined in
 * order of λ from the adapter as trained (the source run's last point, when it is shown) down to
 * the smallest λ: how much forgetting each step of mitigation recovers and what learning it costs.
 */
function reductionPaths(a: Axes): Record<string, unknown>[] {
  const groups = new Map<string, RunData[]>();
  for (const r of runs.values()) {
    const ri = r.info.reduceIntruders;
    if (!ri) continue;
    const key = `${ri.sourceRun}\n${ri.topK}\n${ri.epsilon}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out: Record<string, unknown>[] = [];
  for (const members of groups.values()) {
    const ri = members[0].info.reduceIntruders!;
    const last = (r: RunData): Pt | undefined => points(r, a).filter((p) => p.step > 0).pop();
    const ordered = [...members].sort((a, b) => b.info.reduceIntruders!.lambda - a.info.reduceIntruders!.lambda);
    const source = runs.get(ri.sourceRun);
    const pts = [...(source ? [last(source)] : []), ...ordered.map(last)].filter((p): p is Pt => !!p);
    if (pts.length < 2) continue;
    const lambdas = ordered.map((r) => r.info.reduceIntruders!.lambda);
    const labels = [...(source && last(source) ? [''] : []), ...ordered.filter((r) => last(r)).map((r) => `λ ${r.info.reduceIntruders!.lambda}`)];
    out.push({
      type: 'line', label: `intruders reduced (${source ? `${runLabel(source.info)}, ` : ''}λ ${lambdas[0]} → ${lambdas[lambdas.length - 1]})`,
      data: pts, pointLabels: labels, borderColor: pal.fg, backgroundColor: withAlpha(pal.fg, 0.6), borderDash: [2, 3], borderWidth: 1.5,
      pointRadius: 2.5, pointStyle: 'crossRot', pointHoverRadius: 5, showLine: true, fill: false, order: 5,
    });
  }
  return out;
}

function exportAll(): void {
  // The axes as shown (which score each is, with its task version and n), then every point.
  const a = axes();
  const rows: (string | number | null)[][] = [];
  for (const r of runs.values()) for (const p of points(r, a)) rows.push([r.info.id, r.info.method, r.info.rank, r.info.lr, p.step, p.lv, p.ld, p.fv, p.fd, a.learning?.label ?? '', a.forgetting?.label ?? '']);
  exportCsv(['run', 'method', 'rank', 'lr', 'step', 'learning', 'learning_delta', 'forgetting', 'forgetting_delta', 'learning_score', 'forgetting_score'], rows, 'pareto');
}

function setRuns(infos: RunHeader[]): void {
  runs.clear();
  for (const i of infos) runs.set(i.id, new RunData(i));
}

let frame = 0;
const schedule = (): void => { if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); }); };

onHostMessage((msg: HostToWebview) => {
  switch (msg.type) {
    case 'init': state.restore = msg.restore; saveState(state); setRuns(msg.runs); return schedule();
    case 'append': for (const b of msg.batches) runs.get(b.runId)?.append(b); return schedule();
    case 'header': { const r = runs.get(msg.run.id); if (r) r.info = msg.run; return schedule(); }
    case 'error': return banner.show('error', msg.message);
    default: return assertNever(msg);
  }
});
onThemeChange(() => { pal = readPalette(); applyDefaults(pal); if (chart) themeScales(chart, pal); draw(); });
banner.show('loading', 'loading runs…');
ready();
