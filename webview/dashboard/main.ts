/**
 * Run dashboard: training loss (raw, faded, under the debiased-EMA smoothed line), learning
 * rate, gradient norm, tokens/s, memory, and eval scores per task (learning and forgetting
 * apart) — for one run, or several overlaid (Compare). Live: the host posts only new points;
 * drawing is coalesced to one animation frame and decimated (M4) to 1–2 points per pixel.
 *
 * Cost with a million points: decimation is incremental (M4Stream per run and series: a live
 * batch of k points costs O(k), not O(all points)); the loss chart is drawn in the frame, the
 * small charts and evals in an idle callback after it (so the loss chart paints first), and
 * a chart whose inputs did not change is not touched.
 */
import { assertNever, type HostToWebview, type RestoreInfo, type RunHeader } from '../../src/core/messages';
import { TRAIN_FIELDS, type TrainField, type TrainFieldChart } from '../../src/core/generated/trainFields';
import { DebiasedEma } from '../../src/core/smoothing';
import { M4Stream } from '../../src/core/decimate';
import { onHostMessage, loadState, saveState, ready, post } from '../common/vscodeApi';
import { readPalette, onThemeChange, runColor as colorOfRun, withAlpha, type Palette } from '../common/theme';
import { applyDefaults, makeChart, lineOptions, themeScales, bucketsFor, type Chart, type XMark } from '../common/charts';
import { adoptStyles, el, card, Banner, button, checkbox, exportCsv, fmt, type Card } from '../common/ui';
import { RunData, runLabel } from '../common/runData';

/** restore: what the panel serializer needs after a reload (src/panels/serializers.ts). */
interface State { smoothing: number; logY: boolean; restore?: RestoreInfo }
const state = loadState<State>({ smoothing: 0.6, logY: false });

adoptStyles();
let pal: Palette = readPalette();
applyDefaults(pal);

// ---- layout ---------------------------------------------------------------------------
const bar = el('div', 'toolbar');
const title = el('h1', '', 'Run dashboard');
const smoothLabel = el('label', 'field', 'Smoothing');
const slider = el('input');
slider.type = 'range'; slider.min = '0'; slider.max = '0.99'; slider.step = '0.01'; slider.value = String(state.smoothing);
slider.setAttribute('aria-label', 'Smoothing');
const smoothValue = el('span', '', state.smoothing.toFixed(2));
smoothLabel.append(slider, smoothValue);
const logBox = checkbox('Log scale', state.logY, (v) => { state.logY = v; saveState(state); rebuildScales(); });
bar.append(title, smoothLabel, logBox, el('span', 'spacer'),
  button('Export PNG', () => exportPng()), button('Export CSV', () => exportAllCsv()));
document.body.append(bar);
const banner = new Banner(document.body);
bar.after(banner.root);
const runsRow = el('div', 'runs');
document.body.append(runsRow);
const grid = el('div', 'grid');
document.body.append(grid);
/** One card per charted train field of the schema, in its order; the smoothed one is the big loss card. */
interface TrainCard { key: TrainField; spec: TrainFieldChart; card: Card }
const trainCards: TrainCard[] = TRAIN_FIELDS.flatMap((f) => f.chart
  ? [{ key: f.key, spec: f.chart, card: card(grid, f.title, f.chart.tall ? 'tall' : 'short', f.chart.tall) }] : []);
const lossCard = trainCards.find((c) => c.spec.smoothed) ?? trainCards[0];
const smallCards = trainCards.filter((c) => c !== lossCard);
const evalTitle = el('h2', 'section-title', 'Evaluation — learning (target domain) and forgetting (source domain)');
const evalGrid = el('div', 'grid');
document.body.append(evalTitle, evalGrid);
const evalCards = { learning: card(evalGrid, 'Learning'), forgetting: card(evalGrid, 'Forgetting') };

