/**
 * Weight-change spectra: for a step, the singular values of ΔW of a chosen module (log y);
 * rank90 per layer for attention and MLP matrices (bars) against the LoRA rank and a random
 * matrix's rank90; rank90 over training; intruder dimensions against the random baseline.
 * Several runs sit side by side (LoRA next to full finetuning); a full run yields rank advice.
 */
import { assertNever, type HostToWebview, type RestoreInfo, type RunHeader, type SpectrumRecord } from '../../src/core/messages';
import { adviseRank, median, rank90Scale, sharedScale } from '../../src/core/rankAdvice';
import { onHostMessage, loadState, saveState, ready, post } from '../common/vscodeApi';
import { readPalette, onThemeChange, withAlpha, type Palette } from '../common/theme';
import { applyDefaults, makeChart, linearAxis, themeScales, type Chart, type RefLine } from '../common/charts';
import { adoptStyles, el, card, Banner, button, select, setOptions, exportCsv, exportPng, type Card } from '../common/ui';
import { RunData, runLabel } from '../common/runData';

interface State { module: string; step: number | null; restore?: RestoreInfo }
const state = loadState<State>({ module: '', step: null });
adoptStyles();
let pal: Palette = readPalette();
applyDefaults(pal);

const bar = el('div', 'toolbar');
const moduleSel = select([], '', (v) => { state.module = v; saveState(state); schedule(); });
const stepSel = select([], '', (v) => { state.step = Number(v); saveState(state); schedule(); });
const modField = el('label', 'field', 'Module'); modField.append(moduleSel);
const stepField = el('label', 'field', 'Step'); stepField.append(stepSel);
// PEFT's reduce_intruder_dimension on a LoRA run shown here (the host asks which, and λ): issue 14.
const reduceBtn = button('Reduce Intruders…', () => {
  const ids = loraRuns().map((r) => r.info.id);
  if (ids.length) post({ type: 'reduceIntruders', runIds: ids });
}, false);
reduceBtn.title = "PEFT's reduce_intruder_dimension (Shuttleworth et al. 2024): scale the adapter's intruder dimensions by λ and analyse the result as a new run";
reduceBtn.classList.add('hidden');
bar.append(el('h1', '', 'Weight-change spectra'), modField, stepField, el('span', 'spacer'), reduceBtn,
  button('Export PNG', () => exportPngs()), button('Export CSV', () => exportAll()));
document.body.append(bar);
const banner = new Banner(document.body);
bar.after(banner.root);
const advice = el('div', 'advice hidden');
const cols = el('div', 'cols');
document.body.append(advice, cols);

const runs = new Map<string, RunData>();
interface Column { head: HTMLElement; sv: Card; bars: Card; steps: Card; intr: Card; charts: Map<Card, Chart> }
const columns = new Map<string, Column>();

function column(r: RunData): Column {
  let c = columns.get(r.info.id);
  if (c) return c;
  const root = el('div');
  const head = el('div', 'col-head');
  const g = el('div');
  root.append(head, g);
  cols.append(root);
  c = { head, sv: card(g, 'Singular values of ΔW'), bars: card(g, 'rank90 per layer'), steps: card(g, 'rank90 over training (median over layers)'), intr: card(g, 'Intruder dimensions per layer'), charts: new Map() };
  columns.set(r.info.id, c);
  return c;
}

/** Attention modules in blues, MLP in warm hues, so the two groups read apart in the bars. */
function moduleColor(kind: 'attention' | 'mlp', k: number): string {
  const att = [pal.blue, pal.purple, withAlpha(pal.blue, 0.6), withAlpha(pal.purple, 0.6)];
  const mlp = [pal.orange, pal.red, pal.yellow];
  return kind === 'attention' ? att[k % att.length] : mlp[k % mlp.length];
}

function upsert(c: Column, card_: Card, type: 'line' | 'bar', datasets: unknown[], scales: Record<string, unknown>, extra: Record<string, unknown> = {}, labels?: unknown[]): void {
  let ch = c.charts.get(card_);
  if (!ch) {
    ch = makeChart(card_.canvas, { type, data: { labels: labels as never, datasets: datasets as never }, options: { animation: false, scales: scales as never, plugins: { legend: { labels: { color: pal.fg } } }, ...extra } as never });
    c.charts.set(card_, ch);
    return;
  }
  ch.data.labels = labels as never;
  ch.data.datasets = datasets as never;
  ch.options.scales = scales as never;
  Object.assign(ch.options.plugins ?? {}, (extra.plugins ?? {}) as object);
  ch.update('none');
}

