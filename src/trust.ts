// Workspace trust: in Restricted Mode runs and charts can be browsed, but nothing starts a process.
import * as vscode from 'vscode';

export const RESTRICTED_REASON =
  'Finetune Lab starts Python processes, so starting, resuming and installing are off in Restricted Mode. Trust this workspace to train.';

/** True when trusted; otherwise says why and offers to manage trust. */
export async function requireTrust(action: string): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const choice = await vscode.window.showWarningMessage(`Cannot ${action}: ${RESTRICTED_REASON}`, 'Manage Workspace Trust');
  if (choice) await vscode.commands.executeCommand('workbench.trust.manage');
  return false;
}

export async function explainTrust(): Promise<void> {
  await requireTrust('start a run');
}
