// What src/extension.ts registers for the playground: its commands' class and the panel serializer.
import * as vscode from 'vscode';
import { isPlaygroundRestore } from '../core/playgroundProtocol';
import { isRunFolderOf } from '../core/runPath';
import { webviewOptions } from '../webviewHtml';
import { PlaygroundCommands } from './commands';
import { PlaygroundPanel } from './playgroundPanel';

export { PlaygroundCommands };

/**
 * Brings the playground back after a window reload, from the runs its webview saved: only runs whose
 * folder is `<runsDir>/<id>` of this workspace (the state is the webview's word, and the playground
 * loads model files from those folders).
 */
export function registerPlaygroundSerializer(context: vscode.ExtensionContext, runsDir: () => string | undefined): vscode.Disposable {
  const uri = context.extensionUri;
  return vscode.window.registerWebviewPanelSerializer(PlaygroundPanel.viewType, {
    async deserializeWebviewPanel(panel, state) {
      panel.webview.options = webviewOptions(uri);
      const r = (state as { restore?: unknown } | undefined)?.restore;
      const dir = runsDir();
      const runs = isPlaygroundRestore(r) && dir ? r.runs.filter((ref) => isRunFolderOf(dir, ref.id, ref.dir)) : [];
      if (runs.length) PlaygroundPanel.revive(panel, uri, runs); else panel.dispose();
    },
  });
}
