// One parse per document version, shared by diagnostics, CodeLens, hover and quick fixes.
import * as fs from 'node:fs';
import type * as vscode from 'vscode';
import { parseExperiment, type LoadedExperiment } from '../core/experiment';
import { lmEvalCatalog } from '../core/lmEvalCatalog';
import type { LmEvalCheckOptions } from '../core/lmEvalChecks';
import { trainerDir } from '../core/trainerLaunch';
import { codeExecutionAllowed } from '../trainerEnv';

const cache = new WeakMap<vscode.TextDocument, { version: number; allow: boolean; parsed: LoadedExperiment }>();

/** lm_eval checks: names from the trainer shipped beside the bundle (trainer/finetune_lab/lm_eval_tasks.json). */
function lmEvalOptions(allow: boolean): LmEvalCheckOptions {
  const dir = trainerDir();
  return { catalog: (dirs) => lmEvalCatalog(dir, dirs), allowCodeExecution: allow, dirExists: (p) => fs.existsSync(p) && fs.statSync(p).isDirectory() };
}

export const isExperimentFile = (doc: { uri: vscode.Uri; fileName: string }): boolean =>
  /\.finetune\.ya?ml$/.test(doc.fileName);

export function parsedExperiment(doc: vscode.TextDocument): LoadedExperiment {
  const allow = codeExecutionAllowed();
  const hit = cache.get(doc);
  if (hit && hit.version === doc.version && hit.allow === allow) return hit.parsed;
  const file = doc.uri.scheme === 'file' ? doc.uri.fsPath : undefined;
  const parsed = parseExperiment(doc.getText(), file, { ...(file ? { fileExists: (p: string) => fs.existsSync(p) } : {}), lmEval: lmEvalOptions(allow) });
  cache.set(doc, { version: doc.version, allow, parsed });
  return parsed;
}