// ---- data -----------------------------------------------------------------------------
const runs = new Map<string, RunData>();
/** Smoothed loss per run, extended incrementally; dropped when the weight changes. */
const smooth = new Map<string, { ema: DebiasedEma; out: Float64Array; n: number }>();

function smoothedLoss(r: RunData): Float64Array {
  let s = smooth.get(r.info.id);
  if (!s) { s = { ema: new DebiasedEma(state.smoothing), out: new Float64Array(1024), n: 0 }; smooth.set(r.info.id, s); }
  const loss = r.train[lossCard.key].view();
  if (s.out.length < loss.length) { const next = new Float64Array(r.train[lossCard.key].data.length); next.set(s.out.subarray(0, s.n)); s.out = next; }
  for (let i = s.n; i < loss.length; i++) s.out[i] = s.ema.push(loss[i]);
  s.n = loss.length;
  return s.out.subarray(0, s.n);
}

slider.addEventListener('input', () => {
  state.smoothing = Number(slider.value);
  smoothValue.textContent = state.smoothing.toFixed(2);
  smooth.clear();
  for (const k of [...m4.keys()]) if (k.endsWith('\nsmoothed')) m4.delete(k);
  saveState(state);
  scheduleDraw();
});

// ---- charts ---------------------------------------------------------------------------
type LineChart = Chart<'line', { x: number; y: number | null }[]>;
const charts = new Map<Card, LineChart>();

function chartFor(c: Card, yTitle: string, logY: boolean, xTitle = 'step'): LineChart {
  let ch = charts.get(c);
  if (!ch) {
    ch = makeChart(c.canvas, { type: 'line', data: { datasets: [] }, options: lineOptions(pal, xTitle, yTitle, logY) }) as LineChart;
    charts.set(c, ch);
  }
  return ch;
}

/** A run's colour is the same in every view (theme.ts runColor: method, rank, learning rate). */
const colorOf = (r: RunData): string => colorOfRun(pal, r.info);
/** Runs that share a colour (same method, rank and rate) are told apart by dashes, in list order. */
function dashesOf(list: RunData[]): number[][] {
  const seen = new Map<string, number>();
  return list.map((r) => { const c = colorOf(r); const k = seen.get(c) ?? 0; seen.set(c, k + 1); return [[], [6, 3], [2, 2], [8, 3, 2, 3]][k % 4]; });
}
const colorsKey = (list: RunData[]): string => list.map(colorOf).join();

type SeriesKey = TrainField | 'smoothed';
/** Incremental decimation per run + series, dropped when the bucket count (canvas width) changes. */
const m4 = new Map<string, M4Stream>();

function decimated(r: RunData, key: SeriesKey, buckets: number): { x: number; y: number | null }[] {
  const id = `${r.info.id}\n${key}`;
  let s = m4.get(id);
  if (!s || s.maxBuckets !== buckets + (buckets % 2)) { s = new M4Stream(buckets); m4.set(id, s); }
  const y = key === 'smoothed' ? smoothedLoss(r) : r.train[key].data;
  s.update(r.train.step.data, y, r.trainLength);
  return s.points(r.train.step.data, y);
}

/** What a chart was last drawn from; equal → skip it (no re-decimation, no chart.js update). */
const drawnFrom = new Map<Card, string>();
let themeEpoch = 0;
let evalEpoch = 0;
function unchanged(c: Card, key: string): boolean {
  if (drawnFrom.get(c) === key) return true;
  drawnFrom.set(c, key);
  return false;
}

let frame = 0;
let rest = 0;
function scheduleDraw(): void {
  if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); });
}

function draw(): void {
  const list = [...runs.values()];
  const compare = list.length > 1;
  drawLoss(list, compare);
  updateBanner(list);
  // Lets the benchmark (bench/webview) time first paint and updates; costs nothing otherwise.
  document.dispatchEvent(new Event('finetunelab:drawn'));
  // The small charts and evals when the page is idle after the loss chart's frame (at most
  // 200 ms later, so they keep up with live updates at 10/s).
  if (!rest) rest = requestIdleCallback(() => { rest = 0; drawRest(); }, { timeout: 200 });
}

