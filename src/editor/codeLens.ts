// CodeLens at the top of an experiment file: "▶ Start run" / "▶ Start sweep (N runs)" and "Open last run".
// In Restricted Mode the first lens says why starting is off instead.
import * as vscode from 'vscode';
import { expandSweep } from '../core/sweep';
import type { RunManager } from '../runManager';
import { parsedExperiment } from './parsedCache';

export class ExperimentCodeLensProvider implements vscode.CodeLensProvider {
  static readonly selector: vscode.DocumentSelector = { pattern: '**/*.finetune.{yaml,yml}' };
  private readonly _onDidChange = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this._onDidChange.event;

  constructor(private readonly runs: RunManager) {
    runs.onDidChangeRuns(() => this._onDidChange.fire());
    vscode.workspace.onDidGrantWorkspaceTrust(() => this._onDidChange.fire());
  }

  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    const top = new vscode.Range(0, 0, 0, 0);
    const parsed = parsedExperiment(doc);
    const lenses: vscode.CodeLens[] = [];
    if (!vscode.workspace.isTrusted) {
      lenses.push(new vscode.CodeLens(top, { title: '$(workspace-untrusted) Start is off in Restricted Mode: trust this workspace to train', command: 'finetuneLab.explainTrust' }));
    } else if (!parsed.ok || !parsed.value) {
      const first = parsed.diagnostics.find((d) => d.severity === 'error');
      lenses.push(new vscode.CodeLens(top, {
        title: `$(error) Fix ${parsed.diagnostics.filter((d) => d.severity === 'error').length} error(s) to start${first ? `: line ${first.line}` : ''}`,
        command: 'finetuneLab.startRun', arguments: [doc.uri],
      }));
    } else {
      let n = 1;
      try { n = expandSweep(parsed.value).length; } catch { /* counted again at start */ }
      const title = n > 1 ? `$(play) Start sweep (${n} runs)` : '$(play) Start run';
      lenses.push(new vscode.CodeLens(top, { title, command: 'finetuneLab.startRun', arguments: [doc.uri], tooltip: 'Create the run folder(s) and start the trainer' }));
    }
    const last = lastRunFor(this.runs, doc.uri);
    if (last) {
      lenses.push(new vscode.CodeLens(top, { title: `$(history) Open last run (${last.status.state})`, command: 'finetuneLab.openLastRun', arguments: [doc.uri] }));
    }
    lenses.push(new vscode.CodeLens(top, { title: '$(preview) Form', command: 'finetuneLab.openExperimentForm', arguments: [doc.uri] }));
    return lenses;
  }
}

/** The newest run made from this file (runs are listed newest first). */
export function lastRunFor(runs: RunManager, uri: vscode.Uri) {
  return runs.runs.find((r) => r.meta.experiment_file === uri.fsPath);
}
