// A notification when a run ends: completed, failed (with its error) or stopped, with the actions
// that come next (Open Dashboard, Open Log).
import * as vscode from 'vscode';
import type { RunManager, StateChange } from './runManager';
import type { StoredRun } from './core/runStore';
import { stalledText } from './views/runFormat';

export class RunNotifications implements vscode.Disposable {
  private readonly subscription: vscode.Disposable;

  constructor(runs: RunManager) {
    this.subscription = vscode.Disposable.from(
      runs.onDidChangeState((c) => void this.notify(c)),
      runs.onDidStall((run) => void this.stalled(run)),
    );
  }

  /** A trainer went quiet (hung, frozen, or its file system gone): say so, offer to kill it. */
  private async stalled(run: StoredRun): Promise<void> {
    const choice = await vscode.window.showWarningMessage(
      `Finetune Lab: ${run.id} is ${stalledText(run.status)}; its process ${run.status.pid ?? ''} still exists.`, 'Kill Trainer', 'Open Log');
    if (choice === 'Kill Trainer') await vscode.commands.executeCommand('finetuneLab.killRun', run.id);
    else if (choice === 'Open Log') await vscode.commands.executeCommand('finetuneLab.openLog', run.id);
  }

  private async notify({ run, to }: StateChange): Promise<void> {
    if (run.meta.kind === 'analysis') return; // the command that started it says how it ended (src/analysis)
    let choice: string | undefined;
    const name = run.id;
    if (to === 'completed') {
      const loss = typeof run.status.loss === 'number' ? ` (loss ${run.status.loss.toPrecision(3)})` : '';
      choice = await vscode.window.showInformationMessage(`Finetune Lab: ${name} completed${loss}.`, 'Open Dashboard', 'Open Log');
    } else if (to === 'failed') {
      choice = await vscode.window.showErrorMessage(`Finetune Lab: ${name} failed: ${run.status.error ?? 'see its log'}`, 'Open Log', 'Open Dashboard');
    } else if (to === 'stopped') {
      choice = await vscode.window.showInformationMessage(`Finetune Lab: ${name} stopped at step ${run.status.step}.`, 'Resume', 'Open Dashboard');
    } else {
      return;
    }
    if (choice === 'Open Dashboard') await vscode.commands.executeCommand('finetuneLab.openDashboard', run.id);
    else if (choice === 'Open Log') await vscode.commands.executeCommand('finetuneLab.openLog', run.id);
    else if (choice === 'Resume') await vscode.commands.executeCommand('finetuneLab.resumeRun', run.id);
  }

  dispose(): void { this.subscription.dispose(); }
}
