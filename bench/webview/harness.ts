/**
 * Loads a built webview bundle (dist/webview/<view>.js) in headless Chromium, in a plain page
 * with the panel's own CSP, a fake acquireVsCodeApi and VS Code theme variables, and feeds it
 * the host's messages. Two jobs:
 *   shots  — screenshots of each view in dark, light and high-contrast themes (docs/screenshots/),
 *            then a theme switch after first paint, checking the charts were redrawn in the new colours
 *   real   — screenshots of real runs: node bench/webview/run.mjs real <runs-dir> [experiment]
 *   analysis — a LoRA run and its reduce-intruders runs: node bench/webview/run.mjs analysis <runs-dir> <experiment>
 *            (events.jsonl parsed with the core's parseEvents, turned into the very messages the
 *            panels post, by the panels' own code in src/panels/wire.ts)
 *   bench  — first paint and update cost of the dashboard with 1M training points (RESULTS.md)
 * Build + run: node bench/webview/run.mjs [shots|real|bench]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { RUNS, synthEvents } from './synth';
import { THEMES, themeVars, type ThemeName } from './themes';
import { launchChromium as launch, openBundlePage } from './page';
import { toAppend, runHeaderFrom, filterAppend, readyMessages, VIEW_FILTERS } from '../../src/panels/wire';
import { parseEvents } from '../../src/core/events';
import type { HostToWebview, RunState, ViewKind } from '../../src/core/messages';

const ROOT = process.cwd(); // run from the repo root (run.mjs)

/** Typed arrays do not survive JSON: send them as arrays (null for NaN) and rebuild in the page. */
function toJson(msgs: HostToWebview[]): string {
  return JSON.stringify(msgs, (_k, v) => (v instanceof Float64Array ? { __f64: Array.from(v, (x) => (Number.isNaN(x) ? null : x)) } : v));
}

const FAKE_API = `
  window.__sent = []; window.__state = undefined;
  window.acquireVsCodeApi = () => ({
    postMessage: (m) => { window.__sent.push(m); if (m && m.type === 'ready') window.__ready = performance.now(); },
    getState: () => window.__state, setState: (s) => { window.__state = s; },
  });
  window.__deliver = (json) => {
    const msgs = JSON.parse(json, (k, v) => v && v.__f64 ? Float64Array.from(v.__f64, (x) => x === null ? NaN : x) : v);
    for (const m of msgs) window.postMessage(m, '*');
  };
  window.__drawn = 0; document.addEventListener('finetunelab:drawn', () => { window.__drawn++; window.__drawnAt = performance.now(); });
  window.__drawnAll = 0; document.addEventListener('finetunelab:drawn-all', () => { window.__drawnAll++; window.__drawnAllAt = performance.now(); });
`;

/** state: what the webview's getState returns at start (a view's saved choices, e.g. the Pareto axes). */
async function openView(browser: import('playwright-core').Browser, view: ViewKind, theme: ThemeName, width = 1280, height = 900, state?: object): Promise<Page> {
  const initScript = FAKE_API + (state ? `\nwindow.__state = ${JSON.stringify(state)};` : '');
  const page = await openBundlePage(browser, { bundle: view, theme, label: `${view}/${theme}`, initScript, width, height });
  await page.waitForFunction(() => (window as unknown as { __ready?: number }).__ready !== undefined);
  return page;
}

function messagesFor(view: ViewKind, runs = RUNS): HostToWebview[] {
  const evs = runs.map((r) => ({ r, events: synthEvents(r) }));
  const infos = evs.map(({ r, events }) => runHeaderFrom(r.id, `/ws/.finetune/runs/${r.id}`, events));
  const batches = evs.map(({ r, events }) => toAppend(r.id, events)!).map((b) => (view === 'pareto' ? { runId: b.runId, evals: b.evals } : view === 'spectra' ? { runId: b.runId, spectra: b.spectra } : { runId: b.runId, train: b.train, evals: b.evals }));
  return [{ type: 'init', view, runs: infos, restore: { runs: infos.map((i) => ({ id: i.id, dir: i.dir })) } }, { type: 'append', batches }];
}

