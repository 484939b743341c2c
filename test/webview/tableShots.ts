/**
 * The runs table from REAL run folders in headless Chromium: the runs read by the core's RunStore,
 * scored and turned into messages by the panel's own TableFeed (src/table/tableFeed.ts), fed to the
 * built webview bundle (dist/webview/table.js) behind the panel's CSP with bench/webview's theme
 * variables. In each theme it sorts by a score (a header click), selects two rows (click,
 * Ctrl+click) and checks what the grid shows against the rows; writes docs/screenshots/table-<theme>.png
 * (and table-grouped-dark.png grouped by sweep, filtered); then a fresh page with the saved state
 * must come back with the same sort, filter and selection.
 *   node esbuild.mjs && node_modules/.bin/esbuild test/webview/tableShots.ts --bundle --platform=node \
 *     --outfile=out/tableShots.js --external:playwright-core && node out/tableShots.js RUNS_DIR [EXPERIMENT]
 * With EXPERIMENT the themed shots show that experiment's runs (as its context menu opens them);
 * the grouped shot shows every run.
 */
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { type ThemeName } from '../../bench/webview/themes';
import { launchChromium, openBundlePage } from '../../bench/webview/page';
import { RunStore, type StoredRun } from '../../src/core/runStore';
import type { HostToTable, TableScope } from '../../src/core/tableProtocol';
import { scopeTitle } from '../../src/table/scope';
import { TableFeed } from '../../src/table/tableFeed';
import { buildTable } from '../../src/core/tableColumns';
import { tableRow } from '../../src/core/tableRows';
import { synthRuns } from '../../bench/table/synth';

const ROOT = process.cwd();
export const TABLE_FAKE_API = `
  window.__sent = []; window.__state = window.__savedState;
  window.acquireVsCodeApi = () => ({
    postMessage: (m) => { window.__sent.push(m); if (m && m.type === 'ready') window.__ready = true; },
    getState: () => window.__state, setState: (s) => { window.__state = s; },
  });
  window.__deliver = (json) => { for (const m of JSON.parse(json)) window.postMessage(m, '*'); };
  window.__drawn = 0; document.addEventListener('finetunelab:table-drawn', () => { window.__drawn++; window.__drawnAt = performance.now(); });
`;

