// What src/extension.ts registers for the playground: its commands' class and the panel serializer.
import * as vscode from 'vscode';
import { isPlaygroundRestore } from '../core/playgroundProtocol';
import { webviewOptions } from '../webviewHtml';
import { PlaygroundCommands } from './commands';
import { PlaygroundPanel } from './playgroundPanel';

export { PlaygroundCommands };

/** Brings the playground back after a window reload, from the runs its webview saved. */
export function registerPlaygroundSerializer(context: vscode.ExtensionContext): vscode.Disposable {
  const uri = context.extensionUri;
  return vscode.window.registerWebviewPanelSerializer(PlaygroundPanel.viewType, {
    async deserializeWebviewPanel(panel, state) {
      panel.webview.options = webviewOptions(uri);
      const r = (state as { restore?: unknown } | undefined)?.restore;
      if (isPlaygroundRestore(r) && r.runs.length) PlaygroundPanel.revive(panel, uri, r.runs); else panel.dispose();
    },
  });
}
