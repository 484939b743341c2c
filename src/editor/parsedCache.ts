// One parse per document version, shared by diagnostics, CodeLens, hover and quick fixes.
import * as fs from 'node:fs';
import type * as vscode from 'vscode';
import { parseExperiment, type LoadedExperiment } from '../core/experiment';

const cache = new WeakMap<vscode.TextDocument, { version: number; parsed: LoadedExperiment }>();

export const isExperimentFile = (doc: { uri: vscode.Uri; fileName: string }): boolean =>
  /\.finetune\.ya?ml$/.test(doc.fileName);

export function parsedExperiment(doc: vscode.TextDocument): LoadedExperiment {
  const hit = cache.get(doc);
  if (hit && hit.version === doc.version) return hit.parsed;
  const file = doc.uri.scheme === 'file' ? doc.uri.fsPath : undefined;
  const parsed = parseExperiment(doc.getText(), file, file ? { fileExists: (p) => fs.existsSync(p) } : {});
  cache.set(doc, { version: doc.version, parsed });
  return parsed;
}
