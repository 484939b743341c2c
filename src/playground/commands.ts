// "Open Playground" and "Export to ONNX": which runs (tree nodes, ids, the selection, or asked),
// then the trainer's export-onnx as a child process (argv, the interpreter runs use) with a
// progress notification, and the trainer's stderr shown when it fails.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { exportCommand, findExports, latestTuned, runToEnd } from '../core/exports';
import type { StoredRun } from '../core/runStore';
import { latestCheckpoint } from '../commands/runCommands';
import { requirePython } from '../python';
import type { RunManager } from '../runManager';
import { requireTrust } from '../trust';
import { bundledDataEnv } from '../trainerEnv';
import type { RunsNode } from '../views/runsTreeProvider';
import type { RunRef } from '../core/runRef';
import { PlaygroundPanel } from './playgroundPanel';

type RunArg = RunsNode | string | { id: string; dir?: string } | undefined;

export class PlaygroundCommands {
  private output: vscode.OutputChannel | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly runs: RunManager,
    private readonly view: vscode.TreeView<RunsNode>,
  ) {}

  /** The clicked node and the multi-selection; from the palette the view's selection; else a quick pick. */
  private async pick(arg: RunArg, rest: readonly unknown[], title: string): Promise<StoredRun[]> {
    await this.runs.load();
    const out: StoredRun[] = [];
    const add = (n: unknown): void => {
      if (typeof n === 'string') { const r = this.runs.find(n); if (r) out.push(r); return; }
      if (typeof n !== 'object' || n === null) return;
      if ('kind' in n) {
        const node = n as RunsNode;
        if (node.kind === 'run') out.push(this.runs.find(node.run.id) ?? node.run); else node.children.forEach(add);
      } else if ('id' in n && typeof (n as { id: unknown }).id === 'string') add((n as { id: string }).id);
    };
    // VS Code passes (clicked, selectedNodes[]); the panel passes run ids as separate arguments.
    const selection = Array.isArray(rest[0]) ? (rest[0] as unknown[]) : undefined;
    const nodes = selection && selection.length > 1 ? selection : arg !== undefined ? [arg, ...(selection ? [] : rest)] : [...this.view.selection];
    nodes.forEach(add);
    const unique = [...new Map(out.map((r) => [r.id, r])).values()];
    if (unique.length) return unique;
    const candidates = this.runs.runs.filter((r) => latestCheckpoint(r.dir) || findExports(r.dir).exports.length);
    if (!candidates.length) { void vscode.window.showInformationMessage('Finetune Lab: no run has a checkpoint yet. Train one first.'); return []; }
    const picks = await vscode.window.showQuickPick(
      candidates.map((r) => ({ label: r.id, description: findExports(r.dir).exports.length ? 'exported' : 'not exported', detail: r.meta.label, run: r })),
      { title, canPickMany: true });
    return picks?.map((p) => p.run) ?? [];
  }

  async open(arg: RunArg, ...rest: unknown[]): Promise<void> {
    const runs = await this.pick(arg, rest, 'Compare the generations of which runs?');
    if (!runs.length) return;
    const missing = runs.filter((r) => !latestTuned(findExports(r.dir).exports) && latestCheckpoint(r.dir));
    if (missing.length) {
      const what = missing.length === 1 ? `${missing[0].id} has` : `${missing.length} runs have`;
      const choice = await vscode.window.showInformationMessage(
        `${what} no ONNX export yet. Export the base model and the latest checkpoint now (a few seconds to a minute each)?`, 'Export', 'Open Anyway');
      if (choice === undefined) return;
      if (choice === 'Export') await this.exportRuns(missing);
    }
    PlaygroundPanel.createOrShow(this.extensionUri, runs.map((r): RunRef => ({ id: r.id, dir: r.dir })));
  }

  async exportOnnx(arg: RunArg, ...rest: unknown[]): Promise<void> {
    const runs = await this.pick(arg, rest, 'Export which runs to ONNX?');
    if (!runs.length) return;
    const ok = await this.exportRuns(runs);
    if (ok.length) {
      const choice = await vscode.window.showInformationMessage(`Exported ${ok.length === 1 ? ok[0].id : `${ok.length} runs`} to ONNX (base + latest checkpoint).`, 'Open Playground');
      const refs = ok.map((r): RunRef => ({ id: r.id, dir: r.dir }));
      // An open playground gains the new columns either way; otherwise open one if asked.
      const open = PlaygroundPanel.current;
      if (open) { open.addRuns(refs); if (choice) open.reveal(); } else if (choice) PlaygroundPanel.createOrShow(this.extensionUri, refs);
    }
  }

  /** base + the latest checkpoint of each run; returns the runs that exported. */
  private async exportRuns(runs: StoredRun[]): Promise<StoredRun[]> {
    if (!(await requireTrust('export to ONNX'))) return [];
    const python = await requirePython();
    if (!python) return [];
    const trainerDir = vscode.Uri.joinPath(this.extensionUri, 'trainer').fsPath;
    const env = { ...process.env, ...bundledDataEnv(this.extensionUri) };
    const done: StoredRun[] = [];
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Finetune Lab: exporting to ONNX', cancellable: true }, async (progress, token) => {
      const abort = new AbortController();
      token.onCancellationRequested(() => abort.abort());
      const steps = runs.length * 2;
      for (const run of runs) {
        const ckpt = latestCheckpoint(run.dir);
        const todo: (string | undefined)[] = ['base', ...(ckpt ? [undefined] : [])]; // undefined: the trainer's default, the latest
        try {
          for (const c of todo) {
            if (abort.signal.aborted) return;
            progress.report({ message: `${run.id}: ${c ?? path.basename(ckpt!)}`, increment: 100 / steps });
            await runToEnd(exportCommand(python.path, trainerDir, run.dir, c, env), abort.signal);
          }
          done.push(run);
        } catch (e) {
          if (abort.signal.aborted) return;
          this.showFailure(run, e as Error);
        }
      }
    });
    return done;
  }

  private showFailure(run: StoredRun, e: Error): void {
    this.output ??= vscode.window.createOutputChannel('Finetune Lab: ONNX export');
    this.output.appendLine(`[${new Date().toISOString()}] ${run.id}\n${e.message}\n`);
    const last = e.message.trim().split('\n').pop() ?? e.message;
    void vscode.window.showErrorMessage(`Export to ONNX failed for ${run.id}: ${last}`, 'Show Output').then((c) => { if (c) this.output?.show(); });
  }

  dispose(): void { this.output?.dispose(); }
}
