// Hover on a key of an experiment file: the schema's description and the paper's guidance.
import * as vscode from 'vscode';
import { fieldDoc } from './fieldDocs';
import { parsedExperiment } from './parsedCache';
import { pathAtOffset } from './yamlPath';

export class ExperimentHoverProvider implements vscode.HoverProvider {
  static readonly selector: vscode.DocumentSelector = { pattern: '**/*.finetune.{yaml,yml}' };

  provideHover(doc: vscode.TextDocument, pos: vscode.Position): vscode.Hover | undefined {
    const parsed = parsedExperiment(doc);
    const hit = pathAtOffset(parsed.doc, doc.offsetAt(pos));
    if (!hit) return undefined;
    const text = fieldDoc(hit.path);
    if (!text) return undefined;
    const range = new vscode.Range(doc.positionAt(hit.start), doc.positionAt(hit.end));
    return new vscode.Hover(new vscode.MarkdownString(text), range);
  }
}
