/** Weight-change spectra of one run, or several side by side (LoRA next to full finetuning), with rank advice. */
import * as vscode from 'vscode';
import type { RestoreInfo } from '../core/messages';
import { RunViewPanel, runSetKey, webviewOptions, type PanelDeps } from './basePanel';
import type { RunRef } from '../core/runRef';

export class SpectraPanel extends RunViewPanel {
  static readonly viewType = 'finetuneLab.spectra';
  static readonly panels = new Map<string, SpectraPanel>();

  static createOrShow(deps: PanelDeps, runs: RunRef[]): SpectraPanel {
    const key = runSetKey(runs);
    const open = SpectraPanel.panels.get(key);
    if (open) { open._panel.reveal(undefined, true); return open; }
    const title = runs.length === 1 ? `Spectra: ${runs[0].id}` : `Spectra: ${runs.length} runs`;
    const panel = vscode.window.createWebviewPanel(SpectraPanel.viewType, title, vscode.ViewColumn.Active, webviewOptions(deps.extensionUri));
    return new SpectraPanel(panel, deps, runs);
  }

  static revive(panel: vscode.WebviewPanel, deps: PanelDeps, runs: RunRef[]): SpectraPanel {
    return new SpectraPanel(panel, deps, runs);
  }

  private readonly key: string;
  private constructor(panel: vscode.WebviewPanel, deps: PanelDeps, private readonly runs: RunRef[]) {
    super(panel, deps, 'spectra', runs);
    this.key = runSetKey(runs);
    SpectraPanel.panels.set(this.key, this);
  }

  protected restoreInfo(): RestoreInfo { return { runs: this.runs }; }
  protected onDispose(): void { if (SpectraPanel.panels.get(this.key) === this) SpectraPanel.panels.delete(this.key); }
}
