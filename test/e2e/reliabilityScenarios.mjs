// The scenarios of issue 17 (reliability and security) in a real VS Code: one long run survives an
// extension-host restart, is shown by two windows and started once when both resume it, then hangs
// (SIGSTOP: a frozen trainer, no heartbeat) and is shown stalled until Kill Trainer ends it; a run
// whose disk fills ends failed with "disk full" while its earlier checkpoints stay whole; every
// webview opened has the strict CSP; in an untrusted workspace nothing resumes, exports or installs.
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Workbench } from './harness.mjs';
import { assert } from './runner.mjs';
import {
  alive, contextMenu, openDashboard, readStatus, runFolders, runsDir, startFromCodeLens, until, waitCard, waitRunState,
  lossPoints, notBlank,
} from './scenarios.mjs';

/** Processes whose arguments hold `--run-dir <dir>`: trainers of that run folder (Linux /proc). */
function trainersOf(dir) {
  const out = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let argv;
    try { argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    const i = argv.indexOf('--run-dir');
    if (argv.some((a) => a.includes('finetune_lab')) && i >= 0 && argv[i + 1] === dir) out.push(Number(pid));
  }
  return out;
}

/** Parent pid of a process (Linux /proc), or 0. */
function parentOf(pid) {
  try { return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]); } catch { return 0; }
}

/**
 * The extension host processes of a code-server (one per open window): processes started with VS
 * Code's extension-host entry point below code-server's own process, whose parent is not one (what
 * an extension host starts, a trainer included, inherits that environment).
 */
function extensionHosts(server) {
  const marked = new Set();
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number)) {
    let env;
    try { env = readFileSync(`/proc/${pid}/environ`, 'utf8'); } catch { continue; }
    if (env.includes('VSCODE_ESM_ENTRYPOINT=vs/workbench/api/node/extensionHostProcess')) marked.add(pid);
  }
  const below = (pid) => { for (let p = parentOf(pid), hops = 0; p > 1 && hops < 10; p = parentOf(p), hops++) if (p === server.child.pid) return true; return false; };
  return [...marked].filter((pid) => !marked.has(parentOf(pid)) && below(pid));
}

/** The CSP of every visible webview's page (the extension's HTML inside the webview's frames). */
async function visibleCsps(wb) {
  const out = [];
  for (const f of await wb.visibleWebviewFrames()) {
    out.push(await f.locator('meta[http-equiv="Content-Security-Policy"]').first().getAttribute('content', { timeout: 5_000 }).catch(() => null));
  }
  return out;
}

async function assertStrictCsp(wb, where) {
  const csps = await visibleCsps(wb);
  assert(csps.length > 0 && csps.every(Boolean), `${where}: a visible webview without a CSP (${JSON.stringify(csps)})`);
  for (const c of csps) {
    assert(!/unsafe-inline|unsafe-eval/.test(c), `${where}: CSP allows unsafe code: ${c}`);
    assert(/script-src 'nonce-[^']+'(;|$)/.test(c) && /default-src 'none'/.test(c), `${where}: CSP is not nonce-only: ${c}`);
  }
  return csps.length;
}

/** The dashboard's run chip (and banner) text in the visible webviews. */
async function chipText(wb) {
  for (const f of await wb.visibleWebviewFrames()) {
    const chips = f.locator('.run-chip');
    if (await chips.count()) return chips.first().innerText();
  }
  return '';
}

function setUserSetting(server, key, value) {
  if (value === undefined) delete server.settings[key]; else server.settings[key] = value;
  server.writeSettings(); // VS Code watches settings.json and applies the change
}

