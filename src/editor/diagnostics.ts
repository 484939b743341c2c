// Problems for *.finetune.yaml: the core's parse, schema and paper lints as a DiagnosticCollection,
// refreshed on open and (debounced) on change, whether or not the YAML extension is installed.
import * as vscode from 'vscode';
import type { Diagnostic as CoreDiagnostic } from '../core/diagnostics';
import { isExperimentFile, parsedExperiment } from './parsedCache';

export const DIAGNOSTIC_SOURCE = 'Finetune Lab';

/** Core diagnostics are 1-based (as the CLI prints file:line:col); vscode ranges are 0-based. */
export function toRange(d: Pick<CoreDiagnostic, 'line' | 'column' | 'endLine' | 'endColumn'>): vscode.Range {
  const start = new vscode.Position(Math.max(0, d.line - 1), Math.max(0, d.column - 1));
  const end = new vscode.Position(Math.max(0, d.endLine - 1), Math.max(0, d.endColumn - 1));
  return new vscode.Range(start, end.isBefore(start) ? start : end);
}

const SEVERITY: Record<CoreDiagnostic['severity'], vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
};

export function toVscodeDiagnostic(d: CoreDiagnostic): vscode.Diagnostic {
  const cite = d.cite ? ` (${d.cite})` : '';
  const out = new vscode.Diagnostic(toRange(d), d.message + cite, SEVERITY[d.severity] ?? vscode.DiagnosticSeverity.Warning);
  out.source = DIAGNOSTIC_SOURCE;
  if (d.code) out.code = d.code;
  return out;
}

export class ExperimentDiagnostics implements vscode.Disposable {
  private readonly collection = vscode.languages.createDiagnosticCollection('finetuneLab');
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly disposables: vscode.Disposable[] = [this.collection];

  constructor(private readonly delayMs = 300) {
    this.disposables.push(
      vscode.workspace.onDidOpenTextDocument((d) => this.update(d)),
      vscode.workspace.onDidChangeTextDocument((e) => this.schedule(e.document)),
      vscode.workspace.onDidCloseTextDocument((d) => this.clear(d)),
      // allowing code execution turns the refusal on an unsafe lm_eval task into a note
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('finetuneLab.allowCodeExecution')) for (const d of vscode.workspace.textDocuments) this.update(d);
      }),
    );
    for (const d of vscode.workspace.textDocuments) this.update(d);
  }

  private schedule(doc: vscode.TextDocument): void {
    if (!isExperimentFile(doc)) return;
    const key = doc.uri.toString();
    clearTimeout(this.timers.get(key));
    this.timers.set(key, setTimeout(() => { this.timers.delete(key); this.update(doc); }, this.delayMs));
  }

  update(doc: vscode.TextDocument): void {
    if (!isExperimentFile(doc) || doc.isClosed) return;
    this.collection.set(doc.uri, parsedExperiment(doc).diagnostics.map(toVscodeDiagnostic));
  }

  private clear(doc: vscode.TextDocument): void {
    clearTimeout(this.timers.get(doc.uri.toString()));
    this.collection.delete(doc.uri);
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    for (const d of this.disposables) d.dispose();
  }
}
