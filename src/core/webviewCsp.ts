// The one content security policy of the extension's webviews (used by src/webviewHtml.ts; pure, so
// test/reliability/security.test.ts checks it without an editor).

/**
 * The Content-Security-Policy of every webview: nothing by default; scripts only with this page's
 * nonce; styles, images and fonts only from the extension's own files. Never 'unsafe-inline' or
 * 'unsafe-eval' (test/reliability/security.test.ts checks every webview's page goes through here).
 */
export function webviewCsp(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${cspSource}`,
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
  ].join('; ');
}
