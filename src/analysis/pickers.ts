// The questions "Analyse Adapter or Checkpoint…" and "Reduce Intruders…" ask: which base, which
// evaluations, which λ. Quick picks whose items say where each answer comes from.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { baseProblem, LAMBDA_SWEEP, parseLambdas } from '../core/analysisLaunch';
import { builtinCacheSize, declaredBase, modelFolders } from '../core/finetuneFolder';

const BUILTINS: readonly [string, string][] = [
  ['builtin:tiny', '~0.5M parameters: tests'], ['builtin:small', '~1M parameters: the demo'],
  ['builtin:125m', 'GPU size'], ['builtin:350m', 'GPU size'],
];
const EXCLUDE = '{**/node_modules/**,**/.finetune/**,**/.venv/**,**/.git/**}';

interface FolderItem extends vscode.QuickPickItem { folder?: string; browse?: true }

/** The adapter or checkpoint to analyse: those in the workspace (adapter_config.json, config.json + weights), or browse. */
export async function pickFinetuneFolder(): Promise<string | undefined> {
  const [adapters, configs] = await Promise.all([
    vscode.workspace.findFiles('**/adapter_config.json', EXCLUDE, 200), vscode.workspace.findFiles('**/config.json', EXCLUDE, 500)]);
  const items: FolderItem[] = [];
  for (const u of adapters) {
    const folder = path.dirname(u.fsPath);
    const base = declaredBase(folder);
    items.push({ label: `$(symbol-misc) ${vscode.workspace.asRelativePath(folder)}`, folder, description: 'PEFT adapter', detail: base ? `base: ${builtinCacheSize(base) ? `builtin:${builtinCacheSize(base)}` : base}` : undefined });
  }
  for (const folder of modelFolders(configs.map((u) => u.fsPath), '')) {
    if (!items.some((i) => i.folder === folder)) items.push({ label: `$(package) ${vscode.workspace.asRelativePath(folder)}`, folder, description: 'model checkpoint (config.json and weights)' });
  }
  items.push({ label: '$(folder-opened) Browse…', browse: true, description: 'a folder outside this list' });
  const pick = await vscode.window.showQuickPick(items, {
    title: 'Analyse which finetune?', placeHolder: 'A PEFT adapter (adapter_config.json) or a full checkpoint (config.json and weights), made by any tool', matchOnDescription: true,
  });
  if (!pick || !pick.browse) return pick?.folder;
  const picked = await vscode.window.showOpenDialog({
    canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Analyse',
    title: 'A PEFT adapter (adapter_config.json) or a model checkpoint (config.json) folder', defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
  });
  return picked?.[0]?.fsPath;
}

interface BaseItem extends vscode.QuickPickItem { base?: string; type?: true }

/** The base the finetune started from: its own declared base, model folders in the workspace, the built-ins, or typed. */
export async function pickBase(folder: string): Promise<string | undefined> {
  const items: BaseItem[] = [];
  const declared = declaredBase(folder);
  if (declared) {
    const size = builtinCacheSize(declared);
    items.push({ label: size ? `builtin:${size}` : declared, base: declared, description: 'named by the finetune itself',
      detail: size ? `Finetune Lab's cached built-in ${size} base (${declared.slice(3)})` : undefined });
  }
  const configs = await vscode.workspace.findFiles('**/config.json', EXCLUDE, 500);
  const folders = modelFolders(configs.map((u) => u.fsPath), folder);
  if (folders.length) items.push({ label: 'in this workspace', kind: vscode.QuickPickItemKind.Separator });
  for (const f of folders) {
    const base = `hf:${f}`;
    if (base !== declared) items.push({ label: `hf:${vscode.workspace.asRelativePath(f)}`, base, description: 'a model folder (config.json and weights)' });
  }
  items.push({ label: 'built-in', kind: vscode.QuickPickItemKind.Separator });
  for (const [base, what] of BUILTINS) items.push({ label: base, base, description: what });
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator }, { label: '$(edit) Type a base…', type: true, description: 'hf:<Hub name or folder>, or builtin:<size>' });
  const pick = await vscode.window.showQuickPick(items, {
    title: `Analyse ${path.basename(folder)}: which base did it start from?`,
    placeHolder: 'The model the adapter or checkpoint was trained from (its shapes must match)', matchOnDescription: true,
  });
  if (!pick) return undefined;
  if (!pick.type) return pick.base;
  const typed = await vscode.window.showInputBox({
    title: 'The base model', prompt: 'hf:<Hugging Face name or local folder> or builtin:<tiny|small|125m|350m>',
    value: 'hf:', validateInput: (v) => baseProblem(v.trim())?.replace('--base ', ''),
  });
  return typed?.trim() || undefined;
}

interface ExperimentItem extends vscode.QuickPickItem { file?: string }

/** Which evaluations and spectra settings: the defaults, or an experiment file's (when the workspace has any). */
export async function pickExperiment(): Promise<{ file?: string } | undefined> {
  const files = await vscode.workspace.findFiles('**/*.finetune.yaml', EXCLUDE, 100);
  if (!files.length) return {};
  const items: ExperimentItem[] = [
    { label: 'Default evaluations', description: 'held-out Python code loss (learning), held-out English loss (forgetting)' },
    ...files.map((f) => ({ label: vscode.workspace.asRelativePath(f), description: 'its evals, spectra and seq_len', file: f.fsPath })),
  ];
  const pick = await vscode.window.showQuickPick(items, { title: 'Evaluate the base and the finetune with…', placeHolder: 'Learning and forgetting tasks: the Pareto plot\'s axes' });
  return pick && { file: pick.file };
}

interface LambdaItem extends vscode.QuickPickItem { lambdas?: number[]; type?: true }

/** λ for PEFT's reduce_intruder_dimension, or a sweep of them. */
export async function pickLambdas(runId: string): Promise<number[] | undefined> {
  const items: LambdaItem[] = [
    { label: 'λ = 0.75', lambdas: [0.75], description: "PEFT's default: each intruder dimension scaled to 75%" },
    { label: 'λ = 0.5', lambdas: [0.5] },
    { label: 'λ = 0.25', lambdas: [0.25] },
    { label: 'λ = 0', lambdas: [0], description: 'intruder dimensions removed' },
    { label: `Sweep λ ${LAMBDA_SWEEP.join(', ')}`, lambdas: [...LAMBDA_SWEEP], description: 'one run per λ, drawn as a path on the Pareto plot' },
    { label: '$(edit) Enter λ or a list…', type: true },
  ];
  const pick = await vscode.window.showQuickPick(items, {
    title: `Reduce intruders of ${runId}`, placeHolder: 'λ scales each intruder dimension: 1 keeps it as trained, 0 removes it (Shuttleworth et al. 2024)',
  });
  if (!pick) return undefined;
  if (!pick.type) return pick.lambdas;
  const typed = await vscode.window.showInputBox({
    title: 'λ (mitigation_lambda)', prompt: 'A number in [0, 1], or a comma-separated list for a sweep', value: LAMBDA_SWEEP.join(','),
    validateInput: (v) => { try { parseLambdas(v); return undefined; } catch (e) { return (e as Error).message; } },
  });
  return typed ? parseLambdas(typed) : undefined;
}
