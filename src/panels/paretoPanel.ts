/**
 * Learning vs forgetting over the runs of an experiment (or chosen runs): the paper's Fig. 1.
 * Runs are found with the core's RunStore and re-listed every few seconds, so a sweep's runs
 * appear as they start.
 */
import * as vscode from 'vscode';
import { RunStore } from '../core/runStore';
import type { RestoreInfo } from '../core/messages';
import { RunViewPanel, webviewOptions, type PanelDeps } from './basePanel';

export interface ParetoFilter { experimentName?: string; runIds?: string[] }

const RELIST_MS = 5000;

export class ParetoPanel extends RunViewPanel {
  static readonly viewType = 'finetuneLab.pareto';
  static currentPanel: ParetoPanel | undefined;

  static createOrShow(deps: PanelDeps, runsDir: string, filter?: ParetoFilter): ParetoPanel {
    const cur = ParetoPanel.currentPanel;
    if (cur && cur.runsDir === runsDir && JSON.stringify(cur.filter ?? {}) === JSON.stringify(filter ?? {})) {
      cur._panel.reveal(undefined, true);
      return cur;
    }
    cur?.dispose();
    const title = filter?.experimentName ? `Pareto: ${filter.experimentName}` : 'Learning vs forgetting';
    const panel = vscode.window.createWebviewPanel(ParetoPanel.viewType, title, vscode.ViewColumn.Active, webviewOptions(deps.extensionUri));
    return new ParetoPanel(panel, deps, runsDir, filter);
  }

  static revive(panel: vscode.WebviewPanel, deps: PanelDeps, runsDir: string, filter?: ParetoFilter): ParetoPanel {
    ParetoPanel.currentPanel?.dispose();
    return new ParetoPanel(panel, deps, runsDir, filter);
  }

  private readonly store: RunStore;
  private readonly timer: NodeJS.Timeout;
  private constructor(panel: vscode.WebviewPanel, deps: PanelDeps, private readonly runsDir: string, private readonly filter?: ParetoFilter) {
    super(panel, deps, 'pareto', []);
    ParetoPanel.currentPanel = this;
    this.store = new RunStore(runsDir);
    void this.relist();
    this.timer = setInterval(() => void this.relist(), RELIST_MS);
  }

  private async relist(): Promise<void> {
    const all = await this.store.list();
    const chosen = all.filter((r) =>
      (!this.filter?.experimentName || r.meta?.experiment_name === this.filter.experimentName)
      && (!this.filter?.runIds?.length || this.filter.runIds.includes(r.id)));
    const known = new Set(this.feed.refs.map((r) => r.id));
    const fresh = chosen.filter((r) => !known.has(r.id));
    if (fresh.length === 0) return;
    for (const r of fresh) this.feed.add({ id: r.id, dir: r.dir });
    this._reinit();
  }

  protected restoreInfo(): RestoreInfo { return { runs: this.feed.refs, runsDir: this.runsDir, filter: this.filter }; }
  protected onDispose(): void {
    clearInterval(this.timer);
    if (ParetoPanel.currentPanel === this) ParetoPanel.currentPanel = undefined;
  }
}