function stepsOf(): number[] { return [...new Set([...runs.values()].flatMap((r) => r.spectra.map((s) => s.step)))].sort((a, b) => a - b); }

/**
 * Y maxima per run. rank90 axes are set by the bars and the LoRA rank (rank90Scale), with a far
 * random reference drawn off scale; side-by-side runs share a maximum only when it keeps each
 * readable (sharedScale). Intruder counts are small integers and always share one scale.
 */
interface Scales { bars: number; barsShared: boolean; steps: number; stepsShared: boolean; intr: number }
const scales = new Map<string, Scales>();

const loraRankOf = (r: RunData): number | null => r.info.rank ?? r.spectra.find((s) => s.loraRank)?.loraRank ?? null;
const randomMedians = (recs: readonly SpectrumRecord[]): { att: number | null; mlp: number | null } => ({
  att: median(recs.filter((s) => s.kind === 'attention' && s.randomRank90 !== null).map((s) => s.randomRank90!)),
  mlp: median(recs.filter((s) => s.kind === 'mlp' && s.randomRank90 !== null).map((s) => s.randomRank90!)),
});
const refsOf = (m: { att: number | null; mlp: number | null }): number[] => [m.att, m.mlp].filter((v): v is number => v !== null);
/** Median rank90 per kind at each analysed step (the rank90-over-training chart's data). */
function stepMedians(r: RunData): { steps: number[]; att: (number | null)[]; mlp: (number | null)[] } {
  const steps = [...new Set(r.spectra.map((s) => s.step))].sort((a, b) => a - b).filter((s) => s > 0 || r.spectra.some((x) => x.step === s && x.rank90 > 0));
  const med = (kind: 'attention' | 'mlp'): (number | null)[] => steps.map((s) => median(r.spectra.filter((x) => x.step === s && x.kind === kind).map((x) => x.rank90)));
  return { steps, att: med('attention'), mlp: med('mlp') };
}

function drawRun(r: RunData, step: number): void {
  const c = column(r);
  const loraRank = loraRankOf(r);
  const sc = scales.get(r.info.id)!;
  c.head.textContent = `${runLabel(r.info)} — ${r.info.id}`;
  const at = r.spectra.filter((s) => s.step === step);
  // 1) spectrum of the chosen module (log y)
  const m = at.find((s) => s.module === state.module);
  c.sv.title.textContent = `Singular values of ΔW — ${m ? `${m.module} [${m.shape.join('×')}]` : state.module || 'no module'}`;
  c.sv.note.textContent = m ? `rank90 ${m.rank90}${m.randomRank90 !== null ? ` · random ${m.randomRank90}` : ''}` : 'not analysed in this run';
  upsert(c, c.sv, 'line', m ? [{ label: 'σ_i', data: m.sv.map((v, i) => ({ x: i + 1, y: Math.max(v, 1e-12) })), borderColor: pal.blue, backgroundColor: pal.blue, pointRadius: 1.5, borderWidth: 1.5 }] : [],
    { x: linearAxis(pal, 'index i', { ticks: { color: pal.muted, maxTicksLimit: 8, precision: 0 } }), y: linearAxis(pal, 'σ_i (log)', { type: 'logarithmic' }) },
    { parsing: false, plugins: { legend: { display: false } } });
  // 2) rank90 per layer, grouped bars per module name
  const layers = [...new Set(at.map((s) => s.layer))].sort((a, b) => a - b);
  const names = [...new Map(at.map((s) => [s.name, s.kind])).entries()].sort((a, b) => (a[1] === b[1] ? 0 : a[1] === 'attention' ? -1 : 1));
  let ka = 0, km = 0;
  const bars = names.map(([name, kind]) => ({
    label: `${name} (${kind === 'attention' ? 'attn' : 'mlp'})`,
    data: layers.map((l) => at.find((s) => s.layer === l && s.name === name)?.rank90 ?? null),
    backgroundColor: moduleColor(kind, kind === 'attention' ? ka++ : km++),
  }));
  const rnd = randomMedians(at);
  const lines = refLines(loraRank, rnd);
  const off = lines.filter((l) => l.value > sc.bars).length;
  c.bars.note.textContent = `step ${step}${sc.barsShared ? '' : ' · own y scale'}${off ? ' · random reference off scale ↑' : ''}`;
  upsert(c, c.bars, 'bar', bars, { x: { ...linearAxis(pal, 'layer'), type: 'category' }, y: linearAxis(pal, 'rank90', { min: 0, max: sc.bars }) },
    { plugins: { legend: { labels: { color: pal.fg } }, refLines: { lines } } }, layers.map((l) => `L${l}`));
  // 3) rank90 over steps: median per kind (an analysis run has the one step it analysed)
  c.steps.title.textContent = r.info.kind === 'analysis' ? 'rank90 at the analysed step (median over layers; no training here)' : 'rank90 over training (median over layers)';
  const sm = stepMedians(r);
  const pts = (ys: (number | null)[]): { x: number; y: number | null }[] => sm.steps.map((x, i) => ({ x, y: ys[i] }));
  c.steps.note.textContent = sc.stepsShared ? '' : 'own y scale';
  upsert(c, c.steps, 'line', [
    { label: 'attention', data: pts(sm.att), borderColor: pal.blue, backgroundColor: pal.blue, pointRadius: 3 },
    { label: 'mlp', data: pts(sm.mlp), borderColor: pal.orange, backgroundColor: pal.orange, pointRadius: 3 },
  ], { x: linearAxis(pal, 'step'), y: linearAxis(pal, 'median rank90', { min: 0, max: sc.steps }) },
  { parsing: false, plugins: { refLines: { lines: refLines(loraRank, randomMedians(r.spectra)) } } });
  // 4) intruders per layer (summed over the layer's modules) vs the random baseline
  const sum = (l: number, key: 'intruders' | 'randomIntruders'): number | null => {
    const v = at.filter((s) => s.layer === l && s[key] !== null).map((s) => s[key]!);
    return v.length ? v.reduce((a, b) => a + b, 0) : null;
  };
  const total = at.reduce((a, s) => a + (s.intruders ?? 0), 0);
  const rtotal = at.reduce((a, s) => a + (s.randomIntruders ?? 0), 0);
  c.intr.note.textContent = at.some((s) => s.intruders !== null) ? `step ${step} · total ${total} vs random ${rtotal} (k=10, ε=0.5)` : 'no intruder analysis';
  upsert(c, c.intr, 'bar', [
    { label: 'intruders', data: layers.map((l) => sum(l, 'intruders')), backgroundColor: pal.red },
    { label: 'random baseline', data: layers.map((l) => sum(l, 'randomIntruders')), backgroundColor: withAlpha(pal.muted, 0.5) },
  ], { x: { ...linearAxis(pal, 'layer'), type: 'category' }, y: linearAxis(pal, 'intruders (top-10 left sing. vectors)', { min: 0, max: sc.intr }) }, {}, layers.map((l) => `L${l}`));
}

