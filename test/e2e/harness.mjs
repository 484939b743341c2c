// The end-to-end harness: a real VS Code (code-server, from npm) with the packaged extension
// installed, driven by Debian's Chromium through playwright-core. Everything a scenario does
// goes through the UI; the disk is read only to check what a user would also find there.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, copyFileSync, rmSync } from 'node:fs';
import { join, relative, basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import { childEnv } from '../../scripts/childEnv.mjs';

export const EXTENSION_ID = 'finetune-lab.finetune-lab';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** Kills a process group we started (we spawn code-server detached: it has its own group). */
function killGroup(child, signal = 'SIGTERM') {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(-child.pid, signal); } catch { try { child.kill(signal); } catch { /* gone */ } }
}

export function listFiles(dir, pred = () => true, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    let st; try { st = statSync(p); } catch { continue; }
    if (st.isDirectory()) listFiles(p, pred, out); else if (pred(p)) out.push(p);
  }
  return out;
}

/**
 * One code-server instance: its own user-data and extensions folders, the VSIX installed first,
 * user settings written before start. `trust: false` starts it without --disable-workspace-trust.
 */
export class CodeServer {
  constructor({ tools, root, name, workspace, vsix, settings, env, trust = true }) {
    Object.assign(this, { tools, root, name, workspace, vsix, settings, env, trust });
    this.dir = join(root, name);
    this.userDataDir = join(this.dir, 'user-data');
    this.extensionsDir = join(this.dir, 'extensions');
    this.logFile = join(this.dir, 'code-server.log');
    this.child = null;
  }

  get procEnv() {
    // Without the outer npm's settings (scripts/childEnv.mjs): the extension host and the
    // trainers it starts see what a user's editor would.
    return childEnv({
      ...this.env,
      PATH: `${join(this.tools.nodeDir, 'bin')}:${process.env.PATH}`,
      // code-server reads these; keep the run hermetic.
      VSCODE_PROXY_URI: '',
      CS_DISABLE_FILE_DOWNLOADS: '1',
    });
  }

  baseArgs() {
    return [this.tools.codeServerEntry, '--user-data-dir', this.userDataDir, '--extensions-dir', this.extensionsDir,
      '--disable-telemetry', '--disable-update-check'];
  }

  installExtension() {
    mkdirSync(this.extensionsDir, { recursive: true });
    const r = spawnSync(this.tools.nodeBin, [...this.baseArgs(), '--install-extension', this.vsix], { env: this.procEnv, encoding: 'utf8', timeout: 120_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    if (r.status !== 0 || !/successfully installed|was successfully installed/i.test(out)) {
      throw new Error(`code-server --install-extension ${this.vsix} failed (exit ${r.status}):\n${out.trim()}`);
    }
    const installed = readdirSync(this.extensionsDir).filter((n) => n.startsWith(EXTENSION_ID));
    if (installed.length === 0) throw new Error(`the VSIX installed but no ${EXTENSION_ID}-* folder is in ${this.extensionsDir}`);
    this.extensionDir = join(this.extensionsDir, installed[0]);
    return out.trim();
  }

  /**
   * code-server is a remote window: machine-scoped settings (finetuneLab.pythonPath) are read from
   * the "Remote" settings (Machine/settings.json), where the Settings UI writes them there; the
   * rest from the user settings.
   */
  writeSettings() {
    for (const scope of ['User', 'Machine']) {
      const dir = join(this.userDataDir, scope);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'settings.json'), JSON.stringify(this.settings, null, 2));
    }
  }

