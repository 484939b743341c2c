// The status bar item: the active run's progress ("$(sync~spin) lora-r16 120/500"); a click opens
// its dashboard. Hidden while nothing runs.
import * as vscode from 'vscode';
import type { RunManager } from './runManager';
import { runDescription, statusBarText } from './views/runFormat';

export class RunStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('finetuneLab.activeRun', vscode.StatusBarAlignment.Left, 50);
  private readonly subscription: vscode.Disposable;

  constructor(private readonly runs: RunManager) {
    this.item.name = 'Finetune Lab: active run';
    this.subscription = runs.onDidChangeRuns(() => this.update());
  }

  private update(): void {
    const running = this.runs.runs
      .filter((r) => r.status.state === 'running')
      .sort((a, b) => (b.status.started ?? 0) - (a.status.started ?? 0));
    const queued = this.runs.runs.filter((r) => r.status.state === 'queued').length;
    const active = running.find((r) => r.status.stale) ?? running[0]; // a stalled run needs the user first
    if (!active) {
      if (queued) {
        this.item.text = `$(clock) ${queued} queued`;
        this.item.tooltip = 'Finetune Lab: runs waiting to start';
        this.item.command = 'finetuneLab.runs.focus';
        this.item.show();
      } else {
        this.item.hide();
      }
      return;
    }
    const label = active.meta.label ?? active.id;
    this.item.text = statusBarText(label, active.status, running.length - 1);
    this.item.tooltip = `${active.id}\n${runDescription(active.status)}${queued ? `\n${queued} queued` : ''}\nClick to open its dashboard`;
    this.item.command = { command: 'finetuneLab.openDashboard', title: 'Open Dashboard', arguments: [active.id] };
    this.item.backgroundColor = active.status.stale ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.show();
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
