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
import { evalShare, taskDetail } from '../../src/core/evalScores';

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
/** How much of the wall time evaluation took (eval events carry their seconds): keep it small, ~10% at most. */
const evalShareNote = el('p', 'legend-note eval-share');
const evalGrid = el('div', 'grid');
document.body.append(evalTitle, evalShareNote, evalGrid);
/**
 * One card per eval task (role, name): a loss, an accuracy and a KL have different scales, so each
 * gets its own y axis; learning tasks first. Made as tasks appear, in that order.
 */
const evalCards = new Map<string, Card>();
function evalCard(role: 'learning' | 'forgetting', name: string): Card {
  const key = `${role}:${name}`;
  let c = evalCards.get(key);
  if (!c) {
    c = card(evalGrid, name);
    evalCards.set(key, c);
    // keep learning cards before forgetting ones whatever order tasks appear in
    const order = [...evalCards.entries()].sort(([a], [b]) => (a.startsWith('learning') === b.startsWith('learning') ? 0 : a.startsWith('learning') ? -1 : 1));
    for (const [, cc] of order) evalGrid.append(cc.root);
  }
  return c;
}

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
let evalsDrawnFrom = '';
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
  const evalsKey = `${list.map((r) => r.info.id).join()}|${evalEpoch}|${themeEpoch}`;
  if (evalsKey !== evalsDrawnFrom) { evalsDrawnFrom = evalsKey; drawEvals(list, compare); drawEvalShare(list); }
  document.dispatchEvent(new Event('finetunelab:drawn-all'));
}

function drawEvals(list: RunData[], compare: boolean): void {
  const dash = [[], [6, 3], [2, 2], [8, 3, 2, 3]];
  const keys = new Map<string, { role: 'learning' | 'forgetting'; name: string }>();
  for (const r of list) for (const e of r.evals) for (const t of e.tasks) keys.set(`${t.role}:${t.name}`, { role: t.role, name: t.name });
  let k = 0;
  for (const { role, name } of [...keys.values()].sort((a, b) => (a.role === b.role ? 0 : a.role === 'learning' ? -1 : 1))) {
    const c = evalCard(role, name);
    const sets: LineChart['data']['datasets'] = [];
    const details = new Set<string>();
    const failures: string[] = [];
    let higher: boolean | undefined;
    list.forEach((r, i) => {
      const mine = r.evals.flatMap((e) => e.tasks.filter((t) => t.name === name && t.role === role).map((t) => ({ t, step: e.step })));
      if (!mine.length) return;
      // the newest entry that has a value: its metric, version and n (an lm_eval task's) name the score
      const t = [...mine].reverse().find((m) => m.t.value !== null)?.t ?? mine[0].t;
      details.add(taskDetail(t));
      higher = t.higherIsBetter;
      const failed = mine.filter((m) => m.t.error);
      if (failed.length) failures.push(`${compare ? `${runLabel(r.info)}: ` : ''}failed at step ${failed.map((m) => m.step).join(', ')}: ${failed.at(-1)!.t.error}`);
      const color = compare ? colorOf(r) : pal.series[(k + (role === 'learning' ? 2 : 1)) % 6];
      sets.push({ label: compare ? runLabel(r.info) : name, data: r.evals.map((e) => ({ x: e.step, y: e.tasks.find((x) => x.name === name && x.role === role)?.value ?? null })),
        borderColor: color, backgroundColor: color, borderDash: compare ? dashesOf(list)[i] : dash[0], pointRadius: 3, spanGaps: false });
    });
    k++;
    const ch = chartFor(c, [...details][0]?.split(',')[0] ?? 'score', false);
    c.title.textContent = `${role === 'learning' ? 'Learning' : 'Forgetting'}: ${name}`;
    c.note.textContent = [`${[...details].join(' / ')}${higher === undefined ? '' : higher ? ' · ↑ better' : ' · ↓ better'}`, ...failures.map((f) => `⚠ ${f}`)].join(' · ');
    c.note.title = failures.join('\n');
    c.note.classList.toggle('warn', failures.length > 0);
    ch.options.plugins!.legend!.display = compare;
    ch.data.datasets = sets;
    ch.update('none');
  }
  if (!keys.size && !evalCards.size) evalShareNote.textContent = 'no evaluations yet';
}

