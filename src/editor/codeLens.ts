// CodeLens at the top of an experiment file: "▶ Start run" / "▶ Start sweep (N runs)" and "Open last run";
// above `method:` the memory estimate (memoryEstimates.ts), or a lens that asks for it.
// In Restricted Mode the first lens says why starting is off instead, and there is no estimate.
import * as vscode from 'vscode';
import { estimateDetail, lensTitle } from '../core/memoryEstimate';
import { expandSweep } from '../core/sweep';
import { rangeOf } from '../core/yamlPositions';
import type { RunManager } from '../runManager';
import type { MemoryEstimates } from './memoryEstimates';
import { parsedExperiment } from './parsedCache';

export class ExperimentCodeLensProvider implements vscode.CodeLensProvider {
  static readonly selector: vscode.DocumentSelector = { pattern: '**/*.finetune.{yaml,yml}' };
  private readonly _onDidChange = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this._onDidChange.event;

  constructor(private readonly runs: RunManager, private readonly estimates: MemoryEstimates) {
    runs.onDidChangeRuns(() => this._onDidChange.fire());
    estimates.onDidChange(() => this._onDidChange.fire());
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
    if (vscode.workspace.isTrusted && parsed.ok && parsed.value) lenses.push(this.memoryLens(doc));
    return lenses;
  }

  /** Above `method:`: the estimate, "estimating…", why there is none, or a lens that asks for it. */
  private memoryLens(doc: vscode.TextDocument): vscode.CodeLens {
    const parsed = parsedExperiment(doc);
    const r = rangeOf({ doc: parsed.doc, lineCounter: parsed.lineCounter, text: parsed.text }, ['method'], 'key');
    const at = new vscode.Range(r.line - 1, 0, r.line - 1, 0);
    const state = this.estimates.get(doc);
    const command = { command: 'finetuneLab.estimateMemory', arguments: [doc.uri] };
    if (state?.state === 'running') return new vscode.CodeLens(at, { ...command, title: '$(sync~spin) Estimating memory…' });
    if (state?.state === 'done') return new vscode.CodeLens(at, { ...command, title: lensTitle(state.runs), tooltip: `${estimateDetail(state.runs)}\n\nClick to estimate again.` });
    if (state?.state === 'error') return new vscode.CodeLens(at, { ...command, title: `$(warning) No memory estimate: ${state.message}`, tooltip: 'Click to try again.' });
    return new vscode.CodeLens(at, { ...command, title: '$(server) Estimate memory', tooltip: 'Memory per GPU (or on the CPU) of each run, from the model\'s config alone: runs the trainer once. Saving the file does it too.' });
  }
}

/** The newest run made from this file (runs are listed newest first). */
export function lastRunFor(runs: RunManager, uri: vscode.Uri) {
  return runs.runs.find((r) => r.meta.experiment_file === uri.fsPath);
}