async function shots(): Promise<void> {
  const browser = await launch();
  const outDir = path.join(ROOT, 'docs', 'screenshots');
  fs.mkdirSync(outDir, { recursive: true });
  const plan: [string, ViewKind, HostToWebview[], object?][] = [
    ['dashboard', 'dashboard', messagesFor('dashboard', [RUNS[0]])],
    ['compare', 'dashboard', messagesFor('dashboard', [RUNS[0], RUNS[3]])],
    ['pareto', 'pareto', messagesFor('pareto')],
    // the user's choice of axes, as the webview keeps it: HumanEval (lm-eval) against KL to the base
    ['pareto-axes', 'pareto', messagesFor('pareto'), { delta: true, learningAxis: 'task:humaneval', forgettingAxis: 'task:kl' }],
    ['spectra', 'spectra', messagesFor('spectra', [RUNS[0], RUNS[3]])],
  ];
  for (const theme of ['dark', 'light', 'hc'] as const) {
    for (const [name, view, msgs, state] of plan) {
      if (state && theme !== 'dark') continue;
      const page = await openView(browser, view, theme, 1280, 900, state);
      await page.evaluate((j) => (window as unknown as { __deliver: (j: string) => void }).__deliver(j), toJson(msgs));
      await page.waitForTimeout(600);
      const file = path.join(outDir, `${name}-${theme}.png`);
      await page.screenshot({ path: file, fullPage: true });
      console.log(`wrote ${path.relative(ROOT, file)}`);
      await page.close();
    }
  }
  // States: waiting and failed.
  const page = await openView(browser, 'dashboard', 'dark', 1000, 720);
  const failed = { ...RUNS[4], id: 'code-cpt-20250301-101500-lora-r4-lr3e-2', lr: 3e-2 };
  const events = synthEvents(failed, { failAt: 141 });
  const info = runHeaderFrom(failed.id, '/ws/r', events);
  await page.evaluate((j) => (window as unknown as { __deliver: (j: string) => void }).__deliver(j), toJson([{ type: 'init', view: 'dashboard', runs: [info], restore: { runs: [] } }, { type: 'append', batches: [toAppend(failed.id, events)!] }]));
  await page.waitForTimeout(400);
  await page.screenshot({ path: path.join(outDir, 'dashboard-failed-dark.png') });
  await page.close();
  const ok = await themeSwitch(browser);
  await browser.close();
  if (!ok) process.exitCode = 1;
}

/** Pixels of a canvas close (within tol per channel) to an #rrggbb colour. */
async function countNear(page: Page, selector: string, hex: string, tol = 40): Promise<number> {
  return page.evaluate(({ selector, hex, tol }) => {
    const c = document.querySelector(selector) as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 200 && Math.abs(d[i] - r) <= tol && Math.abs(d[i + 1] - g) <= tol && Math.abs(d[i + 2] - b) <= tol) n++;
    return n;
  }, { selector, hex, tol });
}

/**
 * Redraw on theme change: first paint in dark, then switch the way VS Code does (variables on
 * <html>, class on <body>) to high contrast and to light; the charts' axes/text must take the
 * new theme's colours (HC: contrastBorder #6fc3df axes; light: dark text #3b3b3b).
 */
