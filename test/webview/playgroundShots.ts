/**
 * Screenshots of the generation playground (docs/screenshots/playground-{dark,light}.png) from REAL
 * exports: the runs' exports/*\/export.json picked and generated through by src/playground/job.ts
 * (the panel's own code, onnxruntime-node included), the messages it posts fed to the built
 * webview bundle in headless Chromium with the panel's CSP and bench/webview's theme variables.
 * Then a reload with the saved state checks that prompt and samples come back without the host.
 *   node esbuild.mjs && node_modules/.bin/esbuild test/webview/playgroundShots.ts --bundle --platform=node \
 *     --outfile=out/playgroundShots.js --external:playwright-core --external:onnxruntime-node && node out/playgroundShots.js RUN_DIR...
 *   THEMES=dark,light,hc picks the themes (default dark,light; hc writes playground-hc.png).
 */
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { type ThemeName } from '../../bench/webview/themes';
import { launchChromium, openBundlePage } from '../../bench/webview/page';
import { pickColumns, runJob, toModel } from '../../src/playground/job';
import { SessionCache } from '../../src/playground/ort';
import type { GenSettings, HostToPlayground } from '../../src/core/playgroundProtocol';

const ROOT = process.cwd();
const FAKE_API = `
  window.__sent = []; window.__state = window.__savedState;
  window.acquireVsCodeApi = () => ({
    postMessage: (m) => { window.__sent.push(m); if (m && m.type === 'ready') window.__ready = true; },
    getState: () => window.__state, setState: (s) => { window.__state = s; },
  });
  window.__deliver = (json) => { for (const m of JSON.parse(json)) window.postMessage(m, '*'); };
`;

/** Variables the playground's elements read that bench/webview's themes leave out (VS Code's Dark/Light Modern values). */
const EXTRA: Record<ThemeName, string> = {
  dark: ':root{--vscode-settings-checkboxForeground:#cccccc; --vscode-settings-textInputBackground:#313131; --vscode-settings-textInputBorder:#3c3c3c; --vscode-settings-textInputForeground:#cccccc; --vscode-badge-background:#616161; --vscode-badge-foreground:#f8f8f8; --vscode-textCodeBlock-background:#2b2b2b; --vscode-input-placeholderForeground:#989898;}',
  light: ':root{--vscode-settings-checkboxForeground:#3b3b3b; --vscode-settings-checkboxBorder:#cecece; --vscode-settings-textInputBackground:#ffffff; --vscode-settings-textInputBorder:#cecece; --vscode-settings-textInputForeground:#3b3b3b; --vscode-badge-background:#cccccc; --vscode-badge-foreground:#3b3b3b; --vscode-textCodeBlock-background:#f2f2f2; --vscode-input-placeholderForeground:#767676;}',
  hc: ':root{--vscode-settings-textInputBackground:#000000; --vscode-settings-textInputBorder:#6fc3df; --vscode-settings-textInputForeground:#ffffff; --vscode-badge-background:#000000; --vscode-badge-foreground:#ffffff; --vscode-textCodeBlock-background:#000000;}',
};

async function open(browser: Browser, theme: ThemeName, savedState?: unknown): Promise<Page> {
  const initScript = `window.__savedState = ${JSON.stringify(savedState ?? null) === 'null' ? 'undefined' : JSON.stringify(savedState)};` + FAKE_API;
  const page = await openBundlePage(browser, { bundle: 'playground', theme, label: theme, initScript, extraCss: EXTRA[theme] });
  await page.waitForFunction('window.__ready === true');
  return page;
}

async function main(): Promise<void> {
  const dirs = process.argv.slice(2).map((d) => path.resolve(d));
  if (!dirs.length) throw new Error('usage: node out/playgroundShots.js RUN_DIR...');
  const runs = dirs.map((d) => ({ id: path.basename(d), dir: d }));
  const { exports, problems } = pickColumns(runs);
  const prompt = process.env.PROMPT ?? 'def ';
  const settings: GenSettings = { temperature: 0.8, topP: 0.95, topK: 0, maxNewTokens: Number(process.env.MAX_NEW ?? 64), samples: 4, seed: 0 };
  const msgs: HostToPlayground[] = [{ type: 'init', models: exports.map(toModel), problems, restore: { runs } }];
  const sessions = new SessionCache();
  const t0 = Date.now();
  await runJob(1, exports, prompt, settings, sessions, (m) => msgs.push(m), new AbortController().signal);
  await sessions.dispose();
  console.log(`generated ${msgs.filter((m) => m.type === 'sample').length} samples from ${exports.length} exports in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  for (const m of msgs) if (m.type === 'modelDone') console.log(`  ${path.relative(ROOT, m.model)}: ${JSON.stringify(m.diversity)} ${m.tokensPerS.toFixed(0)} tok/s`);
  for (const m of msgs) if (m.type === 'error') console.log(`  ERROR ${m.message}`);

  const browser = await launchChromium();
  let ok = true;
  for (const theme of (process.env.THEMES ? process.env.THEMES.split(',') as ThemeName[] : ['dark', 'light'] as const)) {
    const page = await open(browser, theme, { prompt, settings });
    // `started` carries the prompt the webview shows; the panel posts it after the user's `generate`.
    await page.evaluate(`window.__deliver(${JSON.stringify(JSON.stringify(msgs))})`);
    await page.waitForTimeout(500);
    const file = path.join(ROOT, 'docs', 'screenshots', `playground-${theme}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.log(`wrote ${path.relative(ROOT, file)}`);
    const state = await page.evaluate('window.__state');
    const sent = (await page.evaluate('window.__sent.map((m) => m.type)')) as string[];
    if (sent.includes('log')) { ok = false; console.log(`[${theme}] the webview reported: ${JSON.stringify(sent)}`); }
    await page.close();
    // Restore: a fresh page with the saved state shows the same samples before the host says anything.
    const again = await open(browser, theme, state);
    const shown = (await again.evaluate(`({ samples: document.querySelectorAll('.sample-text').length, prompt: document.querySelector('vscode-textarea').value })`)) as { samples: number; prompt: string };
    const want = msgs.filter((m) => m.type === 'sample').length;
    // Columns come from `init`; before it the webview has no models, so re-deliver init only.
    await again.evaluate(`window.__deliver(${JSON.stringify(JSON.stringify([msgs[0]]))})`);
    await again.waitForTimeout(200);
    const afterInit = (await again.evaluate(`document.querySelectorAll('.sample-text').length`)) as number;
    const pass = shown.prompt === prompt && afterInit === want;
    ok &&= pass;
    console.log(`[${theme}] restore: prompt ${shown.prompt === prompt ? 'kept' : 'LOST'}, samples after init ${afterInit}/${want} ${pass ? 'ok' : 'FAIL'}`);
    await again.close();
  }
  await browser.close();
  if (!ok) process.exitCode = 1;
}

main().catch((e) => { console.error(e); process.exit(1); });
