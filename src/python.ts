// Which Python runs the trainer (DECISIONS.md): `finetuneLab.pythonPath` from user (machine) settings
// only → the Python extension's active interpreter (a soft dependency) → the workspace's .venv →
// python3. Each candidate is accepted only if it imports the trainer's libraries.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { findPython } from './core/trainerLaunch';

export interface PythonCandidate { path: string; source: string }
export type ResolvedPython = PythonCandidate;

/** The setting as the user set it, never a workspace's value (a workspace must not pick a program to run). */
export function userPythonPath(): string | undefined {
  const inspected = vscode.workspace.getConfiguration('finetuneLab').inspect<string>('pythonPath');
  const v = inspected?.globalValue?.trim();
  return v ? v : undefined;
}

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { id: string; path: string };
    resolveEnvironment(env: { id: string; path: string } | string): Promise<{ executable?: { uri?: vscode.Uri } } | undefined>;
  };
}

/** The Python extension's active interpreter for the folder, when that extension is installed. */
async function pythonExtensionInterpreter(folder?: vscode.Uri): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension<PythonExtensionApi>('ms-python.python');
  if (!ext) return undefined;
  try {
    const api = ext.isActive ? ext.exports : await ext.activate();
    const envPath = api?.environments?.getActiveEnvironmentPath(folder);
    if (!envPath) return undefined;
    const resolved = await api!.environments!.resolveEnvironment(envPath);
    return resolved?.executable?.uri?.fsPath ?? envPath.path;
  } catch {
    return undefined;
  }
}

export async function pythonCandidates(): Promise<PythonCandidate[]> {
  const out: PythonCandidate[] = [];
  const setting = userPythonPath();
  if (setting) out.push({ path: setting, source: 'setting finetuneLab.pythonPath' });
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const fromExt = await pythonExtensionInterpreter(folder);
  if (fromExt) out.push({ path: fromExt, source: 'the Python extension\'s interpreter' });
  // A workspace's .venv is the workspace's code: only in a trusted workspace.
  if (folder && vscode.workspace.isTrusted) {
    const venv = process.platform === 'win32'
      ? path.join(folder.fsPath, '.venv', 'Scripts', 'python.exe')
      : path.join(folder.fsPath, '.venv', 'bin', 'python');
    if (fs.existsSync(venv)) out.push({ path: venv, source: 'the workspace .venv' });
  }
  out.push({ path: process.platform === 'win32' ? 'python' : 'python3', source: 'python3 on PATH' });
  // In Restricted Mode, no interpreter that lives in the workspace (the Python extension may pick one).
  return vscode.workspace.isTrusted ? out : out.filter((c) => !insideWorkspace(c.path));
}

function insideWorkspace(p: string): boolean {
  if (!path.isAbsolute(p)) return false;
  return (vscode.workspace.workspaceFolders ?? []).some((f) => {
    const rel = path.relative(f.uri.fsPath, p);
    return !rel.startsWith('..') && !path.isAbsolute(rel);
  });
}

let cached: { key: string; python: ResolvedPython } | undefined;

/** The first candidate that imports the libraries (the core's findPython), with what each refused one lacked. */
export async function resolvePython(): Promise<{ python?: ResolvedPython; tried: { candidate: PythonCandidate; problem: string }[] }> {
  const candidates = await pythonCandidates();
  const key = candidates.map((c) => c.path).join('\0');
  if (cached && cached.key === key) return { python: cached.python, tried: [] };
  const found = await findPython(candidates.map((c) => c.path));
  const tried = found.tried.filter((t) => !t.ok).map((t) => ({
    candidate: candidates.find((c) => c.path === t.python) ?? { path: t.python, source: '' },
    problem: t.error ?? `missing ${t.missing.join(', ')}`,
  }));
  const hit = found.python ? candidates.find((c) => c.path === found.python) : undefined;
  if (!hit) return { tried };
  cached = { key, python: hit };
  return { python: hit, tried };
}

/** Forget the cached interpreter (after the setting changes or an install). */
export function forgetPython(): void {
  cached = undefined;
}

/** Resolve, or tell the user how to fix it: "Open Setting" and "Show how". */
export async function requirePython(): Promise<ResolvedPython | undefined> {
  const { python, tried } = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: 'Finetune Lab: finding Python with torch' },
    () => resolvePython(),
  );
  if (python) return python;
  const detail = tried.map((t) => `${t.candidate.path} (${t.candidate.source}): ${t.problem}`).join('\n');
  const choice = await vscode.window.showErrorMessage(
    'No Python with torch, transformers and peft found. Set finetuneLab.pythonPath to one, select one in the Python extension, or create .venv with the trainer\'s requirements.',
    { detail },
    'Open Setting',
    'Show how',
  );
  if (choice === 'Open Setting') {
    await vscode.commands.executeCommand('workbench.action.openSettings', 'finetuneLab.pythonPath');
  } else if (choice === 'Show how') {
    await vscode.commands.executeCommand('finetuneLab.checkEnvironment');
  }
  return undefined;
}