async function themeSwitch(browser: import('playwright-core').Browser): Promise<boolean> {
  let ok = true;
  for (const view of ['dashboard', 'pareto', 'spectra'] as ViewKind[]) {
    const page = await openView(browser, view, 'dark');
    await page.evaluate((j) => (window as unknown as { __deliver: (j: string) => void }).__deliver(j), toJson(messagesFor(view, view === 'dashboard' ? [RUNS[0]] : view === 'spectra' ? [RUNS[0], RUNS[3]] : RUNS)));
    await page.waitForTimeout(600);
    const sel = 'canvas';
    const before = { hc: await countNear(page, sel, '#6fc3df', 24), light: await countNear(page, sel, '#3b3b3b', 24) };
    const results: string[] = [];
    for (const to of ['hc', 'light'] as const) {
      await page.evaluate(({ vars, cls }) => {
        for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);
        document.body.className = cls;
      }, { vars: themeVars(to), cls: THEMES[to].bodyClass });
      await page.waitForTimeout(400);
      const hex = to === 'hc' ? '#6fc3df' : '#3b3b3b';
      const after = await countNear(page, sel, hex, 24);
      const pass = after > Math.max(50, before[to] * 3);
      ok &&= pass;
      results.push(`${to}: ${hex} pixels ${before[to]} → ${after} ${pass ? 'ok' : 'NOT REDRAWN'}`);
      if (to === 'hc') await page.screenshot({ path: path.join(ROOT, 'docs', 'screenshots', `${view}-switched-to-hc.png`), fullPage: true });
    }
    console.log(`theme switch (${view}, first canvas): ${results.join('; ')}`);
    await page.close();
  }
  return ok;
}

/**
 * Real runs: a runs folder written by the trainer (.finetune/runs/<id>/events.jsonl + status.json),
 * turned into the messages the panels post on `ready` with the panels' own functions.
 */
