/**
 * The generation playground (paper §4.5): one prompt, the same seeds, several ONNX exports side by
 * side (a run's base, its LoRA or full checkpoints, other runs'), each column's samples streamed as
 * they complete, with their diversity. The shape of vscode-extension-samples' CatCodingPanel: a private constructor,
 * createOrShow/revive, the `ready` handshake, validated messages, disposables emptied in dispose().
 */
import * as vscode from 'vscode';
import { webviewHtml, webviewOptions } from '../webviewHtml';
import {
  assertNever, isPlaygroundToHost, type GenSettings, type HostToPlayground, type PlaygroundRestore, type PlaygroundToHost,
} from '../core/playgroundProtocol';
import { findExports, latestTuned, type ExportInfo } from '../core/exports';
import type { RunRef } from '../core/runRef';
import { pickColumns, runJob, toModel } from './job';
import { SessionCache } from './ort';


export class PlaygroundPanel {
  static readonly viewType = 'finetuneLab.playground';
  static current: PlaygroundPanel | undefined;

  static createOrShow(extensionUri: vscode.Uri, runs: RunRef[]): PlaygroundPanel {
    const open = PlaygroundPanel.current;
    if (open) { open.setRuns(runs); open._panel.reveal(undefined, false); return open; }
    const panel = vscode.window.createWebviewPanel(PlaygroundPanel.viewType, 'Playground', vscode.ViewColumn.Active, { ...webviewOptions(extensionUri), retainContextWhenHidden: true });
    return new PlaygroundPanel(panel, extensionUri, runs);
  }

  static revive(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, runs: RunRef[]): PlaygroundPanel {
    return new PlaygroundPanel(panel, extensionUri, runs);
  }

  private readonly _disposables: vscode.Disposable[] = [];
  private readonly sessions = new SessionCache();
  private columns: ExportInfo[] = [];
  private ready = false;
  private job = 0;
  private abort: AbortController | undefined;

  private constructor(private readonly _panel: vscode.WebviewPanel, extensionUri: vscode.Uri, private runs: RunRef[]) {
    PlaygroundPanel.current = this;
    _panel.webview.options = webviewOptions(extensionUri);
    _panel.webview.html = webviewHtml(_panel.webview, extensionUri, 'playground', 'Playground');
    if (runs.length === 1) _panel.title = `Playground: ${runs[0].id}`;
    _panel.onDidDispose(() => this.dispose(), null, this._disposables);
    _panel.webview.onDidReceiveMessage((m: unknown) => this._onMessage(m), null, this._disposables);
  }

  /** Another run set (the command ran again): new columns, same prompt and settings in the webview. */
  setRuns(runs: RunRef[]): void {
    this.abort?.abort(); // its columns may be gone; the webview starts over from `init`
    this.runs = runs;
    this._panel.title = runs.length === 1 ? `Playground: ${runs[0].id}` : 'Playground';
    if (this.ready) this._onReady();
  }

  private _onMessage(m: unknown): void {
    if (!isPlaygroundToHost(m)) { console.warn('[finetune-lab] playground: dropped an invalid webview message'); return; }
    const msg: PlaygroundToHost = m;
    switch (msg.type) {
      case 'ready': return this._onReady();
      case 'generate': return void this._generate(msg.prompt, msg.settings, msg.models);
      case 'cancel': return this.abort?.abort();
      case 'exportMissing': return this._exportMissing();
      case 'log': return msg.level === 'error' ? console.error(`[finetune-lab playground] ${msg.message}`) : console.log(`[finetune-lab playground] ${msg.message}`);
      default: return assertNever(msg);
    }
  }

  /** Runs without an exported checkpoint (all of them if each has one: the user asked to re-export). */
  private _exportMissing(): void {
    const missing = this.runs.filter((r) => !latestTuned(findExports(r.dir).exports));
    void vscode.commands.executeCommand('finetuneLab.exportOnnx', ...(missing.length ? missing : this.runs).map((r) => r.id));
  }

  reveal(): void { this._panel.reveal(undefined, false); }

  /** Adds runs (just exported) to the columns, keeping the ones shown. */
  addRuns(runs: RunRef[]): void {
    this.setRuns([...new Map([...this.runs, ...runs].map((r) => [r.id, r])).values()]);
  }

  private _onReady(): void {
    this.ready = true;
    const { exports, problems } = pickColumns(this.runs);
    this.columns = exports;
    const restore: PlaygroundRestore = { runs: this.runs };
    this._post({ type: 'init', models: exports.map(toModel), problems, restore });
  }

  private _post(msg: HostToPlayground): void {
    if (this.ready) void this._panel.webview.postMessage(msg);
  }

  /** The same prompt and seeds through each chosen export, one after the other (each uses every core). */
  private async _generate(prompt: string, settings: GenSettings, ids: string[]): Promise<void> {
    this.abort?.abort();
    const job = ++this.job;
    const abort = (this.abort = new AbortController());
    if (!vscode.workspace.isTrusted) {
      this._post({ type: 'error', job, model: null, message: 'Generation runs model files from this workspace: trust the workspace first (Restricted Mode).' });
      this._post({ type: 'done', job, cancelled: true });
      return;
    }
    const chosen = ids.map((id) => this.columns.find((c) => c.file === id)).filter((c): c is ExportInfo => !!c);
    await runJob(job, chosen, prompt, settings, this.sessions, (m) => this._post(m), abort.signal);
    if (this.abort === abort) this.abort = undefined;
  }

  dispose(): void {
    if (PlaygroundPanel.current === this) PlaygroundPanel.current = undefined;
    this.abort?.abort();
    void this.sessions.dispose();
    this._panel.dispose();
    while (this._disposables.length) this._disposables.pop()?.dispose();
  }
}
