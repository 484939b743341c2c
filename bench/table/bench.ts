/**
 * The runs table with 1,000 and 10,000 runs: first paint and sort time of the built webview
 * (dist/webview/table.js) in headless Chromium, behind the panel's CSP, fed the `init` message the
 * host would post (rows made by the core's own tableRow/tableColumns from synthetic runs: a sweep
 * grid of method × rank × lr × seed over several experiments, each run's scores folded from its
 * events by ScoreFold). References measured in the same page and run, so the numbers are ratios:
 *   first paint  vs  a plain <table> holding every row (what a non-virtual table costs);
 *   sort         vs  the plain <table> re-sorted by the same column (its rows re-appended) and painted;
 *   scroll       three rows further (a wheel notch) → painted, vs the plain <table> scrolled as far; a
 *                jump of a page or more → painted, vs an idle frame (rAF + task) in the same page.
 * node bench/table/run.mjs [N ...]   (default 1000 10000); results: bench/table/RESULTS.md
 */
import type { Page } from 'playwright-core';
import { launchChromium, openBundlePage } from '../webview/page';
import { buildTable } from '../../src/core/tableColumns';
import type { HostToTable } from '../../src/core/tableProtocol';
import { TABLE_EXTRA, TABLE_FAKE_API } from '../../test/webview/tableShots';
import { synthRuns } from './synth';

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1]; };

interface Result { n: number; firstPaint: number[]; plainTable: number[]; sort: number[]; plainSort: number[]; scroll: number[]; wheel: number[]; plainWheel: number[]; idle: number[]; rowsInDom: number }

async function measure(page: Page, init: HostToTable, n: number): Promise<Omit<Result, 'firstPaint' | 'plainTable'> & { firstPaint: number; plainTable: number }> {
  return page.evaluate(async ({ json, n }) => {
    const w = window as unknown as { __drawn: number };
    const frame = (): Promise<void> => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    const drawnAfter = (k: number): Promise<void> => new Promise((res) => { const f = (): void => { if (w.__drawn > k) res(); else requestAnimationFrame(f); }; f(); });
    // First paint: the host's init (structured-cloned, as postMessage does) → drawn → the frame after.
    const msg = JSON.parse(json) as { rows: { cells: Record<string, unknown> }[] };
    const t0 = performance.now();
    const before = w.__drawn;
    window.postMessage(msg, '*');
    await drawnAfter(before);
    await frame();
    const firstPaint = performance.now() - t0;
    const rowsInDom = document.querySelectorAll('.body .row').length;
    // Sort: a click on a score header → re-sorted rows drawn → painted; then the same order by Array.prototype.sort.
    const header = Array.from(document.querySelectorAll('.head .hcell')).find((h) => h.querySelector('.title')?.textContent === 'learning Δ') as HTMLElement;
    const sort: number[] = [];
    for (let k = 0; k < 4; k++) {
      const b = w.__drawn, s = performance.now();
      header.click();
      await drawnAfter(b);
      await frame();
      sort.push(performance.now() - s);
    }
    // Scroll: jumps through the list, each drawn and painted; against an idle frame (what any change costs).
    const grid = document.querySelector('.runs-grid') as HTMLElement;
    const scroll: number[] = [];
    for (let k = 1; k <= 10; k++) {
      const b = w.__drawn, s = performance.now();
      grid.scrollTop = (grid.scrollHeight - grid.clientHeight) * (k / 10);
      await drawnAfter(b);
      await frame();
      scroll.push(performance.now() - s);
    }
    // Wheel-like: three rows further each time (the rows already shown are kept, a few are filled).
    const wheel: number[] = [];
    grid.scrollTop = 0;
    await frame();
    for (let k = 1; k <= 20; k++) {
      const b = w.__drawn, s = performance.now();
      grid.scrollTop += 72;
      await drawnAfter(b);
      await frame();
      wheel.push(performance.now() - s);
    }
    const idle: number[] = [];
    for (let k = 0; k < 10; k++) { const s = performance.now(); await frame(); idle.push(performance.now() - s); }
    // Reference: the same shown columns as a plain <table> of every row, built and painted, then
    // sorted by the same column (its rows re-appended in order) and painted again.
    const rows = msg.rows as { cells: Record<string, unknown> }[];
    const cols = Array.from(document.querySelectorAll('.head .hcell')).map((h) => (h as HTMLElement).dataset.col!);
    const p0 = performance.now();
    const table = document.createElement('table');
    const body = document.createElement('tbody');
    const trs = rows.map((r) => {
      const tr = document.createElement('tr');
      for (const c of cols) { const td = document.createElement('td'); const v = r.cells[c]; td.textContent = v === undefined || v === null ? '' : String(v); tr.append(td); }
      body.append(tr);
      return { tr, v: (r.cells['learning.delta'] as number | undefined) ?? 0 };
    });
    table.append(body);
    // In a scroller over the page, the size of the grid's own.
    const box = document.createElement('div');
    box.className = 'plain-reference';
    const sheet = new CSSStyleSheet();
    sheet.replaceSync('.plain-reference { position: fixed; inset: 0; overflow: auto; z-index: 100; background: var(--vscode-editor-background); } .plain-reference td { padding: 0 8px; white-space: nowrap; height: 24px; }');
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    box.append(table);
    document.body.append(box);
    await frame();
    const plainTable = performance.now() - p0;
    const plainWheel: number[] = [];
    for (let k = 1; k <= 20; k++) { const s = performance.now(); box.scrollTop += 72; await frame(); plainWheel.push(performance.now() - s); }
    const plainSort: number[] = [];
    for (let k = 0; k < 4; k++) {
      const s = performance.now();
      trs.sort((a, b) => (k % 2 ? b.v - a.v : a.v - b.v));
      body.append(...trs.map((t) => t.tr));
      await frame();
      plainSort.push(performance.now() - s);
    }
    box.remove();
    return { n, firstPaint, plainTable, sort, plainSort, scroll, wheel, plainWheel, idle, rowsInDom };
  }, { json: JSON.stringify(init), n });
}