  async start() {
    mkdirSync(this.dir, { recursive: true });
    this.writeSettings();
    this.port = await freePort();
    const args = [...this.baseArgs(), '--auth', 'none', '--bind-addr', `127.0.0.1:${this.port}`,
      ...(this.trust ? ['--disable-workspace-trust'] : []), this.workspace];
    const { openSync } = await import('node:fs');
    const fd = openSync(this.logFile, 'a');
    this.child = spawn(this.tools.nodeBin, args, { env: this.procEnv, stdio: ['ignore', fd, fd], detached: true });
    this.url = `http://127.0.0.1:${this.port}/?folder=${encodeURIComponent(this.workspace)}`;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`code-server exited with ${this.child.exitCode}: ${readFileSync(this.logFile, 'utf8').slice(-3000)}`);
      try { const r = await fetch(`http://127.0.0.1:${this.port}/healthz`); if (r.ok) return; } catch { /* not yet */ }
      await sleep(250);
    }
    throw new Error(`code-server did not answer /healthz on port ${this.port} within 60 s: ${readFileSync(this.logFile, 'utf8').slice(-3000)}`);
  }

  async stop() {
    if (!this.child) return;
    const c = this.child;
    killGroup(c, 'SIGTERM');
    for (let i = 0; i < 40 && c.exitCode === null && c.signalCode === null; i++) await sleep(100);
    killGroup(c, 'SIGKILL');
    this.child = null;
  }

  /** The extension host logs (code-server runs the extension host on the server side). */
  exthostLogs() {
    return listFiles(join(this.userDataDir, 'logs'), (p) => /exthost/i.test(p) && p.endsWith('.log'));
  }

  exthostLogText() {
    return this.exthostLogs().map((p) => `==> ${relative(this.userDataDir, p)} <==\n${readFileSync(p, 'utf8')}`).join('\n');
  }
}

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function launchBrowser(executablePath) {
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
}

/** A browser page on one code-server, with the UI moves the scenarios use. */
export class Workbench {
  constructor({ browser, server, shots }) {
    Object.assign(this, { browser, server, shots });
  }

  async open() {
    this.context = await this.browser.newContext({ viewport: { width: 1400, height: 900 } });
    this.page = await this.context.newPage();
    this.page.setDefaultTimeout(20_000);
    this.consoleErrors = [];
    this.page.on('console', (m) => { if (m.type() === 'error') this.consoleErrors.push(m.text()); });
    await this.page.goto(this.server.url);
    await this.page.waitForSelector('div.monaco-workbench', { timeout: 60_000 });
    // The workbench paints its parts a little after the root appears.
    await this.page.waitForSelector('.part.statusbar', { timeout: 30_000 });
    await sleep(1500);
  }

  async close() { try { await this.context?.close(); } catch { /* already gone */ } }

  async shot(step) { return this.shots.take(this.page, step); }

  /** F1, type a command's title, run it (the row whose label is exactly the title). */
  async command(title) {
    const p = this.page;
    const qi = await this.typeInQuickInput(`>${title}`);
    const row = qi.locator('.monaco-list-row', { has: p.locator('.label-name', { hasText: title }) }).first();
    try {
      await row.waitFor({ state: 'visible', timeout: 15_000 });
    } catch {
      const rows = await qi.locator('.monaco-list-row').allInnerTexts();
      throw new Error(`the palette has no command "${title}" (rows: ${JSON.stringify(rows.slice(0, 8))})`);
    }
    await row.click();
  }

  /** Picks an item in an open quick pick by its label. */
  async pick(label, { timeout = 15_000 } = {}) {
    const p = this.page;
    const qi = p.locator('.quick-input-widget');
    await qi.waitFor({ state: 'visible', timeout });
    const row = qi.locator('.monaco-list-row', { has: p.locator('.label-name', { hasText: label }) }).first();
    try {
      await row.waitFor({ state: 'visible', timeout });
    } catch {
      const rows = await qi.locator('.monaco-list-row').allInnerTexts();
      throw new Error(`the quick pick has no item "${label}" (items: ${JSON.stringify(rows.slice(0, 10))})`);
    }
    await row.click();
  }

  /**
   * In an open quick pick: a multi-select one (checkboxes, OK button) gets exactly `labels`
   * checked and OK; a single-select one gets the first label picked.
   */
  async pickMany(labels, { timeout = 15_000 } = {}) {
    const p = this.page;
    const qi = p.locator('.quick-input-widget');
    await qi.waitFor({ state: 'visible', timeout });
    const ok = qi.getByRole('button', { name: 'OK' });
    if (!(await ok.isVisible().catch(() => false))) return this.pick(labels[0], { timeout });
    const rows = qi.locator('.monaco-list-row');
    await rows.first().waitFor({ state: 'visible', timeout });
    const n = await rows.count();
    for (let i = 0; i < n; i++) {
      const row = rows.nth(i);
      const name = (await row.locator('.label-name').first().innerText()).trim();
      const box = row.locator('input[type=checkbox], .monaco-checkbox, [role=checkbox]').first();
      const checked = await row.getAttribute('aria-checked') === 'true' ||
        await box.evaluate((b) => b.checked === true || b.getAttribute('aria-checked') === 'true' || b.classList.contains('checked')).catch(() => false);
      const want = labels.some((l) => name.includes(l));
      if (checked !== want) await box.click();
    }
    await ok.click();
  }