function realMessages(view: ViewKind, dirs: string[]): HostToWebview[] {
  const infos: ReturnType<typeof runHeaderFrom>[] = [];
  const batches: ReturnType<typeof toAppend>[] = [];
  for (const dir of dirs) {
    const id = path.basename(dir);
    const { events } = parseEvents(fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8'));
    // The editor takes the state from its RunManager; here status.json as written (finished runs).
    let status: { state?: RunState; error?: string | null } | undefined;
    try { status = JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')) as typeof status; } catch { status = undefined; }
    infos.push(runHeaderFrom(id, dir, events, status?.state ? { state: status.state, error: status.error ?? null, stale: false } : undefined));
    const a = toAppend(id, events);
    if (a) batches.push(filterAppend(a, VIEW_FILTERS[view]));
  }
  return readyMessages(view, infos, { runs: dirs.map((d) => ({ id: path.basename(d), dir: d })) }, batches.filter((b): b is NonNullable<typeof b> => !!b));
}

function finished(dir: string): boolean {
  try { return /"type"\s*:\s*"run_finished"/.test(fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8')); } catch { return false; }
}

async function real(runsDir: string, experiment?: string): Promise<void> {
  const all = fs.readdirSync(runsDir).map((d) => path.join(runsDir, d)).filter((d) => finished(d)).sort();
  const ofExp = all.filter((d) => !experiment || path.basename(d).startsWith(`${experiment}-`));
  const full = ofExp.find((d) => d.endsWith('-full'));
  const lora = ofExp.find((d) => /-lora-r4$/.test(d)) ?? ofExp.find((d) => /-lora-r\d+$/.test(d));
  if (!full || !lora) throw new Error(`need a finished full and LoRA run in ${runsDir} (found ${ofExp.map((d) => path.basename(d)).join(', ')})`);
  const outDir = path.join(ROOT, 'docs', 'screenshots');
  const plan: [string, ViewKind, string[], number][] = [
    ['dashboard', 'dashboard', [full], 1300],
    ['pareto', 'pareto', ofExp, 900],
    ['spectra', 'spectra', [full, lora], 1500],
  ];
  await shootRuns(plan, (name, theme) => path.join(outDir, `${name}-real-${theme}.png`));
}

/** Each [name, view, run folders, height] of `plan` in dark and light, fed the panels' own messages. */
async function shootRuns(plan: [string, ViewKind, string[], number][], file: (name: string, theme: ThemeName) => string): Promise<void> {
  const browser = await launch();
  for (const theme of ['dark', 'light'] as const) {
    for (const [name, view, dirs, height] of plan) {
      const page = await openView(browser, view, theme, 1280, height);
      await page.evaluate((j) => (window as unknown as { __deliver: (j: string) => void }).__deliver(j), toJson(realMessages(view, dirs)));
      await page.waitForTimeout(800);
      await page.screenshot({ path: file(name, theme), fullPage: true });
      console.log(`wrote ${path.relative(ROOT, file(name, theme))} from ${dirs.map((d) => path.basename(d)).join(', ')}`);
      await page.close();
    }
  }
  await browser.close();
}

/**
 * Analysis runs (issue 14): a LoRA run beside its reduce-intruders runs (Spectra), the experiment's
 * runs with the λ path (Pareto), and an analysis run's dashboard (no training curve, says so).
 * node bench/webview/run.mjs analysis <runs-dir> <experiment>
 */
async function analysisShots(runsDir: string, experiment: string): Promise<void> {
  const kindOf = (d: string): string | undefined => { try { return JSON.parse(fs.readFileSync(path.join(d, 'meta.json'), 'utf8')).kind; } catch { return undefined; } };
  const all = fs.readdirSync(runsDir).map((d) => path.join(runsDir, d)).filter((d) => finished(d) && path.basename(d).startsWith(`${experiment}-`)).sort();
  const reduced = all.filter((d) => kindOf(d) === 'analysis');
  const lora = all.find((d) => /-lora-r\d+$/.test(d));
  if (!lora || !reduced.length) throw new Error(`need a finished LoRA run and its reduce-intruders runs in ${runsDir} (found ${all.map((d) => path.basename(d)).join(', ')})`);
  const outDir = path.join(ROOT, 'docs', 'screenshots');
  const plan: [string, ViewKind, string[], number][] = [
    ['analysis-spectra', 'spectra', [lora, reduced[0]], 1500],
    ['analysis-pareto', 'pareto', all, 900],
    ['analysis-dashboard', 'dashboard', [reduced[0]], 1000],
  ];
  await shootRuns(plan, (name, theme) => path.join(outDir, `${name}-${theme}.png`));
}

/** 1M train points made in the page (shipping 50 MB of JSON would time the harness, not the view). */
const MAKE_1M = `(n) => {
  const step = new Float64Array(n), loss = new Float64Array(n), lr = new Float64Array(n), g = new Float64Array(n), t = new Float64Array(n), m = new Float64Array(n), k = new Float64Array(n);
  let s = 1;
  const r = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296);
  for (let i = 0; i < n; i++) { step[i] = i + 1; loss[i] = 1.9 + 0.5 * Math.exp(-i / 100000) + 0.1 * (r() - 0.5); lr[i] = 3e-4 * Math.min(1, i / 1000);
    g[i] = 0.5 + 0.2 * r(); t[i] = 6500 + 200 * r(); m[i] = 742; k[i] = 2048 * (i + 1); }
  loss[654321] = 9;
  return { runId: 'big', train: { step, loss, lr, grad_norm: g, tokens_per_s: t, tokens: k, memory_mb: m } };
}`;

async function bench(): Promise<void> {
  const browser = await launch();
  const results: string[] = [];
  for (let rep = 0; rep < 3; rep++) {
    const page = await openView(browser, 'dashboard', 'dark', 1280, 900);
    const r = await page.evaluate(async (make) => {
      const w = window as unknown as { __drawn: number; __drawnAt: number; __drawnAll: number; __drawnAllAt: number };
      const batch = (0, eval)(make)(1_000_000);
      const info = { id: 'big', dir: '/r', method: 'full', rank: null, lr: 3e-4, targetModules: null, totalSteps: 1_000_000, experiment: 'bench', state: 'running', error: null, stale: false, kind: 'training', reduceIntruders: null };
      const waitDrawn = (k: number): Promise<number> => new Promise((res) => { const f = (): void => { if (w.__drawn >= k) res(w.__drawnAt); else requestAnimationFrame(f); }; f(); });
      const waitAll = (k: number): Promise<number> => new Promise((res) => { const f = (): void => { if (w.__drawnAll >= k) res(w.__drawnAllAt); else setTimeout(f, 1); }; f(); });
      const base = w.__drawn;
      const t0 = performance.now();
      window.postMessage({ type: 'init', view: 'dashboard', runs: [info], restore: { runs: [] } }, '*');
      // The columns' buffers are transferred, as VS Code (≥ 1.57) hands typed arrays to a webview
      // without a JSON round trip; a structured clone here would time a copy the editor does not make.
      const cols = Object.values(batch.train) as Float64Array[];
      window.postMessage({ type: 'append', batches: [batch] }, '*', cols.map((c) => c.buffer));
      // The draw that has the data (init alone may get a frame of its own, an empty draw).
      const hasData = (): boolean => /1,000,000 points/.test(document.querySelector('.card-note')?.textContent ?? '');
      const t1 = await new Promise<number>((res) => { const f = (): void => { if (w.__drawn > base && hasData()) res(w.__drawnAt); else requestAnimationFrame(f); }; f(); });
      // Wait for the paint after that draw (the loss chart's; the small charts follow in their own task).
      await new Promise((res) => requestAnimationFrame(() => setTimeout(res, 0)));
      const firstPaint = performance.now() - t0;
      const drawOnly = t1 - t0;
      const allDrawn = (await new Promise<number>((res) => { const f = (): void => { if (w.__drawnAll > 0 && w.__drawnAllAt >= t1) res(w.__drawnAllAt); else setTimeout(f, 1); }; f(); })) - t0;
      // Live updates: 20 batches of 100 new points each, one per frame as the host sends at most 10/s.
      const costs: number[] = [], allCosts: number[] = [];
      let next = 1_000_001;
      for (let k = 0; k < 20; k++) {
        const n = 100;
        const mk = (f: (i: number) => number): Float64Array => Float64Array.from({ length: n }, (_, i) => f(i));
        const b = { runId: 'big', train: { step: mk((i) => next + i), loss: mk(() => 1.9 + 0.1 * Math.random()), lr: mk(() => 3e-4), grad_norm: mk(() => 0.5), tokens_per_s: mk(() => 6500), tokens: mk((i) => 2048 * (next + i)), memory_mb: mk(() => 742) } };
        next += n;
        const before = w.__drawn, beforeAll = w.__drawnAll;
        const s = performance.now();
        window.postMessage({ type: 'append', batches: [b] }, '*');
        await waitDrawn(before + 1);
        costs.push(w.__drawnAt - s);
        allCosts.push((await waitAll(beforeAll + 1)) - s);
        await new Promise((res) => setTimeout(res, 100));
      }
      costs.sort((a, b) => a - b); allCosts.sort((a, b) => a - b);
      const points = (document.querySelectorAll('canvas').length);
      return { firstPaint, drawOnly, allDrawn, updMedian: costs[10], updP95: costs[18], allMedian: allCosts[10], allP95: allCosts[18], canvases: points };
    }, MAKE_1M);
    results.push(JSON.stringify(r));
    console.log(`run ${rep + 1}: first paint ${r.firstPaint.toFixed(0)} ms (loss drawn ${r.drawOnly.toFixed(0)} ms, all 7 charts ${r.allDrawn.toFixed(0)} ms), update loss median ${r.updMedian.toFixed(1)} / p95 ${r.updP95.toFixed(1)} ms, all charts median ${r.allMedian.toFixed(1)} / p95 ${r.allP95.toFixed(1)} ms · loadavg ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    await page.close();
  }
  await browser.close();
}

const mode = process.argv[2] ?? 'shots';
(mode === 'bench' ? bench() : mode === 'real' ? real(process.argv[3] ?? '.finetune/runs', process.argv[4])
  : mode === 'analysis' ? analysisShots(process.argv[3] ?? '.finetune/runs', process.argv[4] ?? 'analysis-demo') : shots()).catch((e) => { console.error(e); process.exit(1); });