/** LoRA runs shown whose adapter is finished: what "Reduce Intruders…" can act on. */
function loraRuns(): RunData[] {
  return [...runs.values()].filter((r) => r.info.method === 'lora' && r.info.state === 'completed');
}

function draw(): void {
  const list = [...runs.values()];
  reduceBtn.classList.toggle('hidden', loraRuns().length === 0);
  const steps = stepsOf();
  const modules = [...new Map(list.flatMap((r) => r.spectra).map((s) => [s.module, s])).values()]
    .sort((a, b) => a.layer - b.layer || (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'attention' ? -1 : 1));
  if (!modules.some((m) => m.module === state.module)) state.module = modules.find((m) => m.kind === 'mlp')?.module ?? modules[0]?.module ?? '';
  const latestNonBase = steps.filter((s) => s > 0).pop() ?? steps[steps.length - 1] ?? null;
  if (state.step === null || !steps.includes(state.step)) state.step = latestNonBase;
  setOptions(moduleSel, modules.map((m) => ({ value: m.module, label: `${m.module} (${m.kind})` })), state.module);
  setOptions(stepSel, steps.map((s) => ({ value: String(s), label: `step ${s}` })), String(state.step ?? ''));
  saveState(state);
  if (list.length === 0) { banner.show('empty', 'No run selected.'); return; }
  if (steps.length === 0) { banner.show('loading', 'waiting for the first spectrum analysis…'); return; }
  banner.show(null);
  const perLayerIntr = list.flatMap((r) => {
    const at = r.spectra.filter((s) => s.step === nearestStep(r, state.step!));
    return [...new Set(at.map((s) => s.layer))].map((l) => at.filter((s) => s.layer === l).reduce((a, s) => a + Math.max(s.intruders ?? 0, s.randomIntruders ?? 0), 0));
  });
  computeScales(list, perLayerIntr);
  for (const r of list) drawRun(r, nearestStep(r, state.step!));
  const full = list.find((r) => r.info.method === 'full' && r.spectra.length);
  if (full) {
    const upTo = full.spectra.filter((s) => s.step <= (state.step ?? Infinity));
    const a = adviseRank(upTo.map(toSummary), 'full');
    advice.replaceChildren(el('strong', '', 'Rank advice (from this full-finetuning run): '), el('span', '', a.text));
    if (a.suggested) advice.append(el('div', '', ''), el('code', '', `lora: {rank: ${a.suggested.rank}, alpha: ${a.suggested.alpha}, target_modules: ${a.suggested.target_modules}}`));
    advice.classList.remove('hidden');
  } else advice.classList.add('hidden');
}