  /** Answers an open input box (quick input with no list): types and presses Enter. */
  async answerInput(text) {
    const qi = this.page.locator('.quick-input-widget');
    await qi.waitFor({ state: 'visible' });
    await qi.locator('input').fill(text);
    await this.page.keyboard.press('Enter');
  }

  async quickInputVisible() { return this.page.locator('.quick-input-widget').isVisible(); }

  async quickInputText() {
    const qi = this.page.locator('.quick-input-widget');
    if (!(await qi.isVisible())) return null;
    return qi.innerText();
  }

  async dismissQuickInput() {
    if (await this.page.locator('.quick-input-widget').isVisible()) { await this.page.keyboard.press('Escape'); await sleep(200); }
  }

  /** Quick Open (F1 without '>'): opens a workspace file by name. */
  /**
   * F1, then types into the quick input. The workbench sometimes takes the input away for a moment
   * (a notification or a view taking focus makes it inert): then close it and open it again, up to
   * three times, rather than fail on the UI's timing.
   */
  async typeInQuickInput(text) {
    const p = this.page;
    const qi = p.locator('.quick-input-widget');
    let lastError;
    for (let attempt = 0; attempt < 3; attempt++) {
      await this.dismissQuickInput();
      await p.keyboard.press('F1');
      try {
        await qi.waitFor({ state: 'visible', timeout: 10_000 });
        await qi.locator('input').fill(text, { timeout: 5_000 });
        return qi;
      } catch (e) {
        lastError = e;
        await p.keyboard.press('Escape').catch(() => {});
        await sleep(500);
      }
    }
    throw lastError;
  }

  async openFile(name) {
    const p = this.page;
    const qi = await this.typeInQuickInput(name);
    const row = qi.locator('.monaco-list-row', { has: p.locator('.label-name', { hasText: name }) }).first();
    await row.waitFor({ state: 'visible', timeout: 15_000 });
    await row.click();
    await this.activeTab(name);
  }

  async activeTab(name, timeout = 15_000) {
    const tab = this.page.locator('.tabs-container .tab.active', { hasText: name });
    await tab.waitFor({ state: 'visible', timeout });
    return tab;
  }

  /** The CodeLens texts shown in the active editor. */
  async codeLenses() {
    return this.page.locator('.editor-group-container.active .monaco-editor .codelens-decoration a').allInnerTexts();
  }

  async waitForCodeLens(re, timeout = 20_000) {
    const p = this.page;
    const lens = p.locator('.editor-group-container.active .monaco-editor .codelens-decoration a', { hasText: re }).first();
    try { await lens.waitFor({ state: 'visible', timeout }); } catch {
      throw new Error(`no CodeLens matching ${re} in the active editor (CodeLenses: ${JSON.stringify(await this.codeLenses())})`);
    }
    return lens;
  }

  /** Opens the Finetune Lab view container from the activity bar (if it is not open already). */
  async openViewContainer() {
    const p = this.page;
    const title = p.locator('.part.sidebar .composite.title', { hasText: /finetune lab/i });
    if (await title.isVisible().catch(() => false)) return;
    const item = p.locator('.part.activitybar .action-item', { has: p.locator('[aria-label^="Finetune Lab"]') })
      .or(p.locator('.part.activitybar .action-item[aria-label^="Finetune Lab"]')).first();
    try { await item.waitFor({ state: 'visible', timeout: 20_000 }); } catch {
      const labels = await p.locator('.part.activitybar [aria-label]').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
      throw new Error(`no "Finetune Lab" item in the activity bar (items: ${JSON.stringify(labels)})`);
    }
    await item.click();
    await title.waitFor({ state: 'visible', timeout: 20_000 });
  }

