/**
 * A built webview bundle (dist/webview/<bundle>.js) in headless Chromium, in a plain page with the
 * panel's own CSP and VS Code theme variables: what bench/webview/harness.ts (charts) and
 * test/webview/playgroundShots.ts (the playground) both drive. The caller injects its fake
 * acquireVsCodeApi as `initScript` and waits for its own ready signal.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { THEMES, type ThemeName } from './themes';

const ROOT = process.cwd(); // run from the repo root
const ORIGIN = 'http://harness.test';
const NONCE = 'harnessnonce';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
}

export interface BundlePage {
  bundle: string;
  theme: ThemeName;
  /** Prefix of console lines from the page. */
  label: string;
  initScript: string;
  /** Extra theme variables (after the theme's own). */
  extraCss?: string;
  width?: number;
  height?: number;
}

export async function openBundlePage(browser: Browser, o: BundlePage): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: o.width ?? 1280, height: o.height ?? 900 }, deviceScaleFactor: 1 });
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.log(`[${o.label}] ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => console.log(`[${o.label}] pageerror: ${e.message}`));
  const csp = `default-src 'none'; script-src 'nonce-${NONCE}'; style-src ${ORIGIN}; img-src ${ORIGIN} data:; font-src ${ORIGIN}`;
  await page.route(`${ORIGIN}/**`, async (route) => {
    const url = new URL(route.request().url());
    if (url.pathname === '/index.html') return route.fulfill({ contentType: 'text/html', body:
      `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8"><meta http-equiv="Content-Security-Policy" content="${csp}"><link rel="stylesheet" href="/theme.css"></head>` +
      `<body class="${THEMES[o.theme].bodyClass}"><script nonce="${NONCE}" src="/dist/webview/${o.bundle}.js"></script></body></html>` });
    if (url.pathname === '/theme.css') return route.fulfill({ contentType: 'text/css', body: THEMES[o.theme].css + (o.extraCss ?? '') });
    if (url.pathname.startsWith('/dist/webview/')) return route.fulfill({ contentType: 'text/javascript', body: fs.readFileSync(path.join(ROOT, url.pathname)) });
    return route.fulfill({ status: 404, body: '' });
  });
  await page.addInitScript(o.initScript);
  await page.goto(`${ORIGIN}/index.html`);
  return page;
}
