// "Finetune Lab: New Experiment": template → base model → data → evaluations → name, then writes
// `<name>.finetune.yaml` in the workspace with the paper's defaults and opens it.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { BUILTIN_DATA, BUILTIN_MODELS, EVAL_CHOICES, experimentTemplate, sanitizeName, TEMPLATES, type DataFormat, type EvalChoice, type TemplateKind } from '../experimentTemplates';

const TITLE = 'New Experiment';

async function pickTemplate(): Promise<TemplateKind | undefined> {
  const pick = await vscode.window.showQuickPick(
    TEMPLATES.map((t) => ({ label: t.label, detail: t.detail, template: t.kind })),
    { title: `${TITLE} (1/5): template`, placeHolder: 'What do you want to compare?', ignoreFocusOut: true },
  );
  return pick?.template;
}

async function pickBase(): Promise<string | undefined> {
  const items: (vscode.QuickPickItem & { base?: string; ask?: 'hf' | 'folder' })[] = [
    ...BUILTIN_MODELS.map((m) => ({ label: m.base, detail: m.detail, base: m.base })),
    { label: '', kind: vscode.QuickPickItemKind.Separator },
    { label: '$(hubot) Hugging Face model…', detail: 'a model name such as HuggingFaceTB/SmolLM2-135M (downloaded by transformers)', ask: 'hf' },
    { label: '$(folder) Local model folder…', detail: 'a folder with config.json and weights', ask: 'folder' },
  ];
  const pick = await vscode.window.showQuickPick(items, { title: `${TITLE} (2/5): base model`, ignoreFocusOut: true });
  if (!pick) return undefined;
  if (pick.base) return pick.base;
  if (pick.ask === 'hf') {
    const name = await vscode.window.showInputBox({
      title: `${TITLE}: Hugging Face model`, prompt: 'Model id on the Hugging Face Hub', placeHolder: 'HuggingFaceTB/SmolLM2-135M', ignoreFocusOut: true,
      validateInput: (v) => (/^[\w.-]+(\/[\w.-]+)?$/.test(v.trim()) ? undefined : 'owner/name'),
    });
    return name ? `hf:${name.trim()}` : undefined;
  }
  const folder = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use this model', title: 'Model folder' });
  return folder?.[0] ? `hf:${folder[0].fsPath}` : undefined;
}

async function pickData(expDir: string): Promise<{ train: string; format: DataFormat } | undefined> {
  const items: (vscode.QuickPickItem & { train?: string; format?: DataFormat })[] = [
    ...BUILTIN_DATA.map((d) => ({ label: d.train, detail: d.detail, train: d.train, format: d.format })),
    { label: '$(file) A .jsonl file…', detail: 'one JSON object a line: {"text": …}, {"prompt": …, "response": …} or {"messages": [{"role": …, "content": …}]}' },
  ];
  const pick = await vscode.window.showQuickPick(items, { title: `${TITLE} (3/5): training data (the target domain)`, ignoreFocusOut: true });
  if (!pick) return undefined;
  if (pick.train && pick.format) return { train: pick.train, format: pick.format };
  const file = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'JSON Lines': ['jsonl'] }, title: 'Training data' });
  if (!file?.[0]) return undefined;
  const format = await vscode.window.showQuickPick(
    [
      { label: 'instruction', detail: 'prompt/response pairs; the prompt is masked out of the loss' },
      { label: 'chat', detail: 'messages (system, user, assistant) through the model\'s own chat template; the loss on the assistant\'s replies only' },
      { label: 'text', detail: 'plain text, packed (continued pretraining)' },
    ],
    { title: `${TITLE}: data format`, ignoreFocusOut: true },
  );
  if (!format) return undefined;
  const rel = path.relative(expDir, file[0].fsPath).split(path.sep).join('/');
  return { train: rel.startsWith('..') ? file[0].fsPath : rel, format: format.label as DataFormat };
}

/** The evaluations: held-out losses and KL picked; the paper's benchmarks (lm-eval) by name. */
async function pickEvals(): Promise<EvalChoice[] | undefined> {
  const picks = await vscode.window.showQuickPick(
    EVAL_CHOICES.map((c) => ({ label: c.label, detail: c.detail, picked: c.picked, id: c.id })),
    { title: `${TITLE} (4/5): evaluations`, placeHolder: 'Learning and forgetting scores, at step 0 and every few steps', canPickMany: true, ignoreFocusOut: true },
  );
  return picks?.map((p) => p.id);
}

export async function newExperiment(): Promise<vscode.Uri | undefined> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    const open = await vscode.window.showWarningMessage('Open a folder first: the experiment file and its runs live in the workspace.', 'Open Folder');
    if (open) await vscode.commands.executeCommand('vscode.openFolder');
    return undefined;
  }
  const kind = await pickTemplate();
  if (!kind) return undefined;
  const base = await pickBase();
  if (!base) return undefined;
  const data = await pickData(folder.uri.fsPath);
  if (!data) return undefined;
  const evals = await pickEvals();
  if (!evals) return undefined;
  const suggested = kind === 'lora-vs-full' ? 'lora-vs-full' : kind === 'lr-sweep' ? 'lora-lr-sweep' : kind;
  const input = await vscode.window.showInputBox({
    title: `${TITLE} (5/5): name`, prompt: 'Experiment name: the file is <name>.finetune.yaml and run folders start with it',
    value: suggested, ignoreFocusOut: true,
    validateInput: (v) => (sanitizeName(v) === v.trim() ? undefined : `Letters, digits, '-', '_' and '.': ${sanitizeName(v)}`),
  });
  if (input === undefined) return undefined;
  const name = sanitizeName(input);
  let target = vscode.Uri.joinPath(folder.uri, `${name}.finetune.yaml`);
  for (let n = 2; await exists(target); n++) target = vscode.Uri.joinPath(folder.uri, `${name}-${n}.finetune.yaml`);
  const finalName = path.basename(target.fsPath).replace(/\.finetune\.yaml$/, '');
  const text = experimentTemplate({ kind, name: finalName, base, train: data.train, format: data.format, evals });
  await vscode.workspace.fs.writeFile(target, Buffer.from(text, 'utf8'));
  await vscode.window.showTextDocument(target);
  return target;
}

async function exists(uri: vscode.Uri): Promise<boolean> {
  try { await vscode.workspace.fs.stat(uri); return true; } catch { return false; }
}
