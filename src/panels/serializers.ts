/** Brings open panels back after a window reload, from the state each webview saved (its `restore`). */
import * as vscode from 'vscode';
import { isRestoreInfo, type RestoreInfo } from '../core/messages';
import { DashboardPanel } from './dashboardPanel';
import { ParetoPanel } from './paretoPanel';
import { SpectraPanel } from './spectraPanel';
import { webviewOptions, type PanelDeps } from './basePanel';

function restoreOf(state: unknown): RestoreInfo | undefined {
  const r = (state as { restore?: unknown } | undefined)?.restore;
  return isRestoreInfo(r) ? r : undefined;
}

export function registerPanelSerializers(deps: PanelDeps): vscode.Disposable[] {
  const uri = deps.extensionUri;
  const revive = (fn: (panel: vscode.WebviewPanel, state: unknown) => void): vscode.WebviewPanelSerializer => ({
    async deserializeWebviewPanel(panel, state) {
      panel.webview.options = webviewOptions(uri);
      fn(panel, state);
    },
  });
  return [
    vscode.window.registerWebviewPanelSerializer(DashboardPanel.viewType, revive((panel, state) => {
      const r = restoreOf(state);
      if (r?.runs.length) DashboardPanel.revive(panel, deps, r.runs); else panel.dispose();
    })),
    vscode.window.registerWebviewPanelSerializer(SpectraPanel.viewType, revive((panel, state) => {
      const r = restoreOf(state);
      if (r?.runs.length) SpectraPanel.revive(panel, deps, r.runs); else panel.dispose();
    })),
    vscode.window.registerWebviewPanelSerializer(ParetoPanel.viewType, revive((panel, state) => {
      const r = restoreOf(state);
      if (r?.runsDir) ParetoPanel.revive(panel, deps, r.runsDir, r.filter); else panel.dispose();
    })),
  ];
}