/** "evaluation took 4.2% of the wall time (12 s of 4m50s)", per run when several are shown. */
function drawEvalShare(list: RunData[]): void {
  const parts = list.flatMap((r) => {
    const s = evalShare(r.evals, r.info.starts);
    if (!s) return [];
    const text = `${(100 * s.share).toFixed(1)}% of the wall time (${Math.round(s.evalSeconds)} s of ${Math.round(s.wallSeconds)} s${s.share > 0.1 ? ': lower the evals\' limit or raise evals.every_steps' : ''})`;
    return [list.length > 1 ? `${runLabel(r.info)}: ${text}` : text];
  });
  evalShareNote.textContent = parts.length ? `Evaluation took ${parts.join(' · ')}` : '';
  evalShareNote.classList.toggle('warn', list.some((r) => (evalShare(r.evals, r.info.starts)?.share ?? 0) > 0.1));
}

/** An analysis run (issue 14) trained nothing here: its dashboard is its evaluations, and says so. */
const ANALYSIS_NOTE = 'nothing was trained in this run, so there is no training curve: it analyses a finetune made elsewhere '
  + '(or reduce-intruders\' mitigated adapter). Its evaluations of the base (step 0) and of the finetune are below; its ΔW spectra are in Open Spectra.';

function updateBanner(list: RunData[]): void {
  const failed = list.find((r) => r.info.state === 'failed');
  const analyses = list.filter((r) => r.info.kind === 'analysis');
  // Only analysis runs: no train chart at all, and a line that says why, instead of empty charts.
  grid.classList.toggle('hidden', list.length > 0 && analyses.length === list.length);
  if (list.length === 0) banner.show('empty', 'No run selected. Open a run from the Finetune Lab explorer.');
  else if (failed) banner.show('error', `run failed: ${failed.info.error ?? 'unknown error'}${list.length > 1 ? ` (${runLabel(failed.info)})` : ''}`);
  else if (analyses.length === list.length) banner.show('empty', `${list.length === 1 ? 'Analysis run' : 'Analysis runs'}: ${ANALYSIS_NOTE}`);
  else if (list.every((r) => r.trainLength === 0)) banner.show('loading', list.some((r) => r.info.state === 'queued') ? 'queued: waiting for the trainer to start…' : 'waiting for the first step…');
  else if (analyses.length) banner.show('empty', `No training curve for ${analyses.map((r) => runLabel(r.info)).join(', ')}: ${analyses.length === 1 ? 'an analysis run' : 'analysis runs'}, evaluated only (below).`);
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
  const list = [...trainCards.map((t) => t.card), ...evalCards.values()].map((c) => charts.get(c)).filter((c): c is LineChart => !!c);
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
  for (const r of runs.values()) {
    for (const e of r.evals) for (const t of e.tasks) evalRows.push([r.info.id, e.step, t.role, t.name, t.type, t.metric, t.value, t.higherIsBetter ? 1 : 0, t.version, t.n, e.seconds, t.error]);
  }
  exportCsv(['run', 'step', 'role', 'task', 'type', 'metric', 'value', 'higher_is_better', 'version', 'n', 'eval_seconds', 'error'], evalRows, `${name}-evals`);
}

// ---- messages -------------------------------------------------------------------------
function setRuns(infos: RunHeader[]): void {
  runs.clear(); smooth.clear(); m4.clear(); drawnFrom.clear(); evalEpoch++; evalsDrawnFrom = '';
  for (const c of evalCards.values()) { charts.get(c)?.destroy(); charts.delete(c); c.root.remove(); }
  evalCards.clear();
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
