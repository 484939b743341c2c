/** The run dashboard (one run) or Compare (several runs overlaid): loss, LR, grad norm, throughput, memory, evals. */
import * as vscode from 'vscode';
import type { RestoreInfo } from '../core/messages';
import { RunViewPanel, runSetKey, webviewOptions, type PanelDeps } from './basePanel';
import type { RunRef } from '../core/runRef';

export class DashboardPanel extends RunViewPanel {
  static readonly viewType = 'finetuneLab.dashboard';
  /** One panel per run set. */
  static readonly panels = new Map<string, DashboardPanel>();

  static createOrShow(deps: PanelDeps, runs: RunRef[]): DashboardPanel {
    const key = runSetKey(runs);
    const open = DashboardPanel.panels.get(key);
    if (open) { open._panel.reveal(undefined, true); return open; }
    const title = runs.length === 1 ? `Run: ${runs[0].id}` : `Compare ${runs.length} runs`;
    const panel = vscode.window.createWebviewPanel(DashboardPanel.viewType, title, vscode.ViewColumn.Active, webviewOptions(deps.extensionUri));
    return new DashboardPanel(panel, deps, runs);
  }

  static revive(panel: vscode.WebviewPanel, deps: PanelDeps, runs: RunRef[]): DashboardPanel {
    return new DashboardPanel(panel, deps, runs);
  }

  private readonly key: string;
  private constructor(panel: vscode.WebviewPanel, deps: PanelDeps, private readonly runs: RunRef[]) {
    super(panel, deps, 'dashboard', runs);
    this.key = runSetKey(runs);
    DashboardPanel.panels.set(this.key, this);
  }

  protected restoreInfo(): RestoreInfo { return { runs: this.runs }; }
  protected onDispose(): void { if (DashboardPanel.panels.get(this.key) === this) DashboardPanel.panels.delete(this.key); }
}