/** Variables the table's elements read that bench/webview's themes leave out (VS Code's Dark/Light Modern and HC values). */
export const TABLE_EXTRA: Record<ThemeName, string> = {
  dark: ':root{--vscode-badge-background:#616161; --vscode-badge-foreground:#f8f8f8; --vscode-input-placeholderForeground:#989898; --vscode-input-foreground:#cccccc; --vscode-input-border:#3c3c3c; --vscode-settings-textInputBackground:#313131; --vscode-settings-textInputBorder:#3c3c3c; --vscode-settings-textInputForeground:#cccccc; --vscode-list-inactiveSelectionBackground:#37373d; --vscode-list-activeSelectionForeground:#ffffff; --vscode-list-focusOutline:#0078d4; --vscode-sideBarSectionHeader-background:#181818; --vscode-testing-iconPassed:#73c991; --vscode-testing-iconFailed:#f14c4c; --vscode-menu-background:#1f1f1f; --vscode-menu-foreground:#cccccc; --vscode-menu-border:#454545; --vscode-editorWidget-border:#454545; --vscode-widget-shadow:rgba(0,0,0,0.36); --vscode-settings-checkboxForeground:#cccccc; --vscode-settings-dropdownBackground:#313131; --vscode-settings-dropdownBorder:#3c3c3c; --vscode-settings-dropdownForeground:#cccccc; --vscode-settings-dropdownListBorder:#454545;}',
  light: ':root{--vscode-badge-background:#cccccc; --vscode-badge-foreground:#3b3b3b; --vscode-input-placeholderForeground:#767676; --vscode-input-foreground:#3b3b3b; --vscode-input-border:#cecece; --vscode-settings-textInputBackground:#ffffff; --vscode-settings-textInputBorder:#cecece; --vscode-settings-textInputForeground:#3b3b3b; --vscode-list-inactiveSelectionBackground:#e4e6f1; --vscode-list-activeSelectionBackground:#0060c0; --vscode-list-activeSelectionForeground:#ffffff; --vscode-list-focusOutline:#005fb8; --vscode-sideBarSectionHeader-background:#f8f8f8; --vscode-testing-iconPassed:#388a34; --vscode-testing-iconFailed:#e51400; --vscode-menu-background:#ffffff; --vscode-menu-foreground:#3b3b3b; --vscode-menu-border:#cecece; --vscode-editorWidget-border:#c8c8c8; --vscode-widget-shadow:rgba(0,0,0,0.16); --vscode-settings-checkboxForeground:#3b3b3b; --vscode-settings-checkboxBorder:#cecece; --vscode-settings-dropdownBackground:#ffffff; --vscode-settings-dropdownBorder:#cecece; --vscode-settings-dropdownForeground:#3b3b3b; --vscode-settings-dropdownListBorder:#c8c8c8;}',
  hc: ':root{--vscode-badge-background:#000000; --vscode-badge-foreground:#ffffff; --vscode-input-foreground:#ffffff; --vscode-input-border:#6fc3df; --vscode-settings-textInputBackground:#000000; --vscode-settings-textInputBorder:#6fc3df; --vscode-settings-textInputForeground:#ffffff; --vscode-list-inactiveSelectionBackground:#000000; --vscode-list-activeSelectionForeground:#ffffff; --vscode-list-focusOutline:#f38518; --vscode-sideBarSectionHeader-background:#000000; --vscode-testing-iconPassed:#73c991; --vscode-testing-iconFailed:#f14c4c; --vscode-menu-background:#000000; --vscode-menu-foreground:#ffffff; --vscode-menu-border:#6fc3df; --vscode-editorWidget-border:#6fc3df; --vscode-settings-dropdownBackground:#000000; --vscode-settings-dropdownBorder:#6fc3df; --vscode-settings-dropdownForeground:#ffffff; --vscode-settings-dropdownListBorder:#6fc3df;}',
};

export async function openTable(browser: Browser, theme: ThemeName, savedState?: unknown, size = { width: 1400, height: 640 }): Promise<Page> {
  const initScript = `window.__savedState = ${savedState === undefined ? 'undefined' : JSON.stringify(savedState)};` + TABLE_FAKE_API;
  const page = await openBundlePage(browser, { bundle: 'table', theme, label: `table/${theme}`, initScript, extraCss: TABLE_EXTRA[theme], ...size });
  await page.waitForFunction('window.__ready === true');
  return page;
}

/** The messages the panel posts for a runs folder: its TableFeed's `init` once every run's scores are read. */
export async function tableMessages(runsDir: string, scope: TableScope = {}): Promise<HostToTable[]> {
  const runs: StoredRun[] = await new RunStore(runsDir).list();
  const feed = new TableFeed({ runs, onDidChangeRuns: () => ({ dispose: () => undefined }) }, scope);
  await feed.ready();
  const msgs: HostToTable[] = [];
  feed.attach((m) => msgs.push(m), scopeTitle(scope), true);
  feed.dispose();
  return msgs;
}

/** What the grid shows: header titles, and per rendered row its key, selection and cell texts. */
async function readGrid(page: Page): Promise<{ headers: string[]; rows: { key: string; selected: boolean; cells: string[] }[]; count: string }> {
  // A string, not a function: this file is type-checked without the DOM library.
  return page.evaluate(`({
    headers: [...document.querySelectorAll('.head .hcell .title')].map((h) => h.textContent ?? ''),
    rows: [...document.querySelectorAll('.body .row:not(.group)')]
      .sort((a, b) => Number(a.getAttribute('aria-rowindex')) - Number(b.getAttribute('aria-rowindex')))
      .map((r) => ({ key: r.dataset.key ?? '', selected: r.getAttribute('aria-selected') === 'true', cells: [...r.children].map((c) => (c.textContent ?? '').trim()) })),
    count: document.querySelector('.toolbar .count')?.textContent ?? '',
  })`);
}