  runsPane() {
    return this.page.locator('.part.sidebar .pane', { has: this.page.locator('.pane-header[aria-label^="Runs"]') });
  }

  /** Rows of the Runs tree: [{text, ariaLabel}] (label + description as the user reads them). */
  async runRows() {
    const rows = this.runsPane().locator('.monaco-list-row');
    const data = await rows.evaluateAll((els) => els.map((r) => {
      const label = (r.querySelector('.label-name')?.innerText ?? '').trim();
      const description = (r.querySelector('.label-description')?.innerText ?? '').trim();
      return { label, description, text: label ? `${label} ${description}`.trim() : (r.innerText || '').replace(/\s+/g, ' ').trim(), ariaLabel: r.getAttribute('aria-label') ?? '', index: r.getAttribute('data-index') };
    }));
    // A locator that finds the row again by its label (rows re-render as the tree refreshes).
    return data.map((d) => ({ ...d, locator: d.label ? rows.filter({ has: this.page.locator('.label-name', { hasText: d.label }) }).first() : rows.nth(Number(d.index) || 0) }));
  }

  /** Waits until a Runs row matches `pred` (on its text + aria-label); returns it. */
  async waitForRunRow(pred, { timeout = 60_000, what = 'a matching run' } = {}) {
    const deadline = Date.now() + timeout;
    let last = [];
    while (Date.now() < deadline) {
      last = await this.runRows();
      const hit = last.find((r) => pred(`${r.text} ${r.ariaLabel}`));
      if (hit) return hit;
      await sleep(500);
    }
    throw new Error(`the Runs view never showed ${what} within ${timeout / 1000} s (rows: ${JSON.stringify(last.map((r) => `${r.text} | ${r.ariaLabel}`))})`);
  }

  async statusBarTexts() {
    return (await this.page.locator('.part.statusbar .statusbar-item').allInnerTexts()).map((s) => s.trim()).filter(Boolean);
  }

  /** The status bar's items, read in one go (items come and go while a run trains). */
  async statusBarItems() {
    return this.page.locator('.part.statusbar .statusbar-item').evaluateAll((els) => els.map((e) => ({
      id: e.id || null,
      text: (e.innerText || '').trim(),
      aria: e.getAttribute('aria-label') ?? e.querySelector('[aria-label]')?.getAttribute('aria-label') ?? null,
    })));
  }

  /**
   * Records every distinct state of the status bar's items from now on, in the page, so a state
   * that lasts less than one poll (a quick run's progress) is still seen. Read with statusBarSeen().
   */
  async recordStatusBar() {
    await this.page.evaluate(() => {
      const seen = [];
      const keys = new Set();
      const bar = document.querySelector('.part.statusbar');
      const note = () => {
        for (const e of bar.querySelectorAll('.statusbar-item')) {
          const item = { id: e.id || null, text: (e.innerText || '').trim(), aria: e.getAttribute('aria-label') ?? e.querySelector('[aria-label]')?.getAttribute('aria-label') ?? null };
          const key = JSON.stringify(item);
          if (!keys.has(key) && keys.size < 5000) { keys.add(key); seen.push(item); }
        }
      };
      window.__statusBarObserver?.disconnect();
      window.__statusBarSeen = seen;
      window.__statusBarObserver = new MutationObserver(note);
      window.__statusBarObserver.observe(bar, { subtree: true, childList: true, characterData: true, attributes: true });
      note();
    });
  }

  /** The status bar item states recorded since recordStatusBar(). */
  async statusBarSeen() {
    return this.page.evaluate(() => window.__statusBarSeen ?? []);
  }

  /** Texts of the notification toasts on screen (and in the notification center if open). */
  async notifications() {
    return (await this.page.locator('.notifications-toasts .notification-list-item, .notifications-center .notification-list-item').allInnerTexts()).map((s) => s.replace(/\s+/g, ' ').trim());
  }

  async waitForNotification(re, timeout = 30_000) {
    const deadline = Date.now() + timeout;
    let last = [];
    while (Date.now() < deadline) {
      last = await this.notifications();
      const hit = last.find((t) => re.test(t));
      if (hit) return hit;
      await sleep(300);
    }
    throw new Error(`no notification matching ${re} within ${timeout / 1000} s (notifications: ${JSON.stringify(last)})`);
  }

