// What src/extension.ts registers for the runs table: its command's handler and its panel serializer.
import * as vscode from 'vscode';
import { isTableScope } from '../core/tableProtocol';
import type { RunManager } from '../runManager';
import { webviewOptions } from '../webviewHtml';
import { RunsTablePanel } from './tablePanel';
import { scopeOf } from './scope';

/** "Open Runs Table": all runs (palette, view title), or an experiment's or sweep's (their context menu). */
export function openRunsTable(extensionUri: vscode.Uri, runs: RunManager, node?: unknown): Promise<unknown> {
  return RunsTablePanel.createOrShow(extensionUri, runs, scopeOf(node));
}

/** Brings a table back after a window reload from the scope its webview saved (its grid state is in the same state). */
export function registerRunsTableSerializer(context: vscode.ExtensionContext, runs: RunManager): vscode.Disposable {
  const uri = context.extensionUri;
  return vscode.window.registerWebviewPanelSerializer(RunsTablePanel.viewType, {
    async deserializeWebviewPanel(panel, state) {
      panel.webview.options = webviewOptions(uri);
      const scope = (state as { scope?: unknown } | undefined)?.scope;
      await RunsTablePanel.revive(panel, uri, runs, isTableScope(scope) ? scope : {});
    },
  });
}