async function main(): Promise<void> {
  const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
  const browser = await launchChromium();
  const lines: string[] = [];
  for (const n of sizes.length ? sizes : [1000, 10_000]) {
    const runs = synthRuns(n);
    const t = Date.now();
    const { rows, columns } = buildTable(runs);
    const init: HostToTable = { type: 'init', scope: {}, title: 'Runs', columns, rows, trusted: true, loading: false };
    const hostMs = Date.now() - t;
    const results: Result = { n, firstPaint: [], plainTable: [], sort: [], plainSort: [], scroll: [], wheel: [], plainWheel: [], idle: [], rowsInDom: 0 };
    for (let rep = 0; rep < 3; rep++) {
      const page = await openBundlePage(browser, { bundle: 'table', theme: 'dark', label: `table/${n}`, initScript: `window.__savedState = undefined;${TABLE_FAKE_API}`, extraCss: TABLE_EXTRA.dark, width: 1400, height: 900 });
      await page.waitForFunction('window.__ready === true');
      const r = await measure(page, init, n);
      results.firstPaint.push(r.firstPaint); results.plainTable.push(r.plainTable);
      results.sort.push(...r.sort); results.plainSort.push(...r.plainSort); results.scroll.push(...r.scroll); results.wheel.push(...r.wheel); results.plainWheel.push(...r.plainWheel); results.idle.push(...r.idle);
      results.rowsInDom = r.rowsInDom;
      await page.close();
    }
    const fp = median(results.firstPaint), pt = median(results.plainTable), so = median(results.sort), ps = median(results.plainSort), sc = median(results.scroll), wh = median(results.wheel), pw = median(results.plainWheel), id = median(results.idle);
    const line = `${n.toLocaleString('en-US')} runs (${columns.length} columns, ${JSON.stringify(init).length >> 10} KiB init, rows+columns built on the host in ${hostMs} ms): `
      + `first paint ${fp.toFixed(0)} ms (plain <table> of every row ${pt.toFixed(0)} ms: ${(fp / pt).toFixed(2)}x), `
      + `sort ${so.toFixed(0)} ms (the plain table re-sorted ${ps.toFixed(0)} ms: ${(so / ps).toFixed(2)}x), `
      + `scroll by 3 rows painted ${wh.toFixed(0)} ms median (the plain table ${pw.toFixed(0)} ms: ${(wh / pw).toFixed(2)}x), a jump of a page or more ${sc.toFixed(0)} ms median / ${Math.max(...results.scroll).toFixed(0)} max (an idle frame ${id.toFixed(0)} ms), ${results.rowsInDom} row elements in the DOM`;
    console.log(line);
    lines.push(line);
  }
  await browser.close();
  let load = '?';
  try { load = (await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '); } catch { /* not Linux */ }
  console.log(`load average after: ${load}`);
}

if (/bench\.js$/.test(process.argv[1] ?? "")) main().catch((e) => { console.error(e); process.exit(1); });