  async clearNotifications() {
    await this.command('Notifications: Clear All Notifications').catch(() => {});
    await sleep(300);
  }

  /** The content frame of the webview panel whose tab title matches (the active one by default). */
  webviewFrame() {
    return this.page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
  }

  /** The frame of the visible webview (code-server keeps hidden ones around too). */
  visibleWebviewFrame() {
    return this.page.locator('iframe.webview.ready:visible').first().contentFrame().frameLocator('#active-frame');
  }

  /** Every visible webview's frame: with two editor groups, two webviews are visible at once. */
  async visibleWebviewFrames() {
    const n = await this.page.locator('iframe.webview.ready:visible').count();
    return Array.from({ length: n }, (_, i) => this.page.locator('iframe.webview.ready:visible').nth(i).contentFrame().frameLocator('#active-frame'));
  }
}

/**
 * Reads a canvas's pixels inside a webview: how many are painted, and how many are "coloured"
 * (saturated: a data series, not grey axes, grid or text). A blank or axes-only chart has ~0 of
 * the latter. `x` extent of coloured pixels too, to see a line grow.
 */
export async function canvasStats(canvasLocator) {
  return canvasLocator.evaluate((c) => {
    const w = c.width, h = c.height;
    const out = { w, h, painted: 0, coloured: 0, green: 0, hueFamilies: 0, minX: null, maxX: null };
    if (!w || !h) return out;
    const d = c.getContext('2d').getImageData(0, 0, w, h).data;
    let minX = Infinity, maxX = -Infinity;
    const fam = new Map();
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] < 16) continue;
      out.painted++;
      const r = d[i], g = d[i + 1], b = d[i + 2];
      const mx = Math.max(r, g, b), mn = Math.min(r, g, b);
      if (mx - mn <= 60) continue;
      out.coloured++;
      const x = (i / 4) % w;
      if (x < minX) minX = x; if (x > maxX) maxX = x;
      // Hue in 6 families (red, yellow/orange, green, cyan, blue, magenta).
      let hue;
      if (mx === r) hue = ((g - b) / (mx - mn) + 6) % 6; else if (mx === g) hue = (b - r) / (mx - mn) + 2; else hue = (r - g) / (mx - mn) + 4;
      const f = Math.round(hue) % 6;
      fam.set(f, (fam.get(f) ?? 0) + 1);
      if (f === 2) out.green++;
    }
    out.hueFamilies = [...fam.values()].filter((n) => n >= 30).length;
    out.minX = Number.isFinite(minX) ? minX : null; out.maxX = Number.isFinite(maxX) ? maxX : null;
    return out;
  });
}

/** Screenshots: one PNG per step into test-results/e2e/, numbered in order. */
export class Shots {
  constructor(dir) { this.dir = dir; this.n = 0; this.scenario = 'setup'; this.files = []; mkdirSync(dir, { recursive: true }); }
  async take(page, step) {
    const safe = `${String(++this.n).padStart(3, '0')}-${this.scenario}-${step}`.replace(/[^A-Za-z0-9_.-]+/g, '-').slice(0, 120);
    const file = join(this.dir, `${safe}.png`);
    try { await page.screenshot({ path: file }); this.files.push(file); } catch (e) { process.stderr.write(`[e2e] screenshot ${safe} failed: ${e.message}\n`); }
    return file;
  }
}

/** Copies a server's logs (extension host, code-server, run train.logs) next to the screenshots. */
export function saveLogs(server, destDir, tag) {
  mkdirSync(destDir, { recursive: true });
  const saved = [];
  for (const p of [...server.exthostLogs(), server.logFile]) {
    if (!existsSync(p)) continue;
    const dst = join(destDir, `${tag}-${basename(join(p, '..'))}-${basename(p)}`);
    copyFileSync(p, dst); saved.push(dst);
  }
  for (const p of listFiles(join(server.workspace, '.finetune'), (f) => f.endsWith('train.log') || f.endsWith('status.json'))) {
    const dst = join(destDir, `${tag}-${basename(join(p, '..'))}-${basename(p)}`);
    copyFileSync(p, dst); saved.push(dst);
  }
  return saved;
}

export function rmrf(p) { rmSync(p, { recursive: true, force: true }); }