/** Where each run's loss diverged, as vertical marks on every train chart. */
function divergenceMarks(list: RunData[]): XMark[] {
  return list.flatMap((r, i) => r.diverged
    ? [{ value: r.diverged.step, label: `${list.length > 1 ? `${runLabel(r.info)}: ` : ''}loss diverged (${r.diverged.value}) at step ${r.diverged.step}`, color: list.length > 1 ? colorOf(list[i]) : pal.red, background: withAlpha(pal.bg, 0.85) }]
    : []);
}
const marksKey = (list: RunData[]): string => list.map((r) => r.diverged?.step ?? '').join();

/** Marks and an x range that reaches them (the diverged step itself has no train point). */
function applyMarks(ch: LineChart, marks: XMark[]): void {
  ch.options.plugins!.xMarks = { marks };
  (ch.options.scales!.x as { suggestedMax?: number }).suggestedMax = marks.length ? Math.max(...marks.map((m) => m.value)) : undefined;
}

function drawLoss(list: RunData[], compare: boolean): void {
  const c = lossCard.card;
  const key = lossCard.key;
  const lossChart = chartFor(c, lossCard.spec.axis, state.logY && lossCard.spec.logScale);
  const b = bucketsFor(c.canvas);
  if (unchanged(c, `${list.map((r) => `${r.info.id}:${r.trainLength}`).join()}|${b}|${state.smoothing}|${state.logY}|${themeEpoch}|${marksKey(list)}|${colorsKey(list)}`)) return;
  // Raw faded + smoothed, per run.
  const dashes = dashesOf(list);
  lossChart.data.datasets = list.flatMap((r, i) => {
    const color = colorOf(r);
    const name = compare ? runLabel(r.info) : lossCard.spec.axis;
    return [
      { label: `${name} (raw)`, data: decimated(r, key, b), borderColor: withAlpha(color, pal.highContrast ? 0.5 : 0.28), borderWidth: 1, pointRadius: 0 },
      { label: `${name} (smoothed ${state.smoothing.toFixed(2)})`, data: decimated(r, 'smoothed', b), borderColor: color, borderDash: dashes[i], borderWidth: 2, pointRadius: 0 },
    ];
  });
  applyMarks(lossChart, divergenceMarks(list));
  const one = list.length === 1 ? list[0] : undefined;
  c.note.textContent = one?.trainLength
    ? `step ${one.train.step.data[one.trainLength - 1]}${one.info.totalSteps ? ` / ${one.info.totalSteps}` : ''} · ${lossCard.spec.axis} ${fmt(one.train[key].data[one.trainLength - 1])} · ${one.trainLength.toLocaleString()} points${one.diverged ? ` · diverged (${one.diverged.value}) at step ${one.diverged.step}` : ''}`
    : '';
  lossChart.update('none');
}

function drawRest(): void {
  const list = [...runs.values()];
  const compare = list.length > 1;
  const lens = list.map((r) => `${r.info.id}:${r.trainLength}`).join();
  const marks = divergenceMarks(list);
  for (const { key, spec, card: c } of smallCards) {
    const logY = state.logY && spec.logScale;
    const ch = chartFor(c, spec.axis, logY);
    const bb = bucketsFor(c.canvas);
    if (unchanged(c, `${lens}|${bb}|${logY}|${themeEpoch}|${marksKey(list)}|${colorsKey(list)}`)) continue;
    const dashes = dashesOf(list);
    ch.data.datasets = list.map((r, i) => ({ label: runLabel(r.info), data: decimated(r, key, bb), borderColor: colorOf(r), borderDash: dashes[i], pointRadius: 0 }));
    ch.options.plugins!.legend!.display = compare;
    applyMarks(ch, marks);
    ch.update('none');
  }
  if (!unchanged(evalCards.learning, `${list.map((r) => r.info.id).join()}|${evalEpoch}|${themeEpoch}`)) drawEvals(list, compare);
  document.dispatchEvent(new Event('finetunelab:drawn-all'));
}

