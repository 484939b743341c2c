// The scenarios of issue 7, each as a user does it: palette, CodeLens, the Runs view, its
// context menu, webviews. What is asserted is what the user sees; the run folder on disk is read
// only to confirm what the UI claims (a checkpoint exists, the trainer's pid survived a reload).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EXTENSION_ID, canvasStats } from './harness.mjs';
import { assert } from './runner.mjs';
import { FILES, FORM_FILE } from './fixtures.mjs';

const STATES = /\b(queued|running|completed|failed|stopped)\b/i;

export function runsDir(ws) { return join(ws, '.finetune', 'runs'); }

export function runFolders(ws, prefix) {
  const d = runsDir(ws);
  return existsSync(d) ? readdirSync(d).filter((n) => n.startsWith(prefix)).sort() : [];
}

export function readStatus(ws, id) {
  try { return JSON.parse(readFileSync(join(runsDir(ws), id, 'status.json'), 'utf8')); } catch { return null; }
}

export function trainLogTail(ws, id, n = 1500) {
  const p = join(runsDir(ws), id, 'train.log');
  return existsSync(p) ? readFileSync(p, 'utf8').slice(-n) : '(no train.log)';
}

export function alive(pid) { try { process.kill(pid, 0); return true; } catch { return false; } }

/** The run id shown in a Runs row for an experiment name (rows read "<id> <description>"). */
export function idFrom(row, name) {
  if (row.label && row.label.startsWith(name)) return row.label;
  const m = `${row.text} ${row.ariaLabel}`.match(new RegExp(`\\b(${name}-\\d{8}-\\d{6}-[A-Za-z0-9._-]+?)(?=\\s|$)`));
  return m ? m[1] : null;
}

/** The Runs rows that are runs (label = run id) of an experiment name, or the row of one run id. */
export async function runRowsOf(wb, name) {
  return (await wb.runRows()).filter((r) => r.label.startsWith(name) && /-\d{8}-\d{6}-/.test(r.label));
}

/** Right-click a Runs row and choose a context-menu item by its label. */
export async function contextMenu(wb, row, label, shot) {
  await row.locator.click({ button: 'right' });
  const item = wb.page.locator('.monaco-menu .action-item', { hasText: new RegExp(`^\\s*${label}\\s*$`) }).first();
  try { await item.waitFor({ state: 'visible', timeout: 10_000 }); } catch {
    const items = await wb.page.locator('.monaco-menu .action-item').allInnerTexts();
    throw new Error(`the context menu of ${row.label} has no "${label}" (items: ${JSON.stringify(items)})`);
  }
  if (shot) await wb.shot(shot);
  // code-server's menu sometimes ignores a click that lands while it is still laying out (seen in
  // CI: the menu stayed open, the item highlighted). Click again, then Enter on the highlighted item.
  const menu = wb.page.locator('.monaco-menu').first();
  for (let attempt = 0; attempt < 3; attempt++) {
    if (attempt < 2) await item.click().catch(() => {}); else await wb.page.keyboard.press('Enter');
    try { await menu.waitFor({ state: 'hidden', timeout: 2_000 }); return; } catch { /* still open: try again */ }
  }
  throw new Error(`the context menu of ${row.label} stayed open after choosing "${label}"`);
}

/** Clicks the Start Run CodeLens of the active experiment file. */
export async function startFromCodeLens(wb) {
  const lens = await wb.waitForCodeLens(/Start/);
  await lens.click();
}

/** Waits for a run of `name` to reach `state` in the Runs view; fails early if it failed. */
export async function waitRunState(wb, ws, name, state, timeout) {
  const deadline = Date.now() + timeout;
  let rows = [];
  while (Date.now() < deadline) {
    rows = await runRowsOf(wb, name);
    const hit = rows.find((r) => new RegExp(`\\b${state}\\b`, 'i').test(`${r.text} ${r.ariaLabel}`));
    if (hit) return { row: hit, id: idFrom(hit, name) };
    const failed = rows.find((r) => /\bfailed\b/i.test(`${r.text} ${r.ariaLabel}`) && state !== 'failed');
    if (failed) {
      const id = idFrom(failed, name) ?? runFolders(ws, name).at(-1);
      throw new Error(`run ${id ?? name} failed instead of becoming ${state}: ${JSON.stringify(readStatus(ws, id))}\ntrain.log tail:\n${trainLogTail(ws, id)}`);
    }
    await sleep(400);
  }
  const id = runFolders(ws, name).at(-1);
  throw new Error(`run ${name} never showed "${state}" in the Runs view within ${timeout / 1000} s (rows: ${JSON.stringify(rows.map((r) => `${r.text} | ${r.ariaLabel}`))}; status.json: ${JSON.stringify(id && readStatus(ws, id))})${id ? `\ntrain.log tail:\n${trainLogTail(ws, id)}` : ''}`);
}

/** Opens a run's dashboard the way a user does: click its row in the Runs view. */
export async function openDashboard(wb, row) {
  await row.locator.click();
  await wb.page.locator('iframe.webview.ready').first().waitFor({ state: 'attached', timeout: 30_000 });
}

/**
 * Reads one chart card in the visible webview as a user sees it: its canvas (found by its
 * accessible name, the card title), the card's summary note, and the canvas pixels. If the
 * webview also exposes `data-series` (JSON of its datasets) that is returned too.
 */
async function readCard(wb, title, { timeout = 30_000 } = {}) {
  // The chart may be in any visible webview (the Pareto and spectra panels can sit side by side).
  const deadline = Date.now() + timeout;
  let canvas;
  while (!canvas) {
    for (const frame of await wb.visibleWebviewFrames()) {
      const c = frame.locator(`canvas[aria-label="${title}"]`).first();
      if (await c.isVisible().catch(() => false)) { canvas = c; break; }
    }
    if (canvas) break;
    if (Date.now() > deadline) {
      const found = [];
      for (const frame of await wb.visibleWebviewFrames()) {
        found.push(await frame.locator('canvas').evaluateAll((cs) => cs.map((c) => c.getAttribute('aria-label'))).catch((e) => `unreadable: ${e.message}`));
      }
      throw new Error(`no visible chart "${title}" in the visible webviews (charts: ${JSON.stringify(found)})`);
    }
    await sleep(250);
  }
  const note = await canvas.evaluate((c) => c.closest('section')?.querySelector('.card-note')?.textContent ?? '');
  const raw = await canvas.getAttribute('data-series');
  let series = null;
  try { series = raw ? JSON.parse(raw) : null; } catch { series = null; }
  const pixels = await canvasStats(canvas);
  return { title, note: note.trim(), series, pixels };
}

export async function waitCard(wb, title, pred, what, timeout = 60_000) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try { last = await readCard(wb, title, { timeout: 5_000 }); if (pred(last)) return last; } catch (e) { last = { error: e.message }; }
    await sleep(500);
  }
  throw new Error(`chart "${title}": ${what} not seen within ${timeout / 1000} s (last: ${JSON.stringify(last)})`);
}

const num = (re, t) => { const m = (t ?? '').match(re); return m ? Number(m[1].replace(/[,\u202f ]/g, '')) : null; };
/** Loss points as the chart's note says ("… · 12 points"), or from data-series when present. */
export const lossPoints = (c) => c.series?.length ? Math.max(0, ...c.series.filter((d) => /loss/i.test(d.label ?? '')).map((d) => d.points ?? 0)) : (num(/([\d,\u202f ]+) points/, c.note) ?? 0);
/** Not blank: a data series drawn in colour (axes, grid and text are grey). */
export const notBlank = (px) => px.coloured >= 30;

