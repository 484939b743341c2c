// The run commands: start (a run or a sweep) from an experiment file, and what the explorer's
// context menu does with runs. Each takes a tree node, a run id, or nothing (then asks).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import YAML from 'yaml';
import { expandSweep } from '../core/sweep';
import type { StoredRun } from '../core/runStore';
import { parsedExperiment, isExperimentFile } from '../editor/parsedCache';
import { lastRunFor } from '../editor/codeLens';
import type { MemoryEstimates } from '../editor/memoryEstimates';
import { estimateDetail, isOver, lensTitle, overLimitMessage } from '../core/memoryEstimate';
import { DashboardPanel, ParetoPanel, SpectraPanel } from '../panelLinks';
import { requirePython } from '../python';
import type { RunManager } from '../runManager';
import { requireTrust } from '../trust';
import { RunNode, type RunsNode, type RunsTreeProvider } from '../views/runsTreeProvider';

/** A tree node, a run id, or a RunRef `{id, dir}` (the Pareto view sends those). */
type RunArg = RunsNode | string | { id: string; dir?: string } | undefined;

export class RunCommands {
  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly runs: RunManager,
    private readonly tree: RunsTreeProvider,
    private readonly view: vscode.TreeView<RunsNode>,
    private readonly estimates: MemoryEstimates,
  ) {}

  // ---- picking ------------------------------------------------------------------------------

  /** Runs named by the arguments (clicked node and multi-selection), or asked for with a quick pick. */
  private async resolveRuns(arg: RunArg, selected: readonly RunArg[] | undefined, opts: { many?: boolean; title: string; filter?: (r: StoredRun) => boolean }): Promise<StoredRun[]> {
    await this.runs.load();
    const out: StoredRun[] = [];
    const add = (n: NonNullable<RunArg>): void => {
      if (typeof n === 'string' || !('kind' in n)) {
        const id = typeof n === 'string' ? n : n.id;
        const r = this.runs.find(id);
        if (r) out.push(r);
        return;
      }
      if (n.kind === 'run') out.push(this.runs.find(n.run.id) ?? n.run);
      else for (const c of n.children) add(c);
    };
    // From the palette there is no argument: use what is selected in the Runs view, if anything.
    const nodes = selected && selected.length > 1 ? selected : arg !== undefined ? [arg] : this.view.selection;
    for (const n of nodes) if (n !== undefined) add(n);
    const unique = [...new Map(out.map((r) => [r.id, r])).values()];
    if (unique.length) return opts.many ? unique : unique.slice(0, 1);
    const candidates = this.runs.runs.filter(opts.filter ?? (() => true));
    if (!candidates.length) {
      void vscode.window.showInformationMessage('Finetune Lab: no runs to choose from.');
      return [];
    }
    const items = candidates.map((r) => ({ label: r.id, description: r.status.state, detail: r.meta.label, run: r }));
    if (opts.many) {
      const picks = await vscode.window.showQuickPick(items, { title: opts.title, canPickMany: true });
      return picks?.map((p) => p.run) ?? [];
    }
    const pick = await vscode.window.showQuickPick(items, { title: opts.title });
    return pick ? [pick.run] : [];
  }

  private async experimentDocument(arg?: vscode.Uri): Promise<vscode.TextDocument | undefined> {
    if (arg instanceof vscode.Uri) return vscode.workspace.openTextDocument(arg);
    const active = vscode.window.activeTextEditor?.document;
    if (active && isExperimentFile(active)) return active;
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    if (tab instanceof vscode.TabInputCustom && isExperimentFile({ uri: tab.uri, fileName: tab.uri.fsPath })) return vscode.workspace.openTextDocument(tab.uri);
    const files = await vscode.workspace.findFiles('**/*.finetune.yaml', '**/node_modules/**', 50);
    if (!files.length) {
      const choice = await vscode.window.showWarningMessage('No experiment file (*.finetune.yaml) in this workspace.', 'New Experiment');
      if (choice) await vscode.commands.executeCommand('finetuneLab.newExperiment');
      return undefined;
    }
    const pick = files.length === 1 ? { uri: files[0] } : await vscode.window.showQuickPick(
      files.map((f) => ({ label: vscode.workspace.asRelativePath(f), uri: f })), { title: 'Start which experiment?' });
    return pick ? vscode.workspace.openTextDocument(pick.uri) : undefined;
  }

  // ---- start / stop / resume ------------------------------------------------------------------

  async start(arg?: vscode.Uri): Promise<void> {
    if (!(await requireTrust('start a run'))) return;
    const doc = await this.experimentDocument(arg);
    if (!doc) return;
    if (doc.isDirty) await doc.save();
    const parsed = parsedExperiment(doc);
    const file = vscode.workspace.asRelativePath(doc.uri);
    const firstError = parsed.diagnostics.find((d) => d.severity === 'error');
    if (!parsed.ok || !parsed.value || firstError) {
      const where = firstError ? `${file}:${firstError.line}:${firstError.column}: ${firstError.message}` : file;
      const codeRefused = firstError?.code === 'lm-eval-code-execution-not-allowed';
      const choice = await vscode.window.showErrorMessage(`Cannot start: the experiment has errors. ${where}`, 'Show Problem', ...(codeRefused ? ['Open Setting'] : []));
      if (choice === 'Open Setting') {
        await vscode.commands.executeCommand('workbench.action.openSettings', 'finetuneLab.allowCodeExecution');
      } else if (choice && firstError) {
        const pos = new vscode.Position(firstError.line - 1, firstError.column - 1);
        await vscode.window.showTextDocument(doc, { selection: new vscode.Range(pos, pos) });
      }
      return;
    }
    await this.runs.load();
    const store = this.runs.store;
    if (!store) { void vscode.window.showErrorMessage('Open a folder first: runs are kept in the workspace.'); return; }
    const python = await requirePython();
    if (!python) return;
    if (!(await this.confirmMemory(doc))) return;
    const planned = expandSweep(parsed.value).map((p) => ({ ...p, config: absoluteDataPaths(p.config, path.dirname(doc.uri.fsPath)) }));
    const sweepId = planned.length > 1 ? `${parsed.value.name}-${Date.now().toString(36)}` : undefined;
    const created: StoredRun[] = [];
    try {
      for (const [i, p] of planned.entries()) {
        created.push(await store.create(p, {
          experimentName: parsed.value.name, experimentFile: doc.uri.fsPath,
          sweepId, sweepIndex: sweepId ? i : undefined, sweepSize: sweepId ? planned.length : undefined,
        }));
      }
    } catch (e) { // a full disk or a read-only runs folder: nothing starts, no half-made sweep is left
      await Promise.all(created.map((r) => store.delete(r.id).catch(() => undefined)));
      void vscode.window.showErrorMessage(`Cannot start: the runs folder ${store.runsDir} cannot be written (${(e as Error).message}). Nothing was started.`);
      return;
    }
    await this.runs.refresh();
    // Slurm runs go to the cluster's queue at once (one job each, or one array), not to this window's.
    if (created.every((r) => r.config?.launcher?.kind === 'slurm')) await this.runs.submitSlurm(created.map((r) => r.id));
    else this.runs.enqueue(created.map((r) => r.id));
    await this.reveal(created[0].id);
    const what = created.length > 1 ? `sweep of ${created.length} runs (${created.map((r) => r.meta.label).join(', ')})` : created[0].id;
    void vscode.window.setStatusBarMessage(`$(play) Finetune Lab: started ${what}`, 5000);
  }

  /** A run whose estimate is over the limit starts only after "Start anyway" (a modal with the numbers). */
  private async confirmMemory(doc: vscode.TextDocument): Promise<boolean> {
    const over = await this.estimates.overLimit(doc);
    if (!over.length) return true;
    const first = over[0];
    const title = over.length > 1
      ? `${over.length} runs of this sweep may not fit in memory: ${over.map((r) => r.label).join(', ')}.`
      : 'This run may not fit in memory.';
    const detail = `${overLimitMessage(first.memory!, over.length > 1 ? first.label : undefined)}\n\nThe estimate is worked out from the model's config; an out-of-memory error ends the run failed, checkpoints kept.`;
    const choice = await vscode.window.showWarningMessage(title, { modal: true, detail }, 'Start anyway');
    return choice === 'Start anyway';
  }

  /** "Estimate Memory" (palette, or the CodeLens above method:): estimates again and says the result. */
  async estimateMemory(arg?: vscode.Uri): Promise<void> {
    if (!(await requireTrust('estimate memory (it runs the trainer)'))) return;
    const doc = await this.experimentDocument(arg);
    if (!doc) return;
    const runs = await this.estimates.estimate(doc);
    if (!runs) {
      const state = this.estimates.get(doc);
      void vscode.window.showWarningMessage(`No memory estimate: ${state?.state === 'error' ? state.message : 'fix the errors in the file first'}`);
      return;
    }
    const over = runs.filter((r) => isOver(r.memory));
    const text = lensTitle(runs).replace(/^\$\([^)]+\) /, '');
    const detail = estimateDetail(runs);
    if (over.length) void vscode.window.showWarningMessage(`Memory: ${overLimitMessage(over[0].memory!, runs.length > 1 ? over[0].label : undefined)}`);
    else void vscode.window.showInformationMessage(`Memory: ${text}`, { detail } as vscode.MessageOptions);
  }

  async stop(arg: RunArg, selected?: readonly RunsNode[]): Promise<void> {
    const all = await this.resolveRuns(arg, selected, { many: true, title: 'Stop which run?', filter: (r) => r.status.state === 'running' || r.status.state === 'queued' });
    const runs = all.filter((r) => r.status.state === 'running' || r.status.state === 'queued' || this.runs.isActive(r.id));
    if (all.length && !runs.length) void vscode.window.showInformationMessage(`${all[0].id} is not running (${all[0].status.state}).`);
    await Promise.all(runs.map((r) => vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Stopping ${r.id}: the trainer checkpoints first…` },
      () => this.runs.stop(r.id),
    )));
  }

  /**
   * Kill Trainer: SIGKILL now, for a trainer that no longer answers (stalled: no heartbeat) or will
   * not stop. A run that is not stalled is killed only after a confirmation (its steps since the
   * last checkpoint are lost).
   */
  async kill(arg: RunArg, selected?: readonly RunsNode[]): Promise<void> {
    const runs = (await this.resolveRuns(arg, selected, { many: true, title: 'Kill which trainer?', filter: (r) => r.status.state === 'running' }))
      .filter((r) => r.status.state === 'running' && !r.slurm);
    if (!runs.length) return;
    const live = runs.filter((r) => !r.status.stale);
    if (live.length) {
      const ok = await vscode.window.showWarningMessage(
        `Kill the trainer of ${live.length === 1 ? live[0].id : `${live.length} runs`}? It gets SIGKILL at once: the steps since the last checkpoint are lost (Stop Run checkpoints first).`,
        { modal: true }, 'Kill Trainer');
      if (ok !== 'Kill Trainer') return;
    }
    await Promise.all(runs.map((r) => this.runs.kill(r.id)));
  }

  /** Resume stopped or failed runs from their last checkpoint; start queued runs no window is running. */
  async resume(arg: RunArg, selected?: readonly RunsNode[]): Promise<void> {
    if (!(await requireTrust('resume a run'))) return;
    const picked = await this.resolveRuns(arg, selected, { many: true, title: 'Resume which runs?', filter: (r) => ['stopped', 'failed', 'queued'].includes(r.status.state) });
    // An analysis run (issue 14) trained nothing: there is nothing to resume, and its config is not an experiment.
    const runs = picked.filter((r) => r.meta.kind !== 'analysis' && r.status.state !== 'running' && r.status.state !== 'completed' && !this.runs.isActive(r.id) && !this.runs.isQueued(r.id));
    if (!runs.length) {
      if (picked[0]?.meta.kind === 'analysis') void vscode.window.showInformationMessage(`${picked[0].id} is an analysis run: nothing to resume.`);
      else if (picked.length) void vscode.window.showInformationMessage(`${picked[0].id} is ${picked[0].status.state === 'queued' ? 'already queued in this window' : picked[0].status.state}.`);
      return;
    }
    const python = await requirePython();
    if (!python) return;
    // Oldest first, so a sweep carries on in its order.
    runs.sort((a, b) => a.meta.created - b.meta.created || (a.meta.sweep_index ?? 0) - (b.meta.sweep_index ?? 0));
    const slurm = runs.filter((r) => r.config?.launcher?.kind === 'slurm');
    for (const resume of [false, true]) {
      const ids = slurm.filter((r) => (r.status.state !== 'queued') === resume && !(r.status.state === 'queued' && r.slurm)).map((r) => r.id);
      if (ids.length) await this.runs.submitSlurm(ids, resume);
    }
    for (const r of runs) if (!slurm.includes(r)) this.runs.enqueue([r.id], r.status.state !== 'queued');
  }

  // ---- opening ------------------------------------------------------------------------------

  private ref = (r: StoredRun) => ({ id: r.id, dir: r.dir });
  /** Panels take run states from the RunManager, as the Runs view does. */
  private get panelDeps() { return { extensionUri: this.extensionUri, states: this.runs }; }

  async openDashboard(arg: RunArg, selected?: readonly RunsNode[]): Promise<void> {
    const runs = await this.resolveRuns(arg, selected, { many: true, title: 'Open the dashboard of which run?' });
    if (runs.length) DashboardPanel.createOrShow(this.panelDeps, runs.map(this.ref));
  }

  async compare(arg: RunArg, selected?: readonly RunsNode[]): Promise<void> {
    let runs = await this.resolveRuns(arg, selected, { many: true, title: 'Compare which runs?' });
    if (runs.length === 1 && !(selected && selected.length > 1)) {
      runs = await this.resolveRuns(undefined, undefined, { many: true, title: 'Compare which runs? (pick two or more)' });
    }
    if (runs.length) DashboardPanel.createOrShow(this.panelDeps, runs.map(this.ref));
  }

  async pareto(arg: RunArg, selected?: readonly RunsNode[]): Promise<void> {
    await this.runs.load();
    const dir = this.runs.runsDir;
    if (!dir) { void vscode.window.showErrorMessage('Open a folder first: runs are kept in the workspace.'); return; }
    if (arg && typeof arg !== 'string' && 'kind' in arg && arg.kind === 'experiment' && !(selected && selected.length > 1)) {
      ParetoPanel.createOrShow(this.panelDeps, dir, { experimentName: arg.name });
      return;
    }
    const nodes = selected && selected.length > 1 ? selected : arg ? [arg] : [];
    const ids = nodes.length ? (await this.resolveRuns(arg, selected, { many: true, title: '' })).map((r) => r.id) : undefined;
    ParetoPanel.createOrShow(this.panelDeps, dir, ids ? { runIds: ids } : undefined);
  }

  async spectra(arg: RunArg, selected?: readonly RunsNode[]): Promise<void> {
    const runs = await this.resolveRuns(arg, selected, { many: true, title: 'Spectra of which runs?' });
    if (runs.length) SpectraPanel.createOrShow(this.panelDeps, runs.map(this.ref));
  }

  async openLastRun(arg?: vscode.Uri): Promise<void> {
    await this.runs.load();
    const uri = arg instanceof vscode.Uri ? arg : vscode.window.activeTextEditor?.document.uri;
    const run = uri ? lastRunFor(this.runs, uri) : this.runs.runs[0];
    if (!run) { void vscode.window.showInformationMessage('No run of this experiment yet: start one from the CodeLens above the file.'); return; }
    DashboardPanel.createOrShow(this.panelDeps, [this.ref(run)]);
  }

  async openLog(arg: RunArg): Promise<void> {
    const [run] = await this.resolveRuns(arg, undefined, { title: 'Open the log of which run?' });
    if (!run) return;
    const log = path.join(run.dir, 'train.log');
    if (!fs.existsSync(log)) { void vscode.window.showInformationMessage(`${run.id} has no train.log yet (it has not started).`); return; }
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(log));
    const editor = await vscode.window.showTextDocument(doc, { preview: false });
    const end = doc.lineAt(Math.max(0, doc.lineCount - 1)).range.end;
    editor.revealRange(new vscode.Range(end, end));
  }

  async revealFolder(arg: RunArg): Promise<void> {
    const [run] = await this.resolveRuns(arg, undefined, { title: 'Reveal the folder of which run?' });
    if (!run) return;
    const uri = vscode.Uri.file(run.dir);
    const inWorkspace = vscode.workspace.getWorkspaceFolder(uri);
    // revealFileInOS needs a local desktop; inside the workspace the Explorer works everywhere (also code-server).
    await vscode.commands.executeCommand(inWorkspace ? 'revealInExplorer' : 'revealFileInOS', uri);
  }

  async copyAdapterPath(arg: RunArg): Promise<void> {
    const [run] = await this.resolveRuns(arg, undefined, { title: 'Copy the adapter path of which run?' });
    if (!run) return;
    const ckpt = latestCheckpoint(run.dir) ?? analysedAdapter(run);
    if (!ckpt) { void vscode.window.showInformationMessage(`${run.id} has no checkpoint yet.`); return; }
    await vscode.env.clipboard.writeText(ckpt);
    const what = fs.existsSync(path.join(ckpt, 'adapter_config.json')) ? 'LoRA adapter (PEFT format)' : 'checkpoint';
    void vscode.window.showInformationMessage(`Copied the ${what} path: ${ckpt}`);
  }

  /** A new experiment file from this run's resolved config (its sweep point included), to edit and start. */
  async duplicate(arg: RunArg): Promise<void> {
    if (!(await requireTrust('duplicate a run'))) return;
    const [run] = await this.resolveRuns(arg, undefined, { title: 'Duplicate which run?' });
    if (run?.analysis) { void vscode.window.showInformationMessage(`${run.id} is an analysis run: there is no experiment to duplicate.`); return; }
    if (!run?.config) { if (run) void vscode.window.showErrorMessage(`${run.id} has no readable config.yaml.`); return; }
    const folder = run.meta.experiment_file ? path.dirname(run.meta.experiment_file) : vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    if (!folder) return;
    const base = `${run.meta.experiment_name}-${run.meta.label ?? 'copy'}`.replace(/[^A-Za-z0-9_.-]+/g, '-');
    let name = base;
    for (let n = 2; fs.existsSync(path.join(folder, `${name}.finetune.yaml`)); n++) name = `${base}-${n}`;
    const config = { ...run.config, name };
    const header = `# Duplicated from run ${run.id}${run.meta.experiment_file ? ` (${path.basename(run.meta.experiment_file)})` : ''}.\n# Change what you want to try, then Start from the CodeLens above.\n`;
    const target = vscode.Uri.file(path.join(folder, `${name}.finetune.yaml`));
    await vscode.workspace.fs.writeFile(target, Buffer.from(header + YAML.stringify(config), 'utf8'));
    await vscode.window.showTextDocument(target);
  }

  async delete(arg: RunArg, selected?: readonly RunsNode[]): Promise<void> {
    const runs = await this.resolveRuns(arg, selected, { many: true, title: 'Delete which runs?' });
    if (!runs.length) return;
    const running = runs.filter((r) => r.status.state === 'running').length;
    const what = runs.length === 1 ? runs[0].id : `${runs.length} runs`;
    const detail = `This deletes the run folder${runs.length > 1 ? 's' : ''} with checkpoints and events.${running ? ` ${running} running run(s) are stopped first.` : ''}`;
    const ok = await vscode.window.showWarningMessage(`Delete ${what}?`, { modal: true, detail }, 'Delete');
    if (ok !== 'Delete') return;
    for (const r of runs) await this.runs.delete(r.id);
  }

  async refresh(): Promise<void> {
    await this.runs.load();
    await this.runs.refresh();
  }

  private async reveal(id: string): Promise<void> {
    await vscode.commands.executeCommand('finetuneLab.runs.focus');
    const node = this.tree.nodeFor(id);
    // Revealing is a courtesy: the tree may not have drawn the new node yet.
    if (node instanceof RunNode) await Promise.resolve(this.view.reveal(node, { select: true, focus: false, expand: true })).catch(() => undefined);
  }
}

/**
 * A run's config.yaml lives in its run folder, but .jsonl paths in the experiment are relative to the
 * experiment file: make them absolute before the run is created.
 */
export function absoluteDataPaths<T extends { data: { train: string }; evals?: { learning?: EvalPaths[]; forgetting?: EvalPaths[] } }>(config: T, baseDir: string): T {
  const abs = (ref: string): string => (ref.startsWith('builtin:') || path.isAbsolute(ref) ? ref : path.resolve(baseDir, ref));
  const out = structuredClone(config);
  out.data.train = abs(out.data.train);
  for (const list of [out.evals?.learning, out.evals?.forgetting]) {
    for (const t of list ?? []) {
      if ('data' in t && typeof t.data === 'string') t.data = abs(t.data);
      // an lm_eval task folder, resolved the same way (config.yaml then names it wherever the run folder is)
      if ('include_path' in t && typeof t.include_path === 'string') t.include_path = path.isAbsolute(t.include_path) ? t.include_path : path.resolve(baseDir, t.include_path);
    }
  }
  return out;
}
type EvalPaths = { data: string } | { include_path?: string };

/** The newest checkpoints/step-NNNNNN folder, or undefined. */
export function latestCheckpoint(runDir: string): string | undefined {
  const dir = path.join(runDir, 'checkpoints');
  let names: string[] = [];
  try { names = fs.readdirSync(dir).filter((n) => /^step-\d+$/.test(n)); } catch { return undefined; }
  names.sort();
  return names.length ? path.join(dir, names[names.length - 1]) : undefined;
}

/** The adapter an analysis run analysed (reduce-intruders' is inside the run folder), if it is one. */
function analysedAdapter(run: StoredRun): string | undefined {
  const a = run.analysis?.source.adapter;
  return a ? path.resolve(run.dir, a) : undefined;
}