function drawEvals(list: RunData[], compare: boolean): void {
  for (const role of ['learning', 'forgetting'] as const) {
    const c = evalCards[role];
    const ch = chartFor(c, 'score', false);
    const dash = [[], [6, 3], [2, 2], [8, 3, 2, 3]];
    const sets: LineChart['data']['datasets'] = [];
    const dirs = new Set<string>();
    list.forEach((r) => {
      const names = [...new Set(r.evals.flatMap((e) => e.tasks.filter((t) => t.role === role).map((t) => t.name)))];
      names.forEach((name, k) => {
        const pts = r.evals.map((e) => ({ x: e.step, y: e.tasks.find((t) => t.name === name && t.role === role)?.value ?? null }));
        const t = r.evals.flatMap((e) => e.tasks).find((t) => t.name === name);
        if (t) dirs.add(`${name} ${t.metric}${t.higherIsBetter ? ' ↑ better' : ' ↓ better'}`);
        sets.push({ label: compare ? `${runLabel(r.info)} · ${name}` : name, data: pts, borderColor: compare ? colorOf(r) : pal.series[(k + (role === 'learning' ? 2 : 1)) % 6],
          backgroundColor: compare ? colorOf(r) : pal.series[(k + (role === 'learning' ? 2 : 1)) % 6], borderDash: dash[k % dash.length], pointRadius: 3 });
      });
    });
    c.title.textContent = role === 'learning' ? 'Learning (target domain)' : 'Forgetting (source domain)';
    c.note.textContent = [...dirs].join(' · ') || 'no evaluations yet';
    ch.data.datasets = sets;
    ch.update('none');
  }
}

function updateBanner(list: RunData[]): void {
  const failed = list.find((r) => r.info.state === 'failed');
  if (list.length === 0) banner.show('empty', 'No run selected. Open a run from the Finetune Lab explorer.');
  else if (failed) banner.show('error', `run failed: ${failed.info.error ?? 'unknown error'}${list.length > 1 ? ` (${runLabel(failed.info)})` : ''}`);
  else if (list.every((r) => r.trainLength === 0)) banner.show('loading', list.some((r) => r.info.state === 'queued') ? 'queued: waiting for the trainer to start…' : 'waiting for the first step…');
  else banner.show(null);
}

function rebuildScales(): void {
  for (const [c, ch] of charts) {
    const logY = state.logY && trainCards.some((t) => t.card === c && t.spec.logScale);
    const y = ch.options.scales!.y as { type: string };
    y.type = logY ? 'logarithmic' : 'linear';
  }
  scheduleDraw();
}

function renderRuns(): void {
  title.textContent = runs.size > 1 ? `Compare ${runs.size} runs` : runs.size === 1 ? [...runs.values()][0].info.id : 'Run dashboard';
  runsRow.replaceChildren(...[...runs.values()].map((r, i) => {
    const chip = el('span', 'run-chip');
    const sw = el('span', `swatch s${i}`);
    const stalled = r.info.state === 'running' && r.info.stale;
    chip.append(sw, el('span', '', `${runLabel(r.info)} · ${r.info.state}${stalled ? ' · stalled (no heartbeat)' : ''}`));
    if (stalled) chip.append(button('Kill Trainer', () => post({ type: 'killRun', runId: r.info.id })));
    // What the charts leave out, said rather than hidden: lines of events.jsonl no view could use.
    if (r.info.skipped) {
      const newer = r.info.skippedNewer ? `, ${r.info.skippedNewer} from a newer trainer: update Finetune Lab` : '';
      chip.append(el('span', 'skipped', ` · ${r.info.skipped} line${r.info.skipped === 1 ? '' : 's'} of events.jsonl skipped${newer}`));
    }
    chip.title = r.info.id;
    return chip;
  }));
  // Swatch colours cannot be inline styles (CSP): paint them as tiny canvases' backgrounds via classes set below.
  paintSwatches();
}

