/**
 * What the three views' panels share, in the shape of vscode-extension-samples' CatCodingPanel
 * (webview-sample/src/extension.ts): the HTML with a nonce CSP, localResourceRoots limited to
 * dist/webview, the `ready` handshake (PR extension's WebviewBase: nothing is posted before the
 * webview says it listens), validated incoming messages, exports saved through a dialog.
 */
import * as vscode from 'vscode';
import { webviewHtml, webviewOptions } from '../webviewHtml';
import { assertNever, isWebviewToHost, type HostToWebview, type RestoreInfo, type ViewKind, type WebviewToHost } from '../core/messages';
import { RunFeed, type RunStateSource } from './runFeed';
import { VIEW_FILTERS, readyMessages } from './wire';
import type { RunRef } from '../core/runRef';

export { webviewOptions };

/** The panel's HTML: its view's bundle behind the shared nonce CSP (src/webviewHtml.ts). */
export function getHtml(webview: vscode.Webview, extensionUri: vscode.Uri, view: ViewKind, title: string): string {
  return webviewHtml(webview, extensionUri, view, title);
}

/** What every panel is made with: where its bundles are, and who reconciles run states. */
export interface PanelDeps {
  extensionUri: vscode.Uri;
  /** The RunManager: the one place a run's state is decided, shared with the Runs view. */
  states: RunStateSource;
}

/** One open view over a set of runs, fed by a RunFeed once the webview is ready. */
export abstract class RunViewPanel {
  protected readonly _disposables: vscode.Disposable[] = [];
  protected readonly feed: RunFeed;
  private ready = false;

  protected readonly _extensionUri: vscode.Uri;
  protected constructor(
    protected readonly _panel: vscode.WebviewPanel,
    protected readonly deps: PanelDeps,
    protected readonly view: ViewKind,
    runs: readonly RunRef[],
  ) {
    this._extensionUri = deps.extensionUri;
    this.feed = new RunFeed(runs, VIEW_FILTERS[view], deps.states);
    _panel.webview.options = webviewOptions(this._extensionUri);
    _panel.webview.html = getHtml(_panel.webview, this._extensionUri, view, _panel.title);
    _panel.onDidDispose(() => this.dispose(), null, this._disposables);
    _panel.webview.onDidReceiveMessage((m: unknown) => this._onMessage(m), null, this._disposables);
  }

  protected abstract restoreInfo(): RestoreInfo;

  private _onMessage(m: unknown): void {
    if (!isWebviewToHost(m)) { console.warn('[finetune-lab] dropped an invalid webview message'); return; }
    const msg: WebviewToHost = m;
    switch (msg.type) {
      case 'ready': return this._onReady();
      case 'openRun': return this._openRun(msg.runId);
      case 'killRun': return this._killRun(msg.runId);
      case 'export': return void this._export(msg);
      case 'log': return msg.level === 'error' ? console.error(`[finetune-lab webview] ${msg.message}`) : console.log(`[finetune-lab webview] ${msg.message}`);
      case 'reduceIntruders': return void vscode.commands.executeCommand('finetuneLab.reduceIntruders', ...this.feed.refs.filter((r) => msg.runIds.includes(r.id)));
      default: return assertNever(msg);
    }
  }

  /** Also after a reload of the webview (it sends `ready` again): everything, then live batches. */
  private _onReady(): void {
    this.ready = true;
    const headers = this.feed.headers;
    const all = this.feed.attach({
      batches: (b) => this._post({ type: 'append', batches: b }),
      header: (run) => this._post({ type: 'header', run }),
    });
    for (const m of readyMessages(this.view, headers, this.restoreInfo(), all)) this._post(m);
  }

  /** Re-sends init + all data (the run set changed). */
  protected _reinit(): void {
    if (this.ready) this._onReady();
  }

  protected _post(msg: HostToWebview): void {
    if (this.ready) void this._panel.webview.postMessage(msg);
  }

  private _openRun(runId: string): void {
    const ref = this.feed.refs.find((r) => r.id === runId);
    if (ref) void vscode.commands.executeCommand('finetuneLab.openDashboard', ref);
  }

  private _killRun(runId: string): void {
    if (this.feed.refs.some((r) => r.id === runId)) void vscode.commands.executeCommand('finetuneLab.killRun', runId);
  }

  private async _export(msg: Extract<WebviewToHost, { type: 'export' }>): Promise<void> {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri ?? vscode.Uri.file(this.feed.refs[0]?.dir ?? '.');
    const target = await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.joinPath(folder, msg.name),
      filters: msg.format === 'png' ? { 'PNG image': ['png'] } : { CSV: ['csv'] },
    });
    if (!target) return;
    const bytes = msg.format === 'png'
      ? Buffer.from(msg.data.slice('data:image/png;base64,'.length), 'base64')
      : Buffer.from(msg.data, 'utf8');
    await vscode.workspace.fs.writeFile(target, bytes);
    void vscode.window.showInformationMessage(`Saved ${vscode.workspace.asRelativePath(target)}`);
  }

  dispose(): void {
    this.onDispose();
    this.feed.dispose();
    this._panel.dispose();
    while (this._disposables.length) this._disposables.pop()?.dispose();
  }

  protected abstract onDispose(): void;
}

/** Panels are kept one per run set: the same runs in the same view reveal the open panel. */
export const runSetKey = (runs: readonly RunRef[]): string => runs.map((r) => r.id).sort().join('\n');
