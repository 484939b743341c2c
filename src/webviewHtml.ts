// The HTML every webview of the extension starts from (panels and the experiment form), in the
// shape of vscode-extension-samples' webview-sample: one bundle from dist/webview through
// asWebviewUri, a strict CSP with a fresh nonce, and no 'unsafe-inline' anywhere (styles arrive as
// constructable stylesheets, as @vscode-elements' Lit components use).
import * as crypto from 'node:crypto';
import * as vscode from 'vscode';
import { webviewCsp } from './core/webviewCsp';

/** Only the bundles: no media/, no node_modules (chart.js and the elements are bundled). */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview')] };
}

/** `bundle` is a file name in dist/webview without `.js`; `body` is static markup put before the script. */
export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, bundle: string, title: string, body = ''): string {
  const nonce = crypto.randomUUID().replace(/-/g, '');
  const script = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', `${bundle}.js`));
  const csp = webviewCsp(webview.cspSource, nonce);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(title)}</title>
</head>
<body>
${body}<script nonce="${nonce}" src="${script.toString()}"></script>
</body>
</html>`;
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