function paintSwatches(): void {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync([...runs.values()].map((r, i) => `.swatch.s${i}{background:${colorOf(r)}}`).join('\n'));
  document.adoptedStyleSheets = [...document.adoptedStyleSheets.slice(0, 1), sheet];
}

// ---- export ---------------------------------------------------------------------------
function exportPng(): void {
  const list = [...trainCards.map((t) => t.card), evalCards.learning, evalCards.forgetting].map((c) => charts.get(c)).filter((c): c is LineChart => !!c);
  const w = Math.max(...list.map((c) => c.canvas.width));
  const h = list.reduce((s, c) => s + c.canvas.height, 0);
  const out = document.createElement('canvas');
  out.width = w; out.height = h;
  const ctx = out.getContext('2d')!;
  ctx.fillStyle = pal.bg; ctx.fillRect(0, 0, w, h);
  let y = 0;
  for (const c of list) { ctx.drawImage(c.canvas, 0, y); y += c.canvas.height; }
  const name = runs.size === 1 ? [...runs.keys()][0] : 'compare';
  post({ type: 'export', format: 'png', name: `${name.replace(/[^\w.\- ]+/g, '_')}-dashboard.png`, data: out.toDataURL('image/png') });
}

function exportAllCsv(): void {
  // Every train field of the schema, in its order, then the smoothed loss as drawn.
  const rows: (string | number | null)[][] = [];
  for (const r of runs.values()) {
    const s = smoothedLoss(r);
    const cols = TRAIN_FIELDS.map((f) => r.train[f.key].data);
    for (let i = 0; i < r.trainLength; i++) rows.push([r.info.id, ...cols.map((c) => c[i]), s[i]]);
  }
  const name = runs.size === 1 ? [...runs.keys()][0] : 'compare';
  exportCsv(['run', ...TRAIN_FIELDS.map((f) => f.key), `${lossCard.key}_smoothed_${state.smoothing}`], rows, `${name}-train`);
  const evalRows: (string | number | null)[][] = [];
  for (const r of runs.values()) for (const e of r.evals) for (const t of e.tasks) evalRows.push([r.info.id, e.step, t.role, t.name, t.metric, t.value, t.higherIsBetter ? 1 : 0]);
  exportCsv(['run', 'step', 'role', 'task', 'metric', 'value', 'higher_is_better'], evalRows, `${name}-evals`);
}

// ---- messages -------------------------------------------------------------------------
function setRuns(infos: RunHeader[]): void {
  runs.clear(); smooth.clear(); m4.clear(); drawnFrom.clear(); evalEpoch++;
  for (const i of infos) runs.set(i.id, new RunData(i));
  renderRuns();
}

function onMessage(msg: HostToWebview): void {
  switch (msg.type) {
    case 'init': state.restore = msg.restore; saveState(state); setRuns(msg.runs); return scheduleDraw();
    case 'append': for (const b of msg.batches) { runs.get(b.runId)?.append(b); if (b.evals?.length) evalEpoch++; } return scheduleDraw();
    case 'header': { const r = runs.get(msg.run.id); if (r) { r.info = msg.run; renderRuns(); evalEpoch++; } return scheduleDraw(); }
    case 'error': return banner.show('error', msg.message);
    default: return assertNever(msg);
  }
}

onThemeChange(() => {
  pal = readPalette();
  applyDefaults(pal);
  for (const ch of charts.values()) themeScales(ch, pal);
  themeEpoch++;
  paintSwatches();
  scheduleDraw();
});
new ResizeObserver(() => scheduleDraw()).observe(grid);
banner.show('loading', 'loading run…');
onHostMessage(onMessage);
ready();