/** Polls `read` until `pred` holds; fails naming `what` and the last value read. */
export async function until(what, read, pred, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await read(); if (pred(last)) return last; } catch (e) { last = `(unreadable: ${e.message.split('\n')[0]})`; }
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${timeout / 1000} s (last: ${JSON.stringify(last)})`);
    await sleep(250);
  }
}

/** The one text editor visible in the editor area (Monaco), located for clicks. */
function textEditor(wb) {
  return wb.page.locator('.part.editor .editor-group-container .monaco-editor:not(.mini):visible').first();
}

/** The text editor's content as the user sees it: Monaco's rendered lines, in order. */
async function editorText(wb) {
  return textEditor(wb).locator('.view-lines').first().evaluate((vl) => [...vl.querySelectorAll('.view-line')]
    .map((l) => [parseFloat(l.style.top) || 0, l.textContent.replace(/\u00a0/g, ' ')])
    .sort((a, b) => a[0] - b[0]).map(([, t]) => t).join('\n'));
}

/** Puts the caret in the text editor by clicking a line the user can see (`text` is on it), then
 *  goes to the file's start so that every line is rendered again (editorText reads the view). */
async function clickEditorLine(wb, text) {
  // The middle of the line's last token, not a corner of the line: once a CodeLens had scrolled the
  // editor by a line, a click at the top line's corner landed on the editor's scroll shadow (a CI
  // flake), and clicking lower in the line scrolled the first line out of the view.
  const line = textEditor(wb).locator('.view-line', { hasText: text }).first();
  await line.locator('span > span').last().click();
  await until('the text editor focused', () => wb.page.evaluate(() => Boolean(document.activeElement?.closest('.part.editor .monaco-editor:not(.mini)'))), Boolean, 10_000);
  await wb.page.keyboard.press('Control+Home');
}

/** The visible webview that is the Experiment Form. */
async function formFrame(wb, timeout = 30_000) {
  return until('a visible webview with the Experiment Form', async () => {
    for (const f of await wb.visibleWebviewFrames()) if (await f.locator('main#form').count()) return f;
    return null;
  }, Boolean, timeout);
}

/** A form control as assistive technology (and Playwright's role query) names it, and its value. */
const formBox = (frame, name) => frame.getByRole('textbox', { name, exact: true });
const formValue = (frame, name) => formBox(frame, name).inputValue({ timeout: 2_000 });

/** Types into a form text field the way a user does: click, select what is there, type. */
async function typeInForm(wb, frame, name, text) {
  const box = formBox(frame, name);
  await box.click();
  await box.selectText();
  await wb.page.keyboard.type(text, { delay: 30 });
}

/** Sets a number setting in the Settings editor (user scope): search for it, type the value. */
async function setNumberSetting(wb, id, value) {
  await wb.command('Preferences: Open User Settings');
  const search = wb.page.locator('.settings-editor .search-container .monaco-editor').first();
  await search.waitFor({ state: 'visible', timeout: 20_000 });
  await search.click();
  await wb.page.keyboard.press('Control+a');
  await wb.page.keyboard.type(id);
  const input = wb.page.locator('.settings-editor .setting-item-contents', { hasText: /Memory Limit Gi B|memoryLimitGiB/i }).locator('input').first();
  await input.waitFor({ state: 'visible', timeout: 20_000 });
  await input.fill(String(value));
  await input.press('Tab');
  await sleep(1500); // the Settings editor writes after a short delay
}

export function defineScenarios(runner) {
  runner.scenario('extension activates without errors; the Finetune Lab view container is there', { timeout: 90_000 }, async ({ wb, server }) => {
    await wb.openViewContainer();
    await wb.shot('view-container');
    // The workspace holds *.finetune.yaml files: workspaceContains activates the extension.
    // Wait for the line that says so (the log names the extension earlier, in the list of
    // extensions, and other extensions' activations match /activat/ before ours is logged).
    const activationLines = (text) => text.split('\n').filter((l) => l.includes(EXTENSION_ID) && /_doActivateExtension|activat/i.test(l));
    const deadline = Date.now() + 45_000;
    let log = '';
    while (Date.now() < deadline) {
      log = server.exthostLogText();
      if (activationLines(log).length > 0) break;
      await sleep(500);
    }
    assert(server.exthostLogs().length > 0, `no extension host log under ${server.userDataDir}/logs`);
    const lines = log.split('\n');
    const activated = activationLines(log);
    assert(activated.length > 0, `the extension host log never mentions activating ${EXTENSION_ID}:\n${log.slice(-3000)}`);
    // Errors attributed to this extension: its id, its command/view ids, or its install folder.
    const ours = (l) => l.includes(EXTENSION_ID) || /finetuneLab\./.test(l) || (server.extensionDir && l.includes(server.extensionDir));
    // An error entry is its [error] line and the stack lines under it.
    const entryAt = (i) => { const out = [lines[i]]; for (let j = i + 1; j < lines.length && !/^\d{4}-\d\d-\d\d /.test(lines[j]); j++) out.push(lines[j]); return out.join('\n'); };
    const bad = lines.map((l, i) => [l, entryAt(i)])
      .filter(([l, entry]) => (/\[error\]/i.test(l) || /activating extension .* failed/i.test(l)) && ours(entry)).map(([l]) => l);
    assert(bad.length === 0, `errors from the extension in the extension host log:\n${bad.join('\n')}`);
    const title = await wb.page.locator('.part.sidebar .composite.title').innerText();
    assert(/finetune lab/i.test(title) && /runs/i.test(title), `the side bar shows "${title}", not the Finetune Lab container's Runs view`);
    assert(await wb.runsPane().locator('.pane-body').isVisible(), 'the Runs view body is not visible');
  });

  runner.scenario('the walkthrough opens with its four steps; the last links the Pareto, spectra and playground views', { timeout: 90_000 }, async ({ wb }) => {
    await wb.command('Welcome: Open Walkthrough...');
    await wb.pick('Get started with Finetune Lab');
    const want = ['Check the Python environment', 'Create an experiment', 'Start the run and watch it', 'Compare LoRA and full finetuning'];
    const titles = await until('the walkthrough\'s step titles', async () => (await wb.page.locator('.getting-started-step .step-title').allInnerTexts()).map((t) => t.trim()).filter(Boolean), (t) => want.every((w) => t.includes(w)), 30_000);
    assert(JSON.stringify(titles.filter((t) => want.includes(t))) === JSON.stringify(want), `steps in order: ${JSON.stringify(titles)}`);
    await wb.page.locator('.getting-started-step', { hasText: want[3] }).first().click();
    const step = await until('the last step expanded with its three links', () => wb.page.locator('.getting-started-step.expanded').first().innerText(), (t) => /Open Pareto Plot/.test(t) && /Open Spectra/.test(t) && /Open Playground/.test(t), 15_000);
    assert(step.includes('Learning vs forgetting'), `the step reads: ${step}`);
    // Its media (media/walkthrough/compare.md) renders beside the steps.
    await until('the step\'s markdown', async () => {
      for (const f of await wb.visibleWebviewFrames()) { const t = await f.locator('body').innerText().catch(() => ''); if (/Read the trade-off/.test(t)) return t; }
      return '';
    }, (t) => /Open Playground/.test(t), 20_000);
    await wb.shot('walkthrough');
    await wb.command('View: Close All Editors');
  });

  runner.scenario('palette → New Experiment → LoRA creates and opens the file, CodeLens visible', { timeout: 90_000 }, async ({ wb, ws }) => {
    const before = new Set(readdirSync(ws));
    await wb.command('Finetune Lab: New Experiment');
    await wb.pick('LoRA');
    await wb.shot('picked-lora');
    // Any further questions (model, data, evaluations, name): take the first offered answer (the
    // evaluations' multi-select: its defaults, OK), or type a name.
    for (let i = 0; i < 7; i++) {
      await sleep(700);
      if (!(await wb.quickInputVisible())) break;
      const ok = wb.page.locator('.quick-input-widget').getByRole('button', { name: 'OK' });
      if (await ok.isVisible().catch(() => false)) { await ok.click(); continue; }
      const rows = wb.page.locator('.quick-input-widget .monaco-list-row');
      if ((await rows.count()) > 0) {
        const tiny = rows.filter({ hasText: 'builtin:tiny' }).first();
        await ((await tiny.count()) ? tiny.click() : rows.first().click());
      } else {
        await wb.answerInput('e2e-new');
      }
    }
    const tab = wb.page.locator('.tabs-container .tab.active', { hasText: /\.finetune\.yaml/ });
    await tab.waitFor({ state: 'visible', timeout: 20_000 });
    const created = readdirSync(ws).filter((n) => !before.has(n) && n.endsWith('.finetune.yaml'));
    assert(created.length === 1, `expected one new *.finetune.yaml in the workspace, found ${JSON.stringify(created)}`);
    const text = readFileSync(join(ws, created[0]), 'utf8');
    assert(/^method:\s*lora\b/m.test(text), `the new file is not a LoRA experiment:\n${text}`);
    assert(/type: kl_to_base/.test(text) && /type: loss/.test(text), `the default evaluations (held-out losses, KL to the base) are not in the file:\n${text}`);
    await wb.waitForCodeLens(/Start/);
    await wb.shot('new-experiment-codelens');
  });

  runner.scenario('Experiment Form: edits go to the YAML (comments kept), YAML edits and undo come back, a bad value shows its error', { timeout: 240_000 }, async ({ wb, ws }) => {
    const file = 'form-lora.finetune.yaml';
    const onDisk = () => readFileSync(join(ws, file), 'utf8');
    const withLine = (text, from, to) => { assert(text.includes(from), `fixture has no "${from}"`); return text.replace(from, to); };
    const rank8 = '  rank: 8  # the paper: 256 where memory allows';
    const rankTo = (r) => `  rank: ${r}  # the paper: 256 where memory allows`;
    await wb.command('View: Close All Editor Groups');
    // The text on the left, the form on the right: split, then the editor title's form button.
    await wb.openFile(file);
    await until('the experiment file in the text editor', () => editorText(wb), (t) => t === FORM_FILE);
    await wb.command('View: Split Editor Right');
    await until('two editor groups', () => wb.page.locator('.part.editor .editor-group-container').count(), (n) => n === 2);
    const formButton = wb.page.locator('.editor-group-container.active .editor-actions').getByRole('button', { name: /Open Experiment Form/ }).first();
    try { await formButton.waitFor({ state: 'visible', timeout: 15_000 }); } catch {
      const actions = await wb.page.locator('.editor-group-container.active .editor-actions [aria-label]').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
      throw new Error(`the editor title of ${file} has no "Open Experiment Form" button (actions: ${JSON.stringify(actions)})`);
    }
    await formButton.click();
    const form = await formFrame(wb);
    await until('the form showing lora.rank 8 and train.steps 300', async () => [await formValue(form, 'Rank r'), await formValue(form, 'Steps')], ([r, s]) => r === '8' && s === '300');
    const title = await form.getByRole('heading', { level: 1 }).innerText();
    assert(title.includes('e2e-form'), `the form's title is "${title}", not the experiment's name`);
    await wb.shot('form-opened');

    // 1. The form → the YAML: only the value changes; comments, key order, layout stay.
    await typeInForm(wb, form, 'Rank r', '32');
    const afterForm = withLine(FORM_FILE, rank8, rankTo(32));
    await until('the text editor showing rank: 32 with the rest of the file untouched', () => editorText(wb), (t) => t === afterForm);
    // The form's advice follows the new value (the rank lint was about rank 8).
    const rankRow = form.locator('.row', { has: formBox(form, 'Rank r') });
    await until('the advice beside Rank about rank 32, not 8', () => rankRow.locator('.diag').innerText({ timeout: 2_000 }), (t) => /\brank 32\b/.test(t) && !/\brank 8\b/.test(t));
    await wb.shot('form-edit-in-yaml');
    // Saved by the user (Ctrl+S in the text), the file on disk is the same text.
    await clickEditorLine(wb, 'name: e2e-form');
    await wb.page.keyboard.press('Control+s');
    await until(`${file} on disk after saving`, onDisk, (t) => t === afterForm);

    // 2. Undo in the text editor takes the form's edit back, in the text and in the form.
    await clickEditorLine(wb, 'name: e2e-form');
    await wb.page.keyboard.press('Control+z');
    await until('the text editor back to rank: 8 after one Ctrl+Z', () => editorText(wb), (t) => t === FORM_FILE);
    await until('the form back to rank 8 after the undo', () => formValue(form, 'Rank r'), (v) => v === '8');
    await wb.shot('undo');

    // 3. The YAML → the form: type a new step count in the text.
    const stepsLine = FORM_FILE.split('\n').indexOf('  steps: 300') + 1;
    await wb.typeInQuickInput(`:${stepsLine}`);
    await wb.page.keyboard.press('Enter');
    await until('the quick input closed', () => wb.quickInputVisible(), (v) => !v, 5_000);
    await wb.page.keyboard.press('End');
    await wb.page.keyboard.press('Control+Shift+ArrowLeft');
    await wb.page.keyboard.type('450', { delay: 30 });
    const afterText = withLine(FORM_FILE, '  steps: 300', '  steps: 450');
    await until('the text editor showing steps: 450', () => editorText(wb), (t) => t === afterText);
    await until('the form showing the step count typed in the text', () => formValue(form, 'Steps'), (v) => v === '450');
    await wb.shot('yaml-edit-in-form');

    // 4. A value the schema refuses: the form says why beside the field and in its problem list,
    //    Start is off; the text holds what was typed (a number, comment kept) and nothing is saved.
    const saved = onDisk();
    await typeInForm(wb, form, 'Rank r', '0');
    const fieldError = await until('the error beside the Rank field', () => rankRow.locator('.diag.error').innerText({ timeout: 2_000 }), (t) => /lora\.rank must be an integer ≥ 1/.test(t));
    const listed = await form.getByRole('list', { name: 'Problems' }).locator('li.error').allInnerTexts();
    assert(listed.some((t) => /lora\.rank/.test(t)), `the form's problem list does not name lora.rank (items: ${JSON.stringify(listed)})`);
    const start = form.locator('vscode-button', { hasText: /^Start (run|sweep)/ }).first();
    assert(await start.evaluate((b) => b.hasAttribute('disabled')), 'the form\'s Start button is enabled while lora.rank is invalid');
    await until('the text editor showing rank: 0 (as typed, comment kept)', () => editorText(wb), (t) => t === withLine(afterText, rank8, rankTo(0)));
    await wb.shot('invalid-rank');
    assert(onDisk() === saved, `the form saved ${file} by itself:\n${onDisk()}`);
    console.log(`      (the form's error: "${fieldError}")`);

    // Undo puts the valid rank back and the error goes.
    await clickEditorLine(wb, 'name: e2e-form');
    await wb.page.keyboard.press('Control+z');
    await until('the text editor back to rank: 8', () => editorText(wb), (t) => t === afterText);
    await until('the form back to rank 8, without an error', async () => [await formValue(form, 'Rank r'), await rankRow.locator('.diag.error').count()], ([v, n]) => v === '8' && n === 0);
    await wb.command('File: Revert File');
    await wb.command('View: Close All Editor Groups');
  });

  runner.scenario('Start Run: the run appears, runs, completes; the status bar shows progress', { timeout: 420_000 }, async ({ wb, ws, state }) => {
    await wb.openFile('quick-lora.finetune.yaml');
    await wb.recordStatusBar();
    await startFromCodeLens(wb);
    await wb.openViewContainer();
    await wb.waitForRunRow((t) => /e2e-lora-\d{8}-\d{6}-/.test(t) && STATES.test(t), { timeout: 30_000, what: 'a run of e2e-lora with its state' });
    await wb.shot('run-listed');
    // While it trains, the status bar shows its progress (step N/M or a percentage).
    let progress = null, sawRunning = false;
    const deadline = Date.now() + 360_000;
    while (Date.now() < deadline) {
      const rows = await runRowsOf(wb, 'e2e-lora');
      const t = rows.map((r) => `${r.text} ${r.ariaLabel}`).join(' ');
      if (/\brunning\b/i.test(t)) sawRunning = true;
      if (!progress) {
        // Progress means a step done: "N/M" with N ≥ 1 (or a percentage above 0). Every state the
        // status bar had is recorded in the page: a quick run can pass its steps between two polls.
        const isProgress = (it) => /\b[1-9]\d*\s*\/\s*\d+|\b[1-9]\d*\s*%/.test(`${it.text} ${it.aria ?? ''}`) && /lora|full|finetune|step|train/i.test(`${it.text} ${it.aria ?? ''} ${it.id ?? ''}`);
        const live = (await wb.statusBarItems()).find(isProgress);
        if (live) await wb.shot('status-bar-progress');
        progress = live ?? (await wb.statusBarSeen()).find(isProgress) ?? null;
      }
      if (/\b(completed|failed|stopped)\b/i.test(t)) break;
      await sleep(250);
    }
    const done = await waitRunState(wb, ws, 'e2e-lora', 'completed', 5_000);
    await wb.shot('run-completed');
    assert(sawRunning, 'the run never showed "running" in the Runs view before it ended');
    if (!progress) {
      const ours = (await wb.statusBarSeen()).filter((it) => /finetune|lora|full/i.test(`${it.id ?? ''} ${it.text}`)).map((it) => it.text);
      assert(false, `the status bar never showed the run's progress (step N/M with N ≥ 1, or %) while it trained (its Finetune Lab states: ${JSON.stringify(ours.slice(-8))})`);
    }
    assert(done.id, `could not read the run id from the row "${done.row.text}"`);
    const st = readStatus(ws, done.id);
    assert(st?.state === 'completed', `status.json of ${done.id} says ${JSON.stringify(st)}`);
    state.loraRun = done;
  });

  runner.scenario('the dashboard opens and its loss chart has points', { needs: ['Start Run: the run appears, runs, completes; the status bar shows progress'], timeout: 90_000 }, async ({ wb, state }) => {
    await wb.openViewContainer();
    const row = await wb.waitForRunRow((t) => t.includes(state.loraRun.id), { what: state.loraRun.id });
    await openDashboard(wb, row);
    const chart = await waitCard(wb, 'Training loss', (c) => lossPoints(c) >= 5 && notBlank(c.pixels), 'a loss series with ≥5 points drawn on a non-blank canvas');
    await wb.shot('dashboard-loss');
    assert(lossPoints(chart) >= 5, `loss chart has ${lossPoints(chart)} points`);
  });

  runner.scenario('LoRA + full completed: Pareto shows two paths and a frontier; spectra shows rank90 bars and the LoRA line', { needs: ['Start Run: the run appears, runs, completes; the status bar shows progress'], timeout: 420_000 }, async ({ wb, ws, state }) => {
    await wb.openFile('quick-full.finetune.yaml');
    await startFromCodeLens(wb);
    await wb.openViewContainer();
    state.fullRun = await waitRunState(wb, ws, 'e2e-full', 'completed', 360_000);
    await wb.shot('full-completed');

    await wb.command('Finetune Lab: Open Pareto Plot');
    // Two runs' paths (two colours on the canvas) and the frontier ("2 runs · 6 points · frontier 5 points").
    const twoPaths = (c) => c.series?.length
      ? c.series.filter((d) => d.kind === 'path' && d.points >= 1).length >= 2
      : (num(/(\d+) runs?/, c.note) ?? 0) >= 2 && c.pixels.hueFamilies >= 2;
    const frontier = (c) => c.series?.length ? c.series.some((d) => d.kind === 'frontier' && d.points >= 1) : (num(/frontier (\d+) points?/, c.note) ?? 0) >= 1;
    const pareto = await waitCard(wb, 'Each run is a path through its evaluations (bigger points = later steps)', (c) => twoPaths(c) && frontier(c) && notBlank(c.pixels), 'two run paths in two colours and a frontier, drawn');
    await wb.shot('pareto');
    assert(twoPaths(pareto) && frontier(pareto), `pareto: ${JSON.stringify(pareto)}`);
    // The axes are the user's pick: one picker per role, on the aggregate until changed.
    const pickers = await until('the Pareto view\'s two axis pickers', async () => {
      for (const f of await wb.visibleWebviewFrames()) {
        const found = await f.locator('.axis-picker').evaluateAll((els) => els.map((e) => `${e.getAttribute('aria-label')}=${e.value}`)).catch(() => []);
        if (found.length) return found;
      }
      return [];
    }, (v) => v.length === 2);
    assert(pickers.join() === 'Learning axis (y)=aggregate,Forgetting axis (x)=aggregate', `pareto axis pickers: ${JSON.stringify(pickers)}`);

    // The LoRA run's spectra (its rank is the reference line): its row's context menu → Open Spectra.
    await wb.openViewContainer();
    const loraRow = await wb.waitForRunRow((t) => t.includes(state.loraRun.id), { what: state.loraRun.id });
    await contextMenu(wb, loraRow, 'Open Spectra');
    await sleep(800);
    if (await wb.quickInputVisible()) await wb.pickMany([state.loraRun.id]);
    // rank90 bars per layer and the LoRA rank drawn as a reference line (green, labelled on the canvas).
    const bars = (c) => c.series?.length ? c.series.some((d) => d.kind === 'bar' && d.points >= 1) : c.pixels.coloured >= 200;
    const refLine = (c) => c.series?.length ? c.series.some((d) => d.kind === 'reference') : c.pixels.green >= 40;
    const spectra = await waitCard(wb, 'rank90 per layer', (c) => bars(c) && refLine(c) && notBlank(c.pixels), 'rank90 bars and a LoRA-rank reference line, drawn');
    await wb.shot('spectra');
    assert(bars(spectra) && refLine(spectra), `spectra: ${JSON.stringify(spectra)}`);
  });

  runner.scenario('Playground: Open Playground on a finished run exports it to ONNX, then base and LoRA generate side by side', { needs: ['Start Run: the run appears, runs, completes; the status bar shows progress'], timeout: 420_000 }, async ({ wb, ws, state }) => {
    await wb.openViewContainer();
    const row = await wb.waitForRunRow((t) => t.includes(state.loraRun.id), { what: state.loraRun.id });
    await contextMenu(wb, row, 'Open Playground');
    // The run has checkpoints but no export: the playground offers to export first.
    const offer = wb.page.locator('.notifications-toasts .notification-list-item', { hasText: /no ONNX export yet/ }).first();
    await offer.waitFor({ state: 'visible', timeout: 30_000 });
    await wb.shot('playground-offer-export');
    await offer.getByRole('button', { name: 'Export', exact: true }).click();
    // The trainer's export-onnx runs twice (base, latest checkpoint); then one column per model.
    const frame = await until('a visible webview with the playground\'s two columns', async () => {
      for (const f of await wb.visibleWebviewFrames()) if ((await f.locator('section.column').count()) >= 2) return f;
      return null;
    }, Boolean, 300_000);
    const badges = await frame.locator('section.column .badge').allInnerTexts();
    assert(badges.some((b) => /^base$/i.test(b.trim())) && badges.some((b) => /^LoRA r4$/i.test(b.trim())), `columns: ${JSON.stringify(badges)}`);
    const exportsDir = join(runsDir(ws), state.loraRun.id, 'exports');
    const labels = existsSync(exportsDir) ? readdirSync(exportsDir) : [];
    assert(labels.includes('base') && labels.some((n) => /^step-\d+$/.test(n)), `exports/ holds ${JSON.stringify(labels)}`);

    // The prompt box (the first text field). fill() rather than keystrokes: the first key typed into
    // a webview that has just taken focus was lost once (CI: the prompt read "ef ").
    const promptBox = frame.getByRole('textbox').first();
    await promptBox.fill('def ');
    await until('the prompt box to hold the prompt', () => promptBox.inputValue(), (v) => v === 'def ');
    await frame.locator('vscode-button', { hasText: 'Generate' }).click();
    await until('the playground to finish generating', () => frame.locator('.toolbar .status').innerText(), (t) => /^Done\./.test(t.trim()), 180_000);
    const columns = await frame.locator('section.column').evaluateAll((cols) => cols.map((c) => ({
      badge: c.querySelector('.badge')?.textContent ?? '',
      samples: [...c.querySelectorAll('li.sample:not(.pending) pre.sample-text')].map((p) => p.textContent ?? ''),
      unique: [...c.querySelectorAll('table.metrics tr')].find((tr) => /unique/.test(tr.textContent ?? ''))?.querySelector('td')?.textContent ?? '',
      error: c.querySelector('.banner.error')?.textContent ?? '',
    })));
    await wb.shot('playground-generated');
    for (const c of columns) {
      assert(!c.error, `${c.badge}: ${c.error}`);
      assert(c.samples.length >= 1 && c.samples.every((t) => t.startsWith('def ')), `${c.badge}: samples ${JSON.stringify(c.samples)}`);
      assert(/^\d+\s*\/\s*\d+$/.test(c.unique.trim()), `${c.badge}: the diversity table's "unique" reads ${JSON.stringify(c.unique)}`);
    }
    const [base, lora] = [columns.find((c) => /^base$/i.test(c.badge.trim())), columns.find((c) => /^LoRA/i.test(c.badge.trim()))];
    assert(JSON.stringify(base.samples) !== JSON.stringify(lora.samples), `base and LoRA generated the same text with the same seeds: ${JSON.stringify(base.samples)}`);
  });

  runner.scenario('runs table: live while the sweep trains; on the finished sweep sort by a score, filter, select two rows; kept over a reload; Compare', { timeout: 600_000 }, async ({ wb, ws }) => {
    await wb.openFile('table-sweep.finetune.yaml');
    await startFromCodeLens(wb);
    await wb.openViewContainer();
    const tableFrame = async (n) => until(`a visible runs table with ${n} rows`, async () => {
      for (const f of await wb.visibleWebviewFrames()) if ((await f.locator('.runs-grid .body .row:not(.group)').count()) === n) return f;
      return null;
    }, Boolean, 60_000);
    const openFromSweep = async (shot) => {
      // The sweep's node ("sweep <date>", "3 runs · …") → its context menu → Open Runs Table.
      const sweepRow = await wb.waitForRunRow((t) => /^sweep\b/.test(t) && /\b3 runs\b/.test(t), { what: 'the e2e-table sweep node' });
      await contextMenu(wb, sweepRow, 'Open Runs Table', shot);
      return tableFrame(3);
    };
    const states = (f) => f.locator('.runs-grid .body .row:not(.group)').evaluateAll((rows) => rows.map((r) => `${r.dataset.key}: ${r.children[1]?.textContent ?? ''}`));

    // 1. Opened while the sweep trains (one run at a time): the state column follows the runs live.
    let frame = await openFromSweep('sweep-context-menu');
    await until('the table showing a run running', () => states(frame), (s) => s.some((x) => /running/.test(x)), 240_000);
    await wb.shot('table-live-running');
    const done = await until('the table showing the three runs completed, live', () => states(frame), (s) => {
      const failed = s.find((x) => /failed/.test(x));
      if (failed) throw new Error(`a run failed: ${failed}\n${trainLogTail(ws, failed.split(':')[0])}`);
      return s.length === 3 && s.every((x) => /completed/.test(x));
    }, 420_000);
    const ids = done.map((x) => x.split(':')[0]).sort();
    assert(JSON.stringify(ids) === JSON.stringify(runFolders(ws, 'e2e-table')), `the table's rows ${JSON.stringify(ids)} are the sweep's run folders ${JSON.stringify(runFolders(ws, 'e2e-table'))}`);
    await wb.command('View: Close All Editors');

    // 2. The finished sweep, opened again.
    frame = await openFromSweep();
    const count = () => frame.locator('.toolbar .count').innerText();
    await until('the table reading 3 runs with their scores', count, (t) => /^3 runs/.test(t) && !/reading scores/.test(t), 30_000);
    await wb.shot('table-opened');

    // Sort by a score: the learning change from the base (a loss: most negative = most learned, first).
    const grid = async () => frame.locator('.runs-grid').evaluate((g) => ({
      headers: [...g.querySelectorAll('.head .hcell')].map((h) => ({ title: h.querySelector('.title')?.textContent ?? '', sort: h.getAttribute('aria-sort') })),
      rows: [...g.querySelectorAll('.body .row:not(.group)')].sort((a, b) => Number(a.getAttribute('aria-rowindex')) - Number(b.getAttribute('aria-rowindex')))
        .map((r) => ({ key: r.dataset.key, selected: r.getAttribute('aria-selected') === 'true', cells: [...r.children].map((c) => (c.textContent ?? '').trim()) })),
    }));
    const header = frame.locator('.runs-grid .head .hcell', { has: frame.locator('.title', { hasText: /^learning Δ$/ }) }).first();
    await header.click({ position: { x: 12, y: 12 } });
    const sortedBy = (g) => {
      const col = g.headers.findIndex((h) => h.title === 'learning Δ');
      const v = g.rows.map((r) => Number((r.cells[col] ?? '').replace('−', '-')));
      return col >= 0 && g.headers[col].sort === 'ascending' && v.length >= 2 && v.every((x) => Number.isFinite(x)) && v.every((x, i) => i === 0 || v[i - 1] <= x);
    };
    const sorted = await until('the rows sorted by learning Δ, ascending', grid, (g) => g.rows.length === 3 && sortedBy(g));
    const col = sorted.headers.findIndex((h) => h.title === 'learning Δ');
    console.log(`      (learning Δ, ascending: ${sorted.rows.map((r) => `${r.cells[0]} ${r.cells[col]}`).join(', ')})`);
    await wb.shot('table-sorted');

    // Filter: only the LoRA runs.
    await frame.locator('vscode-textfield.filter input').fill('lora');
    await until('the filter leaving the two LoRA runs', count, (t) => /^2 of 3 runs/.test(t));
    const filtered = await grid();
    assert(filtered.rows.length === 2 && filtered.rows.every((r) => /lora/i.test(r.key)), `filtered rows: ${JSON.stringify(filtered.rows.map((r) => r.key))}`);
    await wb.shot('table-filtered');

    // Select both rows (click, Ctrl+click).
    const lines = frame.locator('.runs-grid .body .row:not(.group)');
    await lines.nth(0).click({ position: { x: 80, y: 12 } });
    await lines.nth(1).click({ position: { x: 80, y: 12 }, modifiers: ['Control'] });
    const selection = () => frame.locator('.actions.selection .label').innerText();
    await until('two rows selected', selection, (t) => /^2 of 2 selected/.test(t));
    await wb.shot('table-two-selected');

    // A window reload brings the table back as it was: filter, sort, selection (its saved state).
    await sleep(500); // the webview saves its state 100 ms after a change
    await wb.command('Developer: Reload Window');
    await wb.page.waitForSelector('div.monaco-workbench', { timeout: 60_000 });
    await wb.page.waitForSelector('.part.statusbar', { timeout: 30_000 });
    frame = await tableFrame(2);
    await until('the filter, sort and selection back after the reload', async () => [
      await frame.locator('vscode-textfield.filter input').inputValue(), await count(), await selection(), sortedBy(await grid()),
    ], ([text, c, sel, ok]) => text === 'lora' && /^2 of 3 runs/.test(c) && /^2 of 2 selected/.test(sel) && ok, 60_000);
    await wb.shot('table-after-reload');

    // Compare from the toolbar: the dashboard compares exactly the two selected runs.
    await frame.getByRole('button', { name: 'Compare', exact: true }).click();
    const chips = await until('the dashboard comparing the two selected runs', async () => {
      for (const f of await wb.visibleWebviewFrames()) {
        const title = await f.locator('.toolbar h1').first().innerText().catch(() => '');
        if (/^Compare 2 runs$/.test(title)) return f.locator('.run-chip').allInnerTexts();
      }
      return null;
    }, (c) => Array.isArray(c) && c.length === 2, 60_000);
    assert(chips.every((c) => /LoRA r(4|8)/.test(c)), `the dashboard compares ${JSON.stringify(chips)}, not the two LoRA runs`);
    await waitCard(wb, 'Training loss', (c) => notBlank(c.pixels), 'both runs\' loss drawn');
    await wb.shot('table-compare-dashboard');
    await wb.command('View: Close All Editors');
  });

  runner.scenario('reload the window while a run trains: it keeps running, is re-attached, the chart continues', { timeout: 420_000 }, async ({ wb, ws, state }) => {
    await wb.openFile('long-lora.finetune.yaml');
    await startFromCodeLens(wb);
    await wb.openViewContainer();
    const running = await waitRunState(wb, ws, 'e2e-long', 'running', 240_000);
    state.longRun = running;
    await openDashboard(wb, running.row);
    const before = await waitCard(wb, 'Training loss', (c) => lossPoints(c) >= 3 && notBlank(c.pixels), 'loss points before the reload', 120_000);
    await wb.shot('before-reload');
    const pidBefore = readStatus(ws, running.id)?.pid;
    assert(pidBefore && alive(pidBefore), `no live trainer pid in status.json before the reload (${JSON.stringify(readStatus(ws, running.id))})`);

    await wb.command('Developer: Reload Window');
    await wb.page.waitForSelector('div.monaco-workbench', { timeout: 60_000 });
    await wb.page.waitForSelector('.part.statusbar', { timeout: 30_000 });
    await sleep(2000);
    await wb.shot('after-reload');
    assert(alive(pidBefore), `the trainer (pid ${pidBefore}) died with the window reload`);
    await wb.openViewContainer();
    const again = await waitRunState(wb, ws, running.id, 'running', 60_000);
    await openDashboard(wb, again.row);
    const after = await waitCard(wb, 'Training loss', (c) => lossPoints(c) > lossPoints(before) && notBlank(c.pixels), `more loss points than before the reload (${lossPoints(before)})`, 120_000);
    await wb.shot('after-reload-chart-continues');
    assert(readStatus(ws, running.id)?.pid === pidBefore, 'a different trainer process is running after the reload (it should be re-attached, not restarted)');
    assert(lossPoints(after) > lossPoints(before), 'the chart did not continue');
  });

  runner.scenario('stop a running run from the Runs view context menu: it ends stopped with a checkpoint', { timeout: 300_000 }, async ({ wb, ws, state }) => {
    await wb.openViewContainer();
    let running = state.longRun && readStatus(ws, state.longRun.id)?.state === 'running' ? state.longRun : null;
    if (!running) {
      await wb.openFile('long-lora.finetune.yaml');
      await startFromCodeLens(wb);
      await wb.openViewContainer();
      running = await waitRunState(wb, ws, 'e2e-long', 'running', 240_000);
    }
    const id = running.id;
    // Stop once it has trained (a run stopped while Python still imports torch has nothing to checkpoint).
    const row = await wb.waitForRunRow((t) => t.includes(id) && /\brunning\b/i.test(t) && /step [1-9]\d*\s*\//.test(t), { what: `${id} running with a step done`, timeout: 180_000 });
    await contextMenu(wb, row, 'Stop Run', 'context-menu-stop');
    await waitRunState(wb, ws, id, 'stopped', 90_000);
    await wb.shot('stopped');
    const st = readStatus(ws, id);
    assert(st?.state === 'stopped', `status.json says ${JSON.stringify(st)}`);
    const ck = join(runsDir(ws), id, 'checkpoints');
    const steps = existsSync(ck) ? readdirSync(ck).filter((n) => /^step-\d+$/.test(n)) : [];
    assert(steps.length > 0, `no checkpoints/step-N folder in ${id} after Stop`);
    const files = readdirSync(join(ck, steps.at(-1)));
    assert(files.some((f) => /adapter_model\.safetensors|model\.safetensors/.test(f)), `checkpoint ${steps.at(-1)} has no weights (${files.join(', ')})`);
  });

  runner.scenario('kill -9 of a training run: the Runs view and its open dashboard both say failed', { timeout: 300_000 }, async ({ wb, ws }) => {
    await wb.openFile('long-lora.finetune.yaml');
    await startFromCodeLens(wb);
    await wb.openViewContainer();
    const running = await waitRunState(wb, ws, 'e2e-long', 'running', 240_000);
    const row = await wb.waitForRunRow((t) => t.includes(running.id) && /\brunning\b/i.test(t) && /step [1-9]\d*\s*\//.test(t), { what: `${running.id} running with a step done`, timeout: 180_000 });
    await openDashboard(wb, row);
    await waitCard(wb, 'Training loss', (c) => lossPoints(c) >= 1 && notBlank(c.pixels), 'loss points before the kill', 120_000);
    const chipText = async () => {
      for (const f of await wb.visibleWebviewFrames()) {
        const chips = f.locator('.run-chip');
        if (await chips.count()) return `${await chips.first().innerText()} | ${await f.locator('.banner').first().innerText().catch(() => '')}`;
      }
      return '';
    };
    await until('the dashboard saying running', chipText, (t) => /\brunning\b/.test(t), 30_000);
    const pid = readStatus(ws, running.id)?.pid;
    assert(pid && alive(pid), `no live trainer pid for ${running.id}: ${JSON.stringify(readStatus(ws, running.id))}`);
    // What an OOM killer or a crashed node does: no signal handler runs, no run_finished is written.
    for (const target of [-pid, pid]) { try { process.kill(target, 'SIGKILL'); } catch { /* already gone */ } }
    await waitRunState(wb, ws, running.id, 'failed', 60_000);
    const dash = await until('the open dashboard saying failed', chipText, (t) => /\bfailed\b/.test(t) && /SIGKILL|process disappeared/.test(t), 30_000);
    await wb.shot('killed-run-dashboard-failed');
    assert(!/\brunning\b/.test(dash), `the dashboard still says running after the kill: ${dash}`);
    const events = readFileSync(join(runsDir(ws), running.id, 'events.jsonl'), 'utf8');
    assert(!events.includes('"run_finished"'), 'a SIGKILLed trainer cannot have written run_finished: the test did not kill it');
  });

  runner.scenario('a sweep\'s queue survives a window reload: the waiting run starts when the first one stops', { timeout: 480_000 }, async ({ wb, ws }) => {
    await wb.openFile('queue-sweep.finetune.yaml');
    await startFromCodeLens(wb);
    await wb.openViewContainer();
    const first = await waitRunState(wb, ws, 'e2e-queue', 'running', 240_000);
    const waiting = await waitRunState(wb, ws, 'e2e-queue', 'queued', 30_000);
    assert(first.id && waiting.id && first.id !== waiting.id, `expected one running and one queued run (${first.id}, ${waiting.id})`);
    const queueFiles = () => readdirSync(runsDir(ws)).filter((n) => /^\.queue-window-\d+\.json$/.test(n));
    // What the UI will claim after the reload rests on this file: the queue, written by the window.
    await until('the queue on disk', () => queueFiles().map((n) => readFileSync(join(runsDir(ws), n), 'utf8')).join(''), (t) => t.includes(waiting.id));
    const pidBefore = readStatus(ws, first.id)?.pid;

    await wb.command('Developer: Reload Window');
    await wb.page.waitForSelector('div.monaco-workbench', { timeout: 60_000 });
    await wb.page.waitForSelector('.part.statusbar', { timeout: 30_000 });
    await wb.waitForNotification(/carrying on with 1 queued run/i, 60_000);
    await wb.shot('queue-after-reload');
    await wb.openViewContainer();
    await waitRunState(wb, ws, first.id, 'running', 60_000);
    assert(readStatus(ws, first.id)?.pid === pidBefore, 'the first run was restarted instead of re-attached');
    // One run at a time (maxConcurrentRuns 1): the re-attached run holds the slot, so the waiting
    // run stays queued while it trains.
    for (let i = 0; i < 5; i++) {
      assert(readStatus(ws, waiting.id)?.state === 'queued', `the queued run started beside the running one: ${JSON.stringify(readStatus(ws, waiting.id))}`);
      await sleep(1000);
    }
    const firstRow = await wb.waitForRunRow((t) => t.includes(first.id) && /\brunning\b/i.test(t), { what: `${first.id} running` });
    await contextMenu(wb, firstRow, 'Stop Run');
    await waitRunState(wb, ws, first.id, 'stopped', 90_000);
    // Nobody pressed Start: the reloaded window's queue starts the second run by itself.
    const second = await waitRunState(wb, ws, waiting.id, 'running', 240_000);
    await wb.shot('queue-second-run-started');
    const secondRow = await wb.waitForRunRow((t) => t.includes(second.id) && /\brunning\b/i.test(t), { what: `${second.id} running` });
    await contextMenu(wb, secondRow, 'Stop Run');
    await waitRunState(wb, ws, second.id, 'stopped', 90_000);
    assert(queueFiles().length === 0, `the emptied queue left its file: ${queueFiles().join(', ')}`);
  });

  runner.scenario('Slurm: Start submits a job; the Runs view shows its id, pending reason, running and done; Stop cancels a held job', { timeout: 360_000 }, async ({ wb, ws }) => {
    const readSlurm = (id) => { try { return JSON.parse(readFileSync(join(runsDir(ws), id, 'slurm.json'), 'utf8')); } catch { return null; } };
    // A held job: pending, with Slurm's reason in the row.
    await wb.openFile('slurm-held.finetune.yaml');
    await startFromCodeLens(wb);
    await wb.openViewContainer();
    const held = await wb.waitForRunRow((t) => /e2e-sheld-\d{8}-\d{6}-/.test(t) && /queued · job \d+ pending \(JobHeldUser\)/.test(t), { timeout: 90_000, what: 'the held run queued with "job N pending (JobHeldUser)"' });
    // A wider side bar, as a user drags it, so the row's description (job, reason) is on screen.
    const bar = await wb.page.locator('.part.sidebar').boundingBox();
    if (bar) {
      await wb.page.mouse.move(bar.x + bar.width + 1, bar.y + bar.height / 2);
      await wb.page.mouse.down();
      await wb.page.mouse.move(bar.x + bar.width + 380, bar.y + bar.height / 2, { steps: 10 });
      await wb.page.mouse.up();
    }
    await held.locator.hover();
    await sleep(1500);
    await wb.shot('slurm-pending-reason');
    const heldId = idFrom(held, 'e2e-sheld');
    const heldJob = readSlurm(heldId)?.job_id;
    assert(heldJob && held.text.includes(`job ${heldJob} pending`), `row "${held.text}" does not name slurm.json's job ${heldJob}`);
    await contextMenu(wb, held, 'Stop Run', 'slurm-context-menu-stop');
    await waitRunState(wb, ws, heldId, 'stopped', 60_000);
    assert(/cancelled before it started/.test(readStatus(ws, heldId)?.error ?? ''), `status.json of ${heldId}: ${JSON.stringify(readStatus(ws, heldId))}`);

    // A short run: submitted, running on the node with its job id, completed.
    await wb.openFile('slurm-quick.finetune.yaml');
    await startFromCodeLens(wb);
    await wb.openViewContainer();
    const running = await wb.waitForRunRow((t) => /e2e-squick-\d{8}-\d{6}-/.test(t) && /running · .*job \d+ on \S+/.test(t), { timeout: 180_000, what: 'the Slurm run running with "job N on <node>"' });
    await wb.shot('slurm-running');
    const id = idFrom(running, 'e2e-squick');
    const done = await waitRunState(wb, ws, id, 'completed', 240_000);
    await done.row.locator.hover();
    await sleep(1500);
    await wb.shot('slurm-completed');
    const rec = readSlurm(id);
    assert(rec?.job_id && done.row.text.includes(`job ${rec.job_id}`), `completed row "${done.row.text}" lacks slurm.json's job ${rec?.job_id}`);
    assert(existsSync(join(runsDir(ws), id, 'slurm.sbatch')), `no slurm.sbatch in ${id}`);
    assert(/Slurm job \d+ on /.test(trainLogTail(ws, id, 200000)), `train.log of ${id} is not the job's output`);
  });

  runner.scenario('memory estimate: a CodeLens above method:, a warning over the GPU limit with what fits, Start asks first, a quick fix makes it fit', { timeout: 600_000 }, async ({ wb, ws }) => {
    await wb.openFile('memory-full.finetune.yaml');
    // Nothing runs Python until asked (or the file is saved): the lens offers the estimate.
    const ask = await wb.waitForCodeLens(/Estimate memory/, 30_000);
    await ask.click();
    const lensWith = (pred, what, timeout = 240_000) => until(what, async () => (await wb.codeLenses()).find(pred) ?? null, Boolean, timeout);
    const parts = /≈ [\d.]+ GiB (on the CPU|per GPU) \(weights [\d.]+ · grads [\d.]+ · optimizer [\d.]+ · activations [\d.]+\)/;
    const cpu = await lensWith((t) => /GiB on the CPU/.test(t), 'the CodeLens with the estimate on the CPU (no GPU here)');
    assert(parts.test(cpu), `the estimate lens reads "${cpu}"`);
    await wb.shot('estimate-cpu');
    // Planning for a 24 GiB GPU: the setting, typed into the Settings editor as a user would.
    await setNumberSetting(wb, 'finetuneLab.memoryLimitGiB', 24);
    await wb.shot('setting');
    await wb.openFile('memory-full.finetune.yaml');
    try {
      const gpu = await lensWith((t) => /per GPU.*over the [\d.]+ GiB usable/.test(t), 'the CodeLens with the estimate per GPU, over the 24 GiB limit');
      assert(parts.test(gpu), `the estimate lens reads "${gpu}"`);
      const total = Number(gpu.match(/≈ ([\d.]+) GiB/)[1]);
      assert(total > 21.8, `${total} GiB is not over the 21.8 GiB usable of 24 GiB`);
      // Problems: the warning with the numbers and what would fit.
      await wb.command('View: Focus Problems (Errors, Warnings, Infos)').catch(async () => wb.command('View: Toggle Problems (Errors, Warnings, Infos)'));
      const warning = await until('the memory warning in Problems', async () => (await wb.page.locator('.markers-panel .monaco-list-row').allInnerTexts())
        .map((t) => t.replace(/\s+/g, ' ')).find((t) => /needs ≈ [\d.]+ GiB per GPU/.test(t)) ?? null, Boolean, 30_000);
      assert(/over the 21\.8 GiB usable of 24 GiB per GPU/.test(warning), `the warning does not name the limit: ${warning}`);
      assert(/Would fit: .*train\.gradient_checkpointing: true → [\d.]+ GiB/.test(warning), `the warning does not say what would fit: ${warning}`);
      // The warning sits on batch_size (the activations are most of it); hovering it shows the whole message.
      const batchLine = wb.page.locator('.editor-group-container.active .monaco-editor .view-line', { hasText: 'batch_size: 16' }).first();
      await batchLine.locator('span', { hasText: 'batch_size' }).first().hover();
      const hover = await until('the warning in the hover of batch_size', () => wb.page.locator('.monaco-hover').first().innerText().catch(() => ''), (t) => /Would fit/.test(t), 20_000);
      assert(/needs ≈ [\d.]+ GiB per GPU/.test(hover), `the hover reads: ${hover}`);
      await wb.shot('memory-warning');
      // Start asks first, with the numbers; Cancel starts nothing.
      await startFromCodeLens(wb);
      const dialog = wb.page.locator('.monaco-dialog-box');
      await dialog.waitFor({ state: 'visible', timeout: 120_000 });
      const said = (await dialog.innerText()).replace(/\s+/g, ' ');
      await wb.shot('start-confirm');
      assert(/may not fit in memory/.test(said) && /≈ [\d.]+ GiB per GPU/.test(said) && /Start anyway/.test(said), `the confirmation reads: ${said}`);
      await dialog.locator('.monaco-button', { hasText: 'Cancel' }).first().click();
      await dialog.waitFor({ state: 'hidden', timeout: 10_000 });
      await sleep(1000);
      assert(runFolders(ws, 'e2e-memory').length === 0, 'Cancel started a run anyway');
      // The quick fix applies the advice; saving re-estimates: it fits.
      await batchLine.click({ position: { x: 4, y: 4 } });
      await wb.page.keyboard.press('Control+.');
      const fix = wb.page.locator('.action-widget .monaco-list-row, .context-view .action-item', { hasText: /Fit in memory: train\.gradient_checkpointing: true/ }).first();
      await fix.waitFor({ state: 'visible', timeout: 15_000 });
      await wb.shot('quick-fix');
      await fix.click();
      await until('the file with gradient_checkpointing: true', () => editorText(wb), (t) => /gradient_checkpointing: true/.test(t) && /# Full finetuning of builtin:350m/.test(t), 10_000);
      await wb.page.keyboard.press('Control+s');
      const fits = await lensWith((t) => /per GPU/.test(t) && !/over the/.test(t), 'the CodeLens without "over the limit" after the fix');
      assert(!/over the/.test(fits) && parts.test(fits), `after the fix the lens reads "${fits}"`);
      // The fix adds that one line: comments, flow maps and numbers as written stay.
      const saved = readFileSync(join(ws, 'memory-full.finetune.yaml'), 'utf8');
      const want = FILES['memory-full.finetune.yaml'].replace('  lr: 2.0e-5\n', '  lr: 2.0e-5\n  gradient_checkpointing: true\n');
      assert(saved === want, `the fix changed more than one line:\n${saved}`);
      await until('no memory warning in Problems', async () => (await wb.page.locator('.markers-panel .monaco-list-row').allInnerTexts()).some((t) => /needs ≈/.test(t)), (v) => v === false, 30_000);
      await wb.shot('memory-fits');
    } finally {
      await setNumberSetting(wb, 'finetuneLab.memoryLimitGiB', 0).catch(() => {});
      await wb.command('View: Close All Editors').catch(() => {});
    }
  });

  runner.scenario('an invalid experiment shows a diagnostic in Problems and Start refuses with the reason', { timeout: 90_000 }, async ({ wb, ws }) => {
    await wb.openFile('broken.finetune.yaml');
    await wb.command('View: Focus Problems (Errors, Warnings, Infos)').catch(async () => wb.command('View: Toggle Problems (Errors, Warnings, Infos)'));
    const problems = wb.page.locator('.markers-panel .monaco-list-row');
    const deadline = Date.now() + 20_000;
    let texts = [];
    while (Date.now() < deadline) {
      texts = (await problems.allInnerTexts()).map((t) => t.replace(/\s+/g, ' '));
      if (texts.some((t) => /method|lora-ish|steps/i.test(t))) break;
      await sleep(400);
    }
    await wb.shot('problems-panel');
    const diag = texts.find((t) => /method|lora-ish|steps/i.test(t));
    assert(diag, `the Problems panel shows no diagnostic about the bad method or steps (rows: ${JSON.stringify(texts)})`);
    await wb.clearNotifications();
    await wb.page.locator('.editor-group-container.active .monaco-editor').first().click({ position: { x: 300, y: 100 } });
    await wb.command('Finetune Lab: Start Run');
    const msg = await wb.waitForNotification(/method|lora-ish|steps|invalid|error|fix/i, 20_000);
    await wb.shot('start-refused');
    assert(/method|lora-ish|steps/i.test(msg), `Start refused without naming the reason: "${msg}"`);
    await sleep(1000);
    assert(runFolders(ws, 'e2e-broken').length === 0, 'a run folder was created for the invalid experiment');
  });

  runner.scenario('a module regex that would backtrack for hours is an error in Problems; the window stays responsive', { timeout: 90_000 }, async ({ wb, ws }) => {
    await wb.openFile('backtracking.finetune.yaml');
    await wb.command('View: Focus Problems (Errors, Warnings, Infos)').catch(async () => wb.command('View: Toggle Problems (Errors, Warnings, Infos)'));
    const rows = wb.page.locator('.markers-panel .monaco-list-row');
    const deadline = Date.now() + 20_000;
    let texts = [];
    while (Date.now() < deadline) {
      texts = (await rows.allInnerTexts()).map((t) => t.replace(/\s+/g, ' '));
      if (texts.some((t) => /exponential time/.test(t))) break;
      await sleep(400);
    }
    await wb.shot('backtracking-problem');
    assert(texts.some((t) => /'\(\[\\w\.\]\+\)\+' repeats a group .*exponential time/.test(t)), `no backtracking error in Problems (rows: ${JSON.stringify(texts)})`);
    // the extension host answers: Start is refused with the reason (a frozen host would never reply)
    await wb.clearNotifications();
    await wb.page.locator('.editor-group-container.active .monaco-editor').first().click({ position: { x: 300, y: 60 } });
    await wb.command('Finetune Lab: Start Run');
    const msg = await wb.waitForNotification(/exponential|target_modules|error|fix/i, 20_000);
    await wb.shot('backtracking-start-refused');
    assert(/exponential|target_modules|error/i.test(msg), `Start refused without naming the reason: "${msg}"`);
    await sleep(1000);
    assert(runFolders(ws, 'e2e-backtracking').length === 0, 'a run folder was created for the refused experiment');
  });
}

/** The webview button with `label` in any visible webview, or null. */
async function webviewButton(wb, label, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    for (const frame of await wb.visibleWebviewFrames()) {
      const b = frame.locator('vscode-button', { hasText: label }).first();
      if (await b.isVisible().catch(() => false)) return b;
    }
    await sleep(300);
  }
  return null;
}

export function defineAnalysisScenarios(runner, { python, trainerCache, trainerDir }) {
  runner.scenario('Analyse an adapter from the palette: the run shows with its icon, Spectra has bars; Reduce Intruders makes a new run', { timeout: 600_000 }, async ({ wb, ws }) => {
    const folder = join(ws, 'their-lora', 'checkpoint-100');
    // A PEFT adapter the way other tools save one (get_peft_model + save_pretrained, HF Trainer's checkpoint-N folder).
    const made = spawnSync(python, [join(trainerDir, '..', 'test', 'fixtures', 'make_peft_adapter.py'), folder], { env: { ...process.env, FINETUNE_LAB_CACHE: trainerCache, PYTHONPATH: trainerDir }, encoding: 'utf8' });
    assert(made.status === 0, `making the PEFT adapter failed: ${made.stderr?.slice(-2000)}`);
    await wb.openViewContainer();
    await wb.command('Finetune Lab: Analyse Adapter or Checkpoint…');
    await wb.shot('pick-folder');
    await wb.pick('their-lora/checkpoint-100');
    await wb.shot('pick-base');
    await wb.pick('builtin:tiny');  // the adapter's own base_model_name_or_path: the cached tiny base
    await wb.pick('Default evaluations');
    await wb.waitForNotification(/analysing checkpoint-100/, 30_000);
    await wb.shot('progress');
    const done = await waitRunState(wb, ws, 'their-lora-checkpoint-100', 'completed', 300_000);
    assert(/analysis at step 100/.test(done.row.text), `the Runs row does not say it is an analysis at step 100: "${done.row.text}"`);
    const icon = await done.row.locator.locator('.codicon-telescope').count();
    await wb.shot('analysis-run');
    assert(icon > 0, `the analysis run has no telescope icon (row "${done.row.text}")`);
    const status = readStatus(ws, done.id);
    assert(status?.state === 'completed' && status.total_steps === 100, `status.json: ${JSON.stringify(status)}`);
    // Spectra opens on the new run: rank90 bars per layer and the LoRA-rank line.
    const bars = (c) => c.pixels.coloured >= 200;
    const spectra = await waitCard(wb, 'rank90 per layer', (c) => bars(c) && c.pixels.green >= 40 && /step 100/.test(c.note), 'rank90 bars at step 100 with the LoRA-rank line');
    await wb.shot('spectra');
    assert(bars(spectra), `spectra: ${JSON.stringify(spectra)}`);
    await wb.clearNotifications();

    // The Spectra view's Reduce Intruders… button: λ 0.5, a new analysis run beside it.
    const button = await webviewButton(wb, 'Reduce Intruders');
    assert(button, 'the Spectra view of a LoRA run has no "Reduce Intruders…" button');
    await button.click();
    await wb.shot('lambda-pick');
    await wb.pick('λ = 0.5');
    const reduced = await wb.waitForRunRow((t) => /reduced-lambda0\.5/.test(t) && /completed · λ 0\.5 at step 100/.test(t), { timeout: 300_000, what: 'the reduce-intruders run (λ 0.5) completed' });
    await wb.shot('reduced-run');
    const id = runFolders(ws, 'their-lora-checkpoint-100').find((n) => n.endsWith('reduced-lambda0.5'));
    assert(id && existsSync(join(runsDir(ws), id, 'adapter', 'adapter_model.safetensors')), `no mitigated adapter in PEFT format (runs: ${JSON.stringify(runFolders(ws, 'their'))})`);
    assert((await reduced.locator.locator('.codicon-telescope').count()) > 0, 'the reduced run has no telescope icon');
    // Spectra opens on both side by side: the analysed adapter and its reduced copy, each with its intruder bars.
    const deadline = Date.now() + 60_000;
    let heads = [], frame = null, stats = [];
    while (Date.now() < deadline) {
      for (const f of await wb.visibleWebviewFrames()) {
        const h = await f.locator('.col-head').allInnerTexts().catch(() => []);
        if (h.length === 2) { heads = h; frame = f; break; }
      }
      if (frame) {
        const cards = frame.locator('canvas[aria-label="Intruder dimensions per layer"]');
        stats = [await canvasStats(cards.nth(0)), await canvasStats(cards.nth(1))];
        if (stats.every((x) => x.coloured >= 100)) break;
      }
      await sleep(500);
    }
    await wb.shot('spectra-both');
    assert(heads.some((h) => /LoRA r4 \(analysed\)/.test(h)) && heads.some((h) => /LoRA r4 λ 0\.5/.test(h)), `the Spectra view does not show the source beside the reduced run (columns: ${JSON.stringify(heads)})`);
    assert(stats.length === 2 && stats.every((x) => x.coloured >= 100), `intruder bars not drawn in both columns: ${JSON.stringify(stats)}`);
  });
}

export function defineUntrustedScenarios(runner) {
  runner.scenario('untrusted workspace: Start is disabled and says why', { timeout: 120_000 }, async ({ wb, ws }) => {
    // The trust prompt of a fresh folder: answer "No".
    const no = wb.page.getByRole('button', { name: /No, I don't trust|Don't Trust/i }).first();
    try { await no.waitFor({ state: 'visible', timeout: 15_000 }); await wb.shot('trust-prompt'); await no.click(); } catch { /* no modal: already restricted */ }
    await sleep(1000);
    const restricted = await wb.page.locator('.part.statusbar, .part.titlebar, .part.banner').filter({ hasText: /Restricted Mode/i }).count();
    await wb.shot('restricted-mode');
    assert(restricted > 0, 'the workbench does not show Restricted Mode after declining trust');
    await wb.openFile('quick-lora.finetune.yaml');
    await sleep(1500);
    const lenses = await wb.codeLenses();
    await wb.shot('untrusted-codelens');
    // The palette: is "Start Run" offered, and does anything say why it is off?
    await wb.page.keyboard.press('F1');
    const qi = wb.page.locator('.quick-input-widget');
    await qi.waitFor({ state: 'visible' });
    await qi.locator('input').fill('>Finetune Lab: ');
    await sleep(800);
    const rows = (await qi.locator('.monaco-list-row .label-name').allInnerTexts()).map((t) => t.trim());
    await qi.locator('input').fill('>Finetune Lab: Start Run');
    await sleep(800);
    await wb.shot('untrusted-palette');
    const startRows = (await qi.locator('.monaco-list-row .label-name').allInnerTexts()).map((t) => t.trim()).filter((t) => t === 'Finetune Lab: Start Run');
    let said = lenses.find((t) => /trust|restricted/i.test(t)) ?? null;
    const whyRow = [...rows, ...(await qi.locator('.monaco-list-row .label-name').allInnerTexts())].find((t) => /Finetune Lab: .*(trust|restricted)/i.test(t));
    if (startRows.length) {
      // Offered: running it must refuse and say why.
      await qi.locator('.monaco-list-row', { has: wb.page.locator('.label-name', { hasText: 'Finetune Lab: Start Run' }) }).first().click();
      said ??= await wb.waitForNotification(/trust|restricted/i, 8_000).catch(() => null);
    } else {
      await wb.page.keyboard.press('Escape');
    }
    said ??= whyRow ?? null;
    // The editor title's Start action is disabled.
    const titleStart = wb.page.locator('.editor-group-container.active .editor-actions .action-item', { has: wb.page.locator('[aria-label^="Start Run"], [aria-label^="Finetune Lab: Start Run"]') }).first();
    const titleDisabled = (await titleStart.count()) ? await titleStart.evaluate((e) => e.classList.contains('disabled') || !!e.querySelector('.disabled')) : null;
    await sleep(1000);
    await wb.shot('untrusted-start');
    assert(runFolders(ws, 'e2e-lora').length === 0, 'a run was started in an untrusted workspace');
    assert(startRows.length === 0 || said, 'Start Run is offered in the palette of an untrusted workspace without saying why it refuses');
    assert(titleDisabled !== false, 'the editor title Start Run action is enabled in an untrusted workspace');
    assert(said, `nothing tells the user why Start is unavailable (CodeLenses: ${JSON.stringify(lenses)}; palette: ${JSON.stringify(rows)})`);
    console.log(`      (why, as shown: "${said}"; CodeLenses: ${JSON.stringify(lenses)})`);
  });
}
