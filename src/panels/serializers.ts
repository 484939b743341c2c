/** Brings open panels back after a window reload, from the state each webview saved (its `restore`). */
import * as vscode from 'vscode';
import { isRestoreInfo, type RestoreInfo } from '../core/messages';
import { isRunFolderOf } from '../core/runPath';
import { DashboardPanel } from './dashboardPanel';
import { ParetoPanel } from './paretoPanel';
import { SpectraPanel } from './spectraPanel';
import { webviewOptions, type PanelDeps } from './basePanel';

/**
 * What a webview saved, trusted only as far as it names runs of this workspace's runs folder: the
 * state comes from the webview, so a run whose folder is not `<runsDir>/<id>` is dropped, and the
 * Pareto view always reads the current runs folder.
 */
function restoreOf(state: unknown, runsDir: string | undefined): RestoreInfo | undefined {
  const r = (state as { restore?: unknown } | undefined)?.restore;
  if (!isRestoreInfo(r) || !runsDir) return undefined;
  return { ...r, runs: r.runs.filter((ref) => isRunFolderOf(runsDir, ref.id, ref.dir)), runsDir: r.runsDir === undefined ? undefined : runsDir };
}

export function registerPanelSerializers(deps: PanelDeps, runsDir: () => string | undefined): vscode.Disposable[] {
  const uri = deps.extensionUri;
  const revive = (fn: (panel: vscode.WebviewPanel, state: unknown) => void): vscode.WebviewPanelSerializer => ({
    async deserializeWebviewPanel(panel, state) {
      panel.webview.options = webviewOptions(uri);
      fn(panel, state);
    },
  });
  return [
    vscode.window.registerWebviewPanelSerializer(DashboardPanel.viewType, revive((panel, state) => {
      const r = restoreOf(state, runsDir());
      if (r?.runs.length) DashboardPanel.revive(panel, deps, r.runs); else panel.dispose();
    })),
    vscode.window.registerWebviewPanelSerializer(SpectraPanel.viewType, revive((panel, state) => {
      const r = restoreOf(state, runsDir());
      if (r?.runs.length) SpectraPanel.revive(panel, deps, r.runs); else panel.dispose();
    })),
    vscode.window.registerWebviewPanelSerializer(ParetoPanel.viewType, revive((panel, state) => {
      const r = restoreOf(state, runsDir());
      if (r?.runsDir) ParetoPanel.revive(panel, deps, r.runsDir, r.filter); else panel.dispose();
    })),
  ];
}