/** The LoRA rank (green) and the random-matrix rank90 medians (grey, dashed) as reference lines. */
function refLines(loraRank: number | null, rnd: { att: number | null; mlp: number | null }): RefLine[] {
  const lines: RefLine[] = [];
  if (loraRank) lines.push({ value: loraRank, label: `LoRA rank ${loraRank}`, color: pal.green });
  if (rnd.att !== null) lines.push({ value: rnd.att, label: rnd.mlp === rnd.att ? `random ${rnd.att}` : `random ${rnd.att} (attn)`, color: pal.muted, dash: [3, 3] });
  if (rnd.mlp !== null && rnd.mlp !== rnd.att) lines.push({ value: rnd.mlp, label: `random ${rnd.mlp} (mlp)`, color: pal.muted, dash: [3, 3] });
  return lines;
}

function computeScales(list: RunData[], perLayerIntr: number[]): void {
  const bars = list.map((r) => {
    const at = r.spectra.filter((s) => s.step === nearestStep(r, state.step!));
    return rank90Scale(Math.max(0, ...at.map((s) => s.rank90)), loraRankOf(r), refsOf(randomMedians(at))).max;
  });
  const steps = list.map((r) => {
    const sm = stepMedians(r);
    const top = Math.max(0, ...[...sm.att, ...sm.mlp].filter((v): v is number => v !== null));
    return rank90Scale(top, loraRankOf(r), refsOf(randomMedians(r.spectra))).max;
  });
  const b = sharedScale(bars), s = sharedScale(steps);
  const intr = Math.ceil(Math.max(1, ...perLayerIntr) * 1.1);
  scales.clear();
  list.forEach((r, i) => scales.set(r.info.id, { bars: b[i], barsShared: list.length < 2 || b[i] === Math.max(...b), steps: s[i], stepsShared: list.length < 2 || s[i] === Math.max(...s), intr }));
}

const toSummary = (s: SpectrumRecord): { step: number; kind: 'attention' | 'mlp'; rank90: number; shape: number[]; random_rank90: number | null } =>
  ({ step: s.step, kind: s.kind, rank90: s.rank90, shape: s.shape, random_rank90: s.randomRank90 });

function nearestStep(r: RunData, step: number): number {
  const own = [...new Set(r.spectra.map((s) => s.step))];
  return own.reduce((best, s) => (Math.abs(s - step) < Math.abs(best - step) ? s : best), own[0] ?? step);
}

function exportPngs(): void {
  for (const [id, c] of columns) for (const [cd, ch] of c.charts) exportPng(ch, `${id}-${cd.title.textContent?.split(' ')[0] ?? 'chart'}-${[...c.charts.keys()].indexOf(cd)}`, pal.bg);
}

function exportAll(): void {
  const rows: (string | number | null)[][] = [];
  for (const r of runs.values()) for (const s of r.spectra) rows.push([r.info.id, s.step, s.module, s.kind, s.layer, s.shape.join('x'), s.rank90, s.randomRank90, s.intruders, s.randomIntruders, s.sv.join(' ')]);
  exportCsv(['run', 'step', 'module', 'kind', 'layer', 'shape', 'rank90', 'random_rank90', 'intruders', 'random_intruders', 'singular_values'], rows, 'spectra');
}

function setRuns(infos: RunHeader[]): void {
  runs.clear(); columns.clear(); cols.replaceChildren();
  for (const i of infos) runs.set(i.id, new RunData(i));
}

let frame = 0;
function schedule(): void { if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); }); }

onHostMessage((msg: HostToWebview) => {
  switch (msg.type) {
    case 'init': state.restore = msg.restore; saveState(state); setRuns(msg.runs); return schedule();
    case 'append': for (const b of msg.batches) runs.get(b.runId)?.append(b); return schedule();
    case 'header': { const r = runs.get(msg.run.id); if (r) r.info = msg.run; return schedule(); }
    case 'error': return banner.show('error', msg.message);
    default: return assertNever(msg);
  }
});
onThemeChange(() => {
  pal = readPalette(); applyDefaults(pal);
  for (const c of columns.values()) for (const ch of c.charts.values()) themeScales(ch, pal);
  schedule();
});
banner.show('loading', 'loading spectra…');
ready();