/** Two frames: what a click or a message changed has been drawn. */
const drawn = (page: Page): Promise<unknown> => page.evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))');

async function clickHeader(page: Page, title: string): Promise<void> {
  await page.locator('.head .hcell', { has: page.locator('.title', { hasText: new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) }).first().click({ position: { x: 10, y: 10 } });
  await page.waitForTimeout(100);
}

async function main(): Promise<void> {
  const runsDir = path.resolve(process.argv[2] ?? '.finetune/runs');
  const experiment = process.argv[3];
  const msgs = await tableMessages(runsDir, experiment ? { experiment } : {});
  const all = experiment ? await tableMessages(runsDir) : msgs;
  const init = msgs[0];
  if (init?.type !== 'init' || init.rows.length < 3) throw new Error(`need 3 or more runs in ${runsDir} (init: ${JSON.stringify(init).slice(0, 200)})`);
  console.log(`${init.rows.length} runs, ${init.columns.length} columns (${init.columns.filter((c) => !c.hiddenByDefault).length} shown by default)`);
  const browser = await launchChromium();
  let ok = true;
  const check = (cond: boolean, what: string): void => { ok &&= cond; console.log(`  ${cond ? 'ok' : 'FAIL'}: ${what}`); };
  for (const theme of (process.env.THEMES ? process.env.THEMES.split(',') as ThemeName[] : ['dark', 'light', 'hc'] as ThemeName[])) {
    console.log(`[${theme}]`);
    const page = await openTable(browser, theme);
    await page.evaluate(`window.__deliver(${JSON.stringify(JSON.stringify(msgs))})`);
    await page.waitForFunction('window.__drawn > 0');
    await clickHeader(page, 'learning Δ');
    let g = await readGrid(page);
    const col = g.headers.indexOf('learning Δ');
    const vals = g.rows.map((r) => Number(r.cells[col].replace('−', '-').replace('+', ''))).filter((v) => Number.isFinite(v));
    check(col >= 0 && vals.length >= 3 && vals.every((v, i) => i === 0 || vals[i - 1] <= v), `sorted by learning Δ, most learning first: ${vals.join(', ')}`);
    const rowsEl = page.locator('.body .row:not(.group)');
    await rowsEl.nth(0).click({ position: { x: 60, y: 10 } });
    await rowsEl.nth(2).click({ position: { x: 60, y: 10 }, modifiers: ['Control'] });
    await drawn(page);
    g = await readGrid(page);
    check(g.rows.filter((r) => r.selected).length === 2, `two rows selected (${g.rows.filter((r) => r.selected).map((r) => r.key).join(', ')})`);
    const compare = page.getByRole('button', { name: 'Compare', exact: true });
    check((await compare.getAttribute('disabled')) === null, 'Compare is enabled with two selected');
    await compare.click();
    const sent = (await page.evaluate('window.__sent')) as { type: string; action?: string; runIds?: string[] }[];
    const action = sent.find((m) => m.type === 'action');
    check(action?.action === 'compare' && action.runIds?.length === 2, `Compare posts the two runs: ${JSON.stringify(action)}`);
    const stars = await page.locator('.body .row .star').count();
    check(stars >= 1, `${stars} frontier marks`);
    check(!sent.some((m) => m.type === 'log'), 'the webview reported no invalid message');
    const file = path.join(ROOT, 'docs', 'screenshots', `table-${theme}.png`);
    await page.screenshot({ path: file });
    console.log(`  wrote ${path.relative(ROOT, file)}`);
    if (theme === 'dark') {
      // Every run, grouped by sweep and filtered, then the same view from the saved state alone.
      await page.evaluate(`window.__deliver(${JSON.stringify(JSON.stringify(all))})`);
      await page.evaluate(`{ const s = document.querySelector('vscode-single-select[aria-label="Group rows"]'); s.value = 'sweep'; s.dispatchEvent(new Event('change')); }`);
      await page.evaluate(`{ const f = document.querySelector('vscode-textfield.filter'); f.value = 'lora'; f.dispatchEvent(new Event('input')); }`);
      await page.waitForTimeout(400);
      g = await readGrid(page);
      check(g.rows.length > 0 && g.rows.every((r) => /lora/i.test(r.cells.join(' '))), `filter "lora": ${g.rows.length} rows, all LoRA (${g.count})`);
      check((await page.locator('.body .row.group').count()) >= 1, 'grouped by sweep: group headers shown');
      await page.screenshot({ path: path.join(ROOT, 'docs', 'screenshots', 'table-grouped-dark.png') });
      // Export CSV: what is shown, in its order: the shown headers, the filtered rows, raw values.
      await page.getByRole('button', { name: 'Export CSV', exact: true }).click();
      const exp = ((await page.evaluate('window.__sent')) as { type: string; name?: string; data?: string }[]).filter((m) => m.type === 'export').at(-1);
      const lines = (exp?.data ?? '').trim().split('\n');
      check(exp?.name === 'runs.csv' && lines[0] === g.headers.join(',') && lines.length - 1 === g.rows.length && lines.slice(1).every((l) => /lora/.test(l)),
        `CSV export (${exp?.name}): ${lines.length - 1} rows, header = the shown columns (${lines[0]?.slice(0, 60)}…)`);
      await page.waitForTimeout(200);
      const state = await page.evaluate('window.__state');
      const again = await openTable(browser, theme, state);
      await again.evaluate(`window.__deliver(${JSON.stringify(JSON.stringify([all[0]]))})`);
      await again.waitForFunction('window.__drawn > 0');
      await again.waitForTimeout(200);
      const g2 = await readGrid(again);
      check(JSON.stringify(g2.rows.map((r) => [r.key, r.selected])) === JSON.stringify(g.rows.map((r) => [r.key, r.selected])) && g2.count === g.count,
        `restored from the saved state: same rows, order, selection (${g2.count})`);
      await again.close();
    }
    await page.close();
  }
  ok = (await liveAndKeyboard(browser, check)) && ok;
  await browser.close();
  if (!ok) process.exitCode = 1;
}

/**
 * 1,000 synthetic runs: from the keyboard, sort (ArrowUp to the headers, Enter) and select
 * (ArrowDown, Shift+ArrowDown); scroll to the middle; then live updates to 100 rows (new scores)
 * must keep the sort, the selection and the scroll position.
 */
async function liveAndKeyboard(browser: Browser, check: (cond: boolean, what: string) => void): Promise<boolean> {
  console.log('[live updates and keyboard, 1,000 runs]');
  let ok = true;
  const c = (cond: boolean, what: string): void => { ok &&= cond; check(cond, what); };
  const runs = synthRuns(1000);
  const { rows, columns } = buildTable(runs);
  const page = await openTable(browser, 'dark', undefined, { width: 1400, height: 700 });
  await page.evaluate(`window.__deliver(${JSON.stringify(JSON.stringify([{ type: 'init', scope: {}, title: 'Runs', columns, rows, trusted: true, loading: false }]))})`);
  await page.waitForFunction('window.__drawn > 0');
  await page.locator('.runs-grid').focus();
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowUp'); // on the first line: up to the headers (the sorted one, else the first)
  for (let i = 0; i < 12 && (await page.evaluate('document.activeElement?.querySelector(".title")?.textContent')) !== 'learning Δ'; i++) await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Enter');
  await drawn(page);
  const sortAttr = await page.evaluate('document.querySelector(".hcell[aria-sort]")?.querySelector(".title")?.textContent + " " + document.querySelector(".hcell[aria-sort]")?.getAttribute("aria-sort")');
  c(sortAttr === 'learning Δ ascending', `keyboard: Enter on a header sorts (${sortAttr})`);
  // Ctrl+ArrowRight moves the focused header's column one place right.
  const order = async (): Promise<string[]> => (await readGrid(page)).headers;
  const before = await order();
  await page.keyboard.press('Control+ArrowRight');
  await drawn(page);
  const after = await order();
  const k = before.indexOf('learning Δ');
  c(after[k + 1] === 'learning Δ' && after[k] === before[k + 1], `keyboard: Ctrl+ArrowRight moves the column (${before.slice(k, k + 2).join(', ')} → ${after.slice(k, k + 2).join(', ')})`);
  // A header's right edge resizes its column; a header dragged onto another moves its column there
  // (back at the left first: the keyboard scrolled the grid sideways to the focused header).
  await page.evaluate('document.querySelector(".runs-grid").scrollLeft = 0');
  await drawn(page);
  const grip = await page.locator('.hcell[data-col="cfg:lora.rank"] .resizer').boundingBox();
  const w0 = (await page.locator('.hcell[data-col="cfg:lora.rank"]').boundingBox())!.width;
  await page.mouse.move(grip!.x + 2, grip!.y + 5); await page.mouse.down(); await page.mouse.move(grip!.x + 62, grip!.y + 5, { steps: 5 }); await page.mouse.up();
  await drawn(page);
  await page.waitForTimeout(150); // the state is saved 100 ms after a change
  const w1 = (await page.locator('.hcell[data-col="cfg:lora.rank"]').boundingBox())!.width;
  const saved = (await page.evaluate('window.__state?.widths?.["cfg:lora.rank"]')) as number | undefined;
  c(Math.abs(w1 - w0 - 60) <= 2 && saved === Math.round(w1), `dragging the edge resizes: rank ${w0} → ${w1} px (saved ${saved})`);
  await page.locator('.hcell[data-col="cfg:train.lr"]').dragTo(page.locator('.hcell[data-col="cfg:method"]'), { targetPosition: { x: 4, y: 10 } });
  await drawn(page);
  const dragged = await order();
  c(dragged.indexOf('lr') === dragged.indexOf('method') - 1, `dragging the lr header onto method's left half puts it before method (${dragged.slice(0, 8).join(', ')})`);
  await page.keyboard.press('ArrowDown');
  await page.locator('.runs-grid').focus();
  for (let i = 0; i < 300; i++) await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Shift+ArrowDown');
  await drawn(page);
  const sel = (await page.evaluate('window.__state?.selection ?? []')) as string[];
  const g0 = await readGrid(page);
  const scrollBefore = (await page.evaluate('document.querySelector(".runs-grid").scrollTop')) as number;
  // (The line chosen before the sort moved with its run; the 300 steps start from there.)
  c(sel.length === 2 && g0.rows.filter((r) => r.selected).length === 2 && scrollBefore > 1000, `keyboard: 300 × ArrowDown then Shift+ArrowDown selects two lines and scrolls to them (scrollTop ${scrollBefore})`);
  // Live: 100 runs get new learning scores (as when their next evaluation lands).
  const updated = runs.slice(0, 100).map((r, i) => tableRow({ ...r, scores: r.scores && { ...r.scores, learning: r.scores.learning && { ...r.scores.learning, lastDelta: -2 + i / 100 } } }));
  await page.evaluate(`window.__deliver(${JSON.stringify(JSON.stringify([{ type: 'update', upsert: updated, remove: [], loading: false }]))})`);
  await drawn(page);
  const scrollAfter = (await page.evaluate('document.querySelector(".runs-grid").scrollTop')) as number;
  const selAfter = (await page.evaluate('window.__state?.selection ?? []')) as string[];
  c(scrollAfter === scrollBefore, `live update: scroll position kept (${scrollBefore} → ${scrollAfter})`);
  c(JSON.stringify(selAfter) === JSON.stringify(sel), 'live update: selection kept');
  const sortKept = (await page.evaluate('document.querySelector(".hcell[aria-sort]")?.getAttribute("data-col")')) === 'learning.delta';
  await page.evaluate('document.querySelector(".runs-grid").scrollTop = 0');
  await drawn(page);
  const top = await readGrid(page);
  const col = top.headers.indexOf('learning Δ');
  const first = top.rows.slice(0, 5).map((r) => Number(r.cells[col].replace('−', '-')));
  c(sortKept && first.every((v, i) => i === 0 || first[i - 1] <= v) && first[0] <= -1.99, `live update: still sorted, the updated runs moved to the top (${first.join(', ')})`);
  await page.close();
  return ok;
}

if (/tableShots\.js$/.test(process.argv[1] ?? '')) main().catch((e) => { console.error(e); process.exit(1); });