export function defineReliabilityScenarios(runner) {
  runner.scenario('restart the extension host while a run trains: the trainer keeps going and is re-attached', { timeout: 480_000 }, async ({ wb, ws, state }) => {
    await wb.openFile('rel-long.finetune.yaml');
    await startFromCodeLens(wb);
    await wb.openViewContainer();
    const running = await waitRunState(wb, ws, 'e2e-rel', 'running', 240_000);
    state.relRun = running.id;
    const row = await wb.waitForRunRow((t) => t.includes(running.id) && /step [1-9]\d*\s*\//.test(t), { what: `${running.id} with a step done`, timeout: 180_000 });
    await openDashboard(wb, row);
    const before = await waitCard(wb, 'Training loss', (c) => lossPoints(c) >= 3 && notBlank(c.pixels), 'loss points before the restart', 120_000);
    const n = await assertStrictCsp(wb, 'the dashboard');
    const pid = readStatus(ws, running.id)?.pid;
    assert(pid && alive(pid), `no live trainer before the restart: ${JSON.stringify(readStatus(ws, running.id))}`);
    // code-server's web workbench has no "Restart Extension Host" command: the host is killed, as a
    // crash would, and the workbench starts a new one ("Extension host terminated unexpectedly. Restarting...").
    const hosts = extensionHosts(wb.server);
    assert(hosts.length === 1, `expected one extension host for the one window, found ${JSON.stringify(hosts)}`);
    process.kill(hosts[0], 'SIGKILL');
    const fresh = await until('a new extension host', () => extensionHosts(wb.server), (h) => h.length === 1 && h[0] !== hosts[0], 60_000);
    await sleep(3000);
    await wb.shot('after-extension-host-restart');
    assert(alive(pid), `the trainer (pid ${pid}) died with the extension host`);
    await wb.openViewContainer();
    await waitRunState(wb, ws, running.id, 'running', 90_000);
    const row2 = await wb.waitForRunRow((t) => t.includes(running.id) && /\brunning\b/.test(t), { what: `${running.id} running after the restart`, timeout: 60_000 });
    await openDashboard(wb, row2);
    await waitCard(wb, 'Training loss', (c) => lossPoints(c) > lossPoints(before) && notBlank(c.pixels), `more points than before the restart (${lossPoints(before)})`, 120_000);
    await wb.shot('re-attached-after-restart');
    assert(readStatus(ws, running.id)?.pid === pid, 'a new trainer was started instead of re-attaching');
    // Lines no view can use, appended whole (O_APPEND, as the trainer's own): the dashboard says so.
    const events = join(runsDir(ws), running.id, 'events.jsonl');
    appendFileSync(events, 'not json at all\n{"v":2,"type":"train","time":1,"step":1,"loss":1}\n{"v":1,"type":"metrics_v9","time":1}\n');
    const chip = await until('the dashboard counting the skipped lines', () => chipText(wb), (t) => /3 lines of events\.jsonl skipped, 1 from a newer trainer/.test(t), 30_000);
    await wb.shot('dashboard-says-3-lines-skipped');
    assert(trainersOf(join(runsDir(ws), running.id)).length === 1, 'more than one trainer of the run');
    console.log(`      (extension host ${hosts[0]} killed, ${fresh[0]} started; trainer pid ${pid} kept training; ${n} webview CSP checked: nonce only; chip: "${chip.replace(/\s+/g, ' ')}")`);
  });

  runner.scenario('two windows on one workspace: both show the run; Resume from both at once starts one trainer', { needs: ['restart the extension host while a run trains: the trainer keeps going and is re-attached'], timeout: 480_000 }, async ({ wb, ws, state }) => {
    const id = state.relRun;
    const dir = join(runsDir(ws), id);
    const wb2 = new Workbench({ browser: wb.browser, server: wb.server, shots: wb.shots });
    await wb2.open();
    try {
      await wb2.openViewContainer();
      await waitRunState(wb2, ws, id, 'running', 60_000);
      await wb2.shot('second-window-shows-the-run');
      // Stop it in window 1; window 2 sees it stopped.
      const row = await wb.waitForRunRow((t) => t.includes(id) && /\brunning\b/.test(t), { what: `${id} running`, timeout: 60_000 });
      await contextMenu(wb, row, 'Stop Run');
      await waitRunState(wb, ws, id, 'stopped', 120_000);
      await waitRunState(wb2, ws, id, 'stopped', 60_000);
      // Resume from both windows, as fast as a user can click twice.
      const r1 = await wb.waitForRunRow((t) => t.includes(id) && /\bstopped\b/.test(t), { what: `${id} stopped in window 1` });
      const r2 = await wb2.waitForRunRow((t) => t.includes(id) && /\bstopped\b/.test(t), { what: `${id} stopped in window 2` });
      await Promise.all([contextMenu(wb, r1, 'Resume Run'), contextMenu(wb2, r2, 'Resume Run')]);
      await waitRunState(wb, ws, id, 'running', 240_000);
      await waitRunState(wb2, ws, id, 'running', 60_000);
      // Both windows' launchers have had their chance (a second trainer would be up within a second of the first).
      await until('the resumed trainer training', () => readStatus(ws, id), (s) => s?.step > 0 && s?.phase === 'training', 240_000);
      await sleep(3000);
      const trainers = trainersOf(dir);
      await wb.shot('resumed-from-two-windows-window-1');
      await wb2.shot('resumed-from-two-windows-window-2');
      const said = [...await wb.notifications(), ...await wb2.notifications()].filter((t) => /already (running|being trained)/.test(t));
      assert(trainers.length === 1, `${trainers.length} trainers of ${id} after resuming from two windows: ${trainers.join(', ')}`);
      const starts = readFileSync(join(dir, 'events.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"type":"run_started"')).length;
      console.log(`      (one trainer, pid ${trainers[0]}; run_started events: ${starts}; the other window said: ${JSON.stringify(said)})`);
    } finally {
      await wb2.close();
    }
  });

  runner.scenario('a hung trainer (no heartbeat) shows stalled in the Runs view, status bar and dashboard; Kill Trainer ends it failed', { needs: ['two windows on one workspace: both show the run; Resume from both at once starts one trainer'], timeout: 300_000 }, async ({ wb, ws, state, server }) => {
    const id = state.relRun;
    setUserSetting(server, 'finetuneLab.stalledAfterSeconds', 10);
    const pid = readStatus(ws, id)?.pid;
    assert(pid && alive(pid), `the run is not training: ${JSON.stringify(readStatus(ws, id))}`);
    try {
      await wb.openViewContainer();
      const row = await wb.waitForRunRow((t) => t.includes(id) && /\brunning\b/.test(t), { what: `${id} running` });
      await openDashboard(wb, row);
      // A frozen process: alive, but nothing runs (what a deadlock or a dead file system looks like).
      process.kill(-pid, 'SIGSTOP');
      const stalled = await wb.waitForRunRow((t) => t.includes(id) && /stalled \(no heartbeat for/.test(t), { what: `${id} shown stalled`, timeout: 90_000 });
      const note = await wb.waitForNotification(/is stalled \(no heartbeat for/, 30_000);
      const bar = await until('the status bar saying stalled', () => wb.statusBarTexts(), (ts) => ts.some((t) => /stalled/.test(t)), 30_000);
      const chip = await until('the dashboard saying stalled', () => chipText(wb), (t) => /stalled/.test(t) && /Kill Trainer/.test(t), 30_000);
      await wb.shot('stalled-runs-view-status-bar-dashboard');
      assert(alive(pid), 'the stopped trainer should still exist');
      await contextMenu(wb, stalled, 'Kill Trainer', 'stalled-context-menu-kill');
      await waitRunState(wb, ws, id, 'failed', 60_000);
      await until('the trainer gone', () => alive(pid), (a) => !a, 20_000);
      const st = readStatus(ws, id);
      await wb.shot('killed-stalled-run-failed');
      assert(/^killed: stalled \(no heartbeat for \d+ s\)$/.test(st?.error ?? ''), `status.json error: ${st?.error}`);
      const failedRow = await wb.waitForRunRow((t) => t.includes(id) && /\bfailed\b/.test(t), { what: `${id} failed` });
      console.log(`      (row: "${stalled.text}"; notification: "${note}"; status bar: ${JSON.stringify(bar.filter((t) => /stalled/.test(t)))}; dashboard: "${chip.replace(/\s+/g, ' ')}"; then "${failedRow.text}", error "${st.error}")`);
    } finally {
      try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
      setUserSetting(server, 'finetuneLab.stalledAfterSeconds', undefined);
    }
  });

  runner.scenario('a full disk: the run ends failed with "disk full" in the Runs view and a notification; its earlier checkpoints are whole', { timeout: 420_000 }, async ({ wb, ws }) => {
    // The other scenarios' long runs: stop them, so this run does not wait for a slot (maxConcurrentRuns 1).
    for (const id of runFolders(ws, 'e2e-')) {
      const st = readStatus(ws, id);
      if (st?.state === 'running' && st.pid) { try { process.kill(-st.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    await sleep(2000);
    const disk = join(ws, '.small-disk');
    mkdirSync(disk, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', disk]); // as root (the e2e machines are)
    const settingsDir = join(ws, '.vscode');
    mkdirSync(settingsDir, { recursive: true });
    writeFileSync(join(settingsDir, 'settings.json'), JSON.stringify({ 'finetuneLab.runsDirectory': disk }));
    try {
      // Start only once the window reads the setting: the Runs view lists the small disk's runs
      // (none). A fixed pause was too short on a loaded machine: the run went to the old folder.
      await wb.openViewContainer();
      await until('the Runs view showing the (empty) small disk', () => wb.runRows(), (rows) => rows.length === 0, 60_000);
      await wb.openFile('rel-diskfull.finetune.yaml');
      await startFromCodeLens(wb);
      await wb.openViewContainer();
      const failed = await wb.waitForRunRow((t) => /e2e-full-disk-/.test(t) && /\bfailed\b/.test(t), { what: 'the run on the full disk failed', timeout: 300_000 });
      const note = await wb.waitForNotification(/failed: .*disk full/, 30_000);
      await failed.locator.hover();
      await sleep(1500);
      await wb.shot('disk-full-failed-with-reason');
      const id = readdirSync(disk).find((n) => n.startsWith('e2e-full-disk-'));
      const status = JSON.parse(readFileSync(join(disk, id, 'status.json'), 'utf8'));
      assert(status.state === 'failed' && /^disk full: /.test(status.error), `status.json: ${JSON.stringify(status)}`);
      const ck = join(disk, id, 'checkpoints');
      const steps = existsSync(ck) ? readdirSync(ck).filter((n) => /^step-\d+$/.test(n)) : [];
      assert(steps.length > 0, 'no checkpoint was written before the disk filled');
      for (const s of steps) {
        const files = readdirSync(join(ck, s));
        assert(['adapter_model.safetensors', 'adapter_config.json', 'trainer_state.pt'].every((f) => files.includes(f)), `checkpoint ${s} is incomplete: ${files.join(', ')}`);
      }
      assert(!readdirSync(ck).some((n) => n.startsWith('.tmp-')), 'a half-written checkpoint was left');
      const lines = readFileSync(join(disk, id, 'events.jsonl'), 'utf8').split('\n').filter(Boolean);
      for (const l of lines) JSON.parse(l); // every line whole
      console.log(`      (notification: "${note.slice(0, 160)}"; ${steps.length} whole checkpoints, ${lines.length} whole event lines)`);
    } finally {
      rmSync(join(settingsDir, 'settings.json'), { force: true });
      await sleep(1500);
      try { execFileSync('umount', ['-l', disk]); } catch { /* already */ }
    }
  });
}

export function defineUntrustedReliabilityScenarios(runner) {
  runner.scenario('untrusted workspace: resume, export and install are off; a stopped run is not resumed, nothing starts', { timeout: 180_000 }, async ({ wb, ws }) => {
    // A run folder the workspace came with (a cloned repository's), stopped with a checkpoint.
    const id = 'e2e-untrusted-20240101-000000-lora-r4';
    const dir = join(runsDir(ws), id);
    mkdirSync(join(dir, 'checkpoints', 'step-000002'), { recursive: true });
    writeFileSync(join(dir, 'meta.json'), JSON.stringify({ v: 1, run_id: id, experiment_name: 'e2e-untrusted', created: 1704067200, label: 'lora-r4' }));
    writeFileSync(join(dir, 'status.json'), JSON.stringify({ v: 1, state: 'stopped', pid: null, step: 2, total_steps: 10, error: null }));
    writeFileSync(join(dir, 'config.yaml'), 'name: e2e-untrusted\nmodel: {base: builtin:tiny}\ndata: {train: builtin:brown}\nmethod: lora\n');
    await wb.openViewContainer();
    await wb.command('Finetune Lab: Refresh Runs').catch(() => {});
    const row = await wb.waitForRunRow((t) => t.includes(id) && /\bstopped\b/.test(t), { what: `${id} listed`, timeout: 30_000 });
    await row.locator.click({ button: 'right' });
    await sleep(800);
    const items = await wb.page.locator('.monaco-menu .action-item').evaluateAll((els) => els.map((e) => ({ label: (e.innerText || '').trim(), disabled: e.classList.contains('disabled') || !!e.querySelector('.disabled') })));
    await wb.shot('untrusted-run-context-menu');
    await wb.page.keyboard.press('Escape');
    for (const label of ['Resume Run', 'Export to ONNX', 'Duplicate with Changes']) {
      const it = items.find((i) => i.label === label);
      assert(!it || it.disabled, `"${label}" is enabled in an untrusted workspace (menu: ${JSON.stringify(items)})`);
    }
    // The palette offers none of them either.
    await wb.page.keyboard.press('F1');
    const qi = wb.page.locator('.quick-input-widget');
    await qi.waitFor({ state: 'visible' });
    await qi.locator('input').fill('>Finetune Lab: ');
    await sleep(800);
    const rows = (await qi.locator('.monaco-list-row .label-name').allInnerTexts()).map((t) => t.trim());
    await wb.shot('untrusted-palette-commands');
    await wb.page.keyboard.press('Escape');
    for (const title of ['Finetune Lab: Resume Run', 'Finetune Lab: Export to ONNX', 'Finetune Lab: Create Python Environment (.venv)', 'Finetune Lab: Duplicate with Changes']) {
      assert(!rows.includes(title), `the palette offers "${title}" in an untrusted workspace`);
    }
    await sleep(3000);
    assert(readStatus(ws, id)?.state === 'stopped', `the run changed state: ${JSON.stringify(readStatus(ws, id))}`);
    assert(trainersOf(dir).length === 0, 'a trainer started');
    assert(!existsSync(join(dir, 'exports')) && !existsSync(join(ws, '.venv')), 'something was exported or installed');
    console.log(`      (context menu: ${JSON.stringify(items.map((i) => `${i.label}${i.disabled ? ' (off)' : ''}`))})`);
  });
}
