// Quick fixes from the core's Diagnostic.fix (alpha = 2·rank, a misspelt key, ...), applied as a
// small WorkspaceEdit so comments, key order and undo all survive.
import * as vscode from 'vscode';
import { toRange, DIAGNOSTIC_SOURCE } from './diagnostics';
import { parsedExperiment } from './parsedCache';
import { renameKeyEdit, setValueEdit, splitPath } from './yamlEdit';

export class ExperimentQuickFixProvider implements vscode.CodeActionProvider {
  static readonly selector: vscode.DocumentSelector = { pattern: '**/*.finetune.{yaml,yml}' };
  static readonly metadata: vscode.CodeActionProviderMetadata = { providedCodeActionKinds: [vscode.CodeActionKind.QuickFix] };

  provideCodeActions(doc: vscode.TextDocument, range: vscode.Range, ctx: vscode.CodeActionContext): vscode.CodeAction[] {
    const out: vscode.CodeAction[] = [];
    const text = doc.getText();
    // The context's diagnostics are copies made by the editor: match the core's by range and code.
    for (const d of parsedExperiment(doc).diagnostics) {
      if (!d.fix) continue;
      const r = toRange(d);
      if (!r.intersection(range) && !r.contains(range)) continue;
      const path = splitPath(d.fix.path);
      const edit = d.fix.renameKey ? renameKeyEdit(text, path, d.fix.renameKey) : setValueEdit(text, path, d.fix.value);
      if (!edit) continue;
      const action = new vscode.CodeAction(d.fix.title, vscode.CodeActionKind.QuickFix);
      action.diagnostics = ctx.diagnostics.filter((v) => v.source === DIAGNOSTIC_SOURCE && v.range.isEqual(r) && (d.code === undefined || v.code === d.code));
      action.isPreferred = true;
      action.edit = new vscode.WorkspaceEdit();
      action.edit.replace(doc.uri, new vscode.Range(doc.positionAt(edit.start), doc.positionAt(edit.end)), edit.text);
      out.push(action);
    }
    return out;
  }
}
