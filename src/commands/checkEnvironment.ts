// "Finetune Lab: Check Environment": runs `python -m finetune_lab doctor` and shows the answer as a
// Markdown preview (Python, torch + CUDA, GPUs with memory, libraries), with the fix for what is missing.
import { execFile } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { forgetPython, pythonCandidates, resolvePython } from '../python';
import { requireTrust } from '../trust';
import { doctorMarkdown, missingForTraining, type DoctorInfo } from './doctorReport';

/** `python -m finetune_lab doctor`, parsed; never rejects (the failure says why). */
export function runDoctor(python: string, trainerDir: string): Promise<{ info?: DoctorInfo; failure?: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, PYTHONPATH: [trainerDir, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter) };
    // cwd outside the workspace: python puts the cwd first on sys.path.
    execFile(python, ['-m', 'finetune_lab', 'doctor'], { cwd: os.tmpdir(), env, timeout: 120_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      try {
        // doctor prints one JSON object (pretty-printed); anything before it is a library's chatter.
        const out = stdout.trim();
        resolve({ info: JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1)) as DoctorInfo });
      } catch {
        resolve({ failure: (String(stderr || err?.message || 'no output').trim().split('\n').slice(-12).join('\n')) });
      }
    });
  });
}

export async function checkEnvironment(extensionUri: vscode.Uri): Promise<void> {
  const trainerDir = vscode.Uri.joinPath(extensionUri, 'trainer').fsPath;
  const report = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Finetune Lab: checking the Python environment…' },
    async () => {
      forgetPython();
      const found = await resolvePython();
      const tried = found.tried.map((t) => ({ path: t.candidate.path, source: t.candidate.source, problem: t.problem }));
      // Nothing has torch: still ask the last candidate (python3) what it has.
      const python = found.python ?? (await pythonCandidates()).pop();
      const doctor = python ? await runDoctor(python.path, trainerDir) : { failure: 'no Python interpreter found' };
      return { python, tried, ...doctor };
    },
  );
  const markdown = doctorMarkdown(report);
  const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content: markdown });
  await vscode.window.showTextDocument(doc, { preview: true });
  await vscode.commands.executeCommand('markdown.showPreview', doc.uri).then(undefined, () => undefined);
  const missing = missingForTraining(report.info);
  if (missing.length) {
    const actions = vscode.workspace.isTrusted ? ['Create Python Environment', 'Open Setting'] : ['Open Setting'];
    const choice = await vscode.window.showWarningMessage(`Finetune Lab cannot train yet: missing ${missing.join(', ')}.`, ...actions);
    if (choice === 'Create Python Environment') await vscode.commands.executeCommand('finetuneLab.installEnvironment');
    if (choice === 'Open Setting') await vscode.commands.executeCommand('workbench.action.openSettings', 'finetuneLab.pythonPath');
  }
}

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Creates <workspace>/.venv and pip-installs trainer/requirements.txt in a terminal the user watches. */
export async function installEnvironment(extensionUri: vscode.Uri): Promise<void> {
  if (!(await requireTrust('install the Python environment'))) return;
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) { void vscode.window.showErrorMessage('Open a folder first: the environment is created as .venv in it.'); return; }
  const requirements = vscode.Uri.joinPath(extensionUri, 'trainer', 'requirements.txt').fsPath;
  const ok = await vscode.window.showInformationMessage(
    'Create .venv in this workspace and install PyTorch, transformers, peft and safetensors from the Python package index?',
    { modal: true, detail: `python3 -m venv .venv\n.venv/bin/python -m pip install -r ${requirements}\n\nThis downloads about 1 GB (PyTorch).` },
    'Create and Install',
  );
  if (!ok) return;
  const win = process.platform === 'win32';
  const venvPython = win ? '.venv\\Scripts\\python.exe' : '.venv/bin/python';
  const terminal = vscode.window.createTerminal({ name: 'Finetune Lab: install', cwd: folder.uri });
  terminal.show();
  const base = win ? 'python' : 'python3';
  terminal.sendText(win
    ? `${base} -m venv .venv; ${venvPython} -m pip install --upgrade pip; ${venvPython} -m pip install -r "${requirements}"`
    : `${base} -m venv .venv && ${venvPython} -m pip install --upgrade pip && ${venvPython} -m pip install -r ${shq(requirements)} && echo 'Done: run "Finetune Lab: Check Environment" again.'`);
  forgetPython();
}
