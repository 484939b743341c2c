/**
 * The runs table: one webview per scope (every run, an experiment's, a sweep's), fed by a TableFeed
 * over the RunManager. The rows' actions run the same commands as the Runs view's context menu
 * (src/commands/runCommands.ts, src/playground/commands.ts) with the selected run ids. The shape of
 * vscode-extension-samples' CatCodingPanel: createOrShow/revive, the `ready` handshake, validated
 * messages, disposables emptied in dispose().
 */
import * as vscode from 'vscode';
import { webviewHtml, webviewOptions } from '../webviewHtml';
import { assertNever, isTableToHost, type TableAction, type TableScope, type TableToHost } from '../core/tableProtocol';
import type { RunManager } from '../runManager';
import { TableFeed } from './tableFeed';
import { scopeKey, scopeTitle } from './scope';

/** Each action and the command it runs, called as the Runs view calls it: (first id, all ids). */
const COMMANDS: Record<TableAction, { command: string; one?: boolean }> = {
  dashboard: { command: 'finetuneLab.openDashboard' },
  compare: { command: 'finetuneLab.compareRuns' },
  pareto: { command: 'finetuneLab.openPareto' },
  spectra: { command: 'finetuneLab.openSpectra' },
  playground: { command: 'finetuneLab.openPlayground' },
  stop: { command: 'finetuneLab.stopRun' },
  resume: { command: 'finetuneLab.resumeRun' },
  duplicate: { command: 'finetuneLab.duplicateRun', one: true },
  delete: { command: 'finetuneLab.deleteRun' },
  openLog: { command: 'finetuneLab.openLog', one: true },
  revealFolder: { command: 'finetuneLab.revealRunFolder', one: true },
};

export class RunsTablePanel {
  static readonly viewType = 'finetuneLab.runsTable';
  private static readonly open = new Map<string, RunsTablePanel>();

  static async createOrShow(extensionUri: vscode.Uri, runs: RunManager, scope: TableScope): Promise<RunsTablePanel> {
    const cur = RunsTablePanel.open.get(scopeKey(scope));
    if (cur) { cur.panel.reveal(undefined, false); return cur; }
    await runs.load();
    const panel = vscode.window.createWebviewPanel(RunsTablePanel.viewType, scopeTitle(scope), vscode.ViewColumn.Active, webviewOptions(extensionUri));
    return new RunsTablePanel(panel, extensionUri, runs, scope);
  }

  static async revive(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, runs: RunManager, scope: TableScope): Promise<RunsTablePanel> {
    RunsTablePanel.open.get(scopeKey(scope))?.dispose();
    await runs.load();
    return new RunsTablePanel(panel, extensionUri, runs, scope);
  }

  private readonly disposables: vscode.Disposable[] = [];
  private readonly feed: TableFeed;

  private constructor(private readonly panel: vscode.WebviewPanel, extensionUri: vscode.Uri, private readonly runs: RunManager, private readonly scope: TableScope) {
    RunsTablePanel.open.set(scopeKey(scope), this);
    this.feed = new TableFeed(runs, scope);
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, 'table', scopeTitle(scope));
    panel.onDidDispose(() => this.dispose(), null, this.disposables);
    panel.webview.onDidReceiveMessage((m: unknown) => this.onMessage(m), null, this.disposables);
    // A hidden webview is torn down (its grid state is in setState): stop posting until it is back.
    panel.onDidChangeViewState(() => { if (!panel.visible) this.feed.detach(); }, null, this.disposables);
    this.disposables.push(vscode.workspace.onDidGrantWorkspaceTrust(() => this.attach()));
  }

  private onMessage(m: unknown): void {
    if (!isTableToHost(m)) { console.warn('[finetune-lab] runs table: dropped an invalid webview message'); return; }
    const msg: TableToHost = m;
    switch (msg.type) {
      case 'ready': return this.attach();
      case 'action': return void this.act(msg.action, msg.runIds);
      case 'export': return void this.saveCsv(msg.name, msg.data);
      case 'log': return msg.level === 'error' ? console.error(`[finetune-lab runs table] ${msg.message}`) : console.log(`[finetune-lab runs table] ${msg.message}`);
      default: return assertNever(msg);
    }
  }

  /** After the webview's `ready` (also after it was hidden and shown, or revived): everything, then updates. */
  private attach(): void {
    this.feed.attach((msg) => void this.panel.webview.postMessage(msg), scopeTitle(this.scope), vscode.workspace.isTrusted);
  }

  private async act(action: TableAction, ids: string[]): Promise<void> {
    const known = ids.filter((id) => this.runs.find(id));
    if (!known.length) { void vscode.window.showInformationMessage('Finetune Lab: the selected runs are gone (deleted?).'); return; }
    const { command, one } = COMMANDS[action];
    await vscode.commands.executeCommand(command, known[0], one ? undefined : known);
  }

  private async saveCsv(name: string, data: string): Promise<void> {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const target = await vscode.window.showSaveDialog({ defaultUri: folder ? vscode.Uri.joinPath(folder, name) : undefined, filters: { CSV: ['csv'] } });
    if (!target) return;
    await vscode.workspace.fs.writeFile(target, Buffer.from(data, 'utf8'));
    void vscode.window.showInformationMessage(`Saved ${vscode.workspace.asRelativePath(target)}`);
  }

  dispose(): void {
    if (RunsTablePanel.open.get(scopeKey(this.scope)) === this) RunsTablePanel.open.delete(scopeKey(this.scope));
    this.feed.dispose();
    this.panel.dispose();
    while (this.disposables.length) this.disposables.pop()?.dispose();
  }
}
