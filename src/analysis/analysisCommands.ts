// "Analyse Adapter or Checkpoint…" and "Reduce Intruders…" (issue 14): the questions, then the
// trainer's analyse / reduce-intruders command (argv, the interpreter runs use, trusted workspaces
// only) under a cancellable progress notification; the new runs show in the Runs view as soon as
// their folders exist, and the Spectra view opens on them when they are done.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { analyseArgs, analysisCommand, reduceArgs, runAnalysis, type AnalysisResult } from '../core/analysisLaunch';
import { finetuneFolderProblem, finetuneKind } from '../core/finetuneFolder';
import type { StoredRun } from '../core/runStore';
import { latestCheckpoint } from '../commands/runCommands';
import { ParetoPanel, SpectraPanel } from '../panelLinks';
import { requirePython } from '../python';
import type { RunManager } from '../runManager';
import { bundledDataEnv } from '../trainerEnv';
import { requireTrust } from '../trust';
import { RunNode, type RunsNode, type RunsTreeProvider } from '../views/runsTreeProvider';
import { pickBase, pickExperiment, pickFinetuneFolder, pickLambdas } from './pickers';

type RunArg = RunsNode | string | { id: string; dir?: string } | undefined;

/** Whether a run has a LoRA adapter reduce-intruders can take: an analysed adapter, or a LoRA run's checkpoint. */
export function hasLoraAdapter(r: StoredRun): boolean {
  if (r.analysis) return r.analysis.method === 'lora' && r.status.state === 'completed';
  const ckpt = latestCheckpoint(r.dir);
  return r.config?.method === 'lora' && !!ckpt && fs.existsSync(path.join(ckpt, 'adapter_config.json'));
}

export class AnalysisCommands implements vscode.Disposable {
  private output: vscode.OutputChannel | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly runs: RunManager,
    private readonly tree: RunsTreeProvider,
    private readonly view: vscode.TreeView<RunsNode>,
  ) {}

  /** From the Explorer (a folder), or the palette (the workspace's adapters and checkpoints, or browse). */
  async analyse(arg?: vscode.Uri): Promise<void> {
    if (!(await requireTrust('analyse a finetune'))) return;
    const folder = arg instanceof vscode.Uri ? arg.fsPath : await pickFinetuneFolder();
    if (!folder) return;
    const problem = finetuneFolderProblem(folder);
    if (problem) { void vscode.window.showErrorMessage(`Finetune Lab: cannot analyse it: ${problem}`); return; }
    const base = await pickBase(folder);
    if (!base) return;
    const experiment = await pickExperiment();
    if (!experiment) return;
    const kind = finetuneKind(folder)!;
    await this.runs.load();
    const runsDir = this.runs.runsDir;
    if (!runsDir) { void vscode.window.showErrorMessage('Open a folder first: runs are kept in the workspace.'); return; }
    const source = kind === 'adapter' ? { adapter: folder } : { model: folder };
    const result = await this.run(`analysing ${path.basename(folder)}`, analyseArgs({ base, ...source, experiment: experiment.file, runsDir }));
    const done = result?.runs.filter((r) => r.status === 'completed').map((r) => r.run) ?? [];
    if (done.length) await this.show(done);
  }

  /** From the Spectra view's button, a run's context menu, or the palette (asks for the run). */
  async reduceIntruders(arg: RunArg, ...rest: unknown[]): Promise<void> {
    if (!(await requireTrust('reduce intruders'))) return;
    const run = await this.pickSource([arg, ...rest.flat()]);
    if (!run) return;
    if (!hasLoraAdapter(run)) {
      const why = (run.analysis?.method ?? run.config?.method) === 'full' ? 'it is full finetuning' : 'it has no LoRA checkpoint yet';
      void vscode.window.showErrorMessage(`Finetune Lab: cannot reduce the intruders of ${run.id}: ${why}. PEFT's reduce_intruder_dimension works on LoRA adapters.`);
      return;
    }
    const lambdas = await pickLambdas(run.id);
    if (!lambdas) return;
    const runsDir = this.runs.runsDir;
    if (!runsDir) return;
    const result = await this.run(`reducing the intruders of ${run.id} (λ ${lambdas.join(', ')})`, reduceArgs({ runId: run.id, runsDir, lambdas }));
    const done = result?.runs.filter((r) => r.status === 'completed').map((r) => r.run) ?? [];
    if (done.length) await this.show(done, run);
  }

  private async pickSource(args: unknown[]): Promise<StoredRun | undefined> {
    await this.runs.load();
    const ids = args.flatMap((a) => typeof a === 'string' ? [a]
      : a && typeof a === 'object' && 'kind' in a && (a as RunsNode).kind === 'run' ? [(a as RunNode).run.id]
        : a && typeof a === 'object' && typeof (a as { id?: unknown }).id === 'string' ? [(a as { id: string }).id] : []);
    const given = [...new Set(ids)].map((id) => this.runs.find(id)).filter((r): r is StoredRun => !!r);
    const candidates = given.length ? given : this.runs.runs.filter(hasLoraAdapter);
    if (candidates.length === 1) return candidates[0];
    if (!candidates.length) { void vscode.window.showInformationMessage('Finetune Lab: no run has a LoRA adapter to reduce (train a LoRA run, or analyse an adapter).'); return undefined; }
    const pick = await vscode.window.showQuickPick(candidates.map((r) => ({
      label: r.id, description: r.analysis ? 'analysed adapter' : 'LoRA run, newest checkpoint', detail: r.meta.label, run: r,
    })), { title: 'Reduce the intruder dimensions of which adapter?' });
    return pick?.run;
  }

  /** Runs the trainer's command with a cancellable progress notification; undefined when it could not start. */
  private async run(title: string, args: string[]): Promise<AnalysisResult | undefined> {
    const python = await requirePython();
    if (!python) return undefined;
    const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? path.dirname(this.runs.runsDir!);
    const env = { ...process.env, ...bundledDataEnv(this.extensionUri) };
    const cmd = analysisCommand(python.path, vscode.Uri.joinPath(this.extensionUri, 'trainer').fsPath, args, cwd, env);
    const log = this.channel();
    log.appendLine(`[${new Date().toISOString()}] ${cmd.command} ${cmd.args.join(' ')}`);
    const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Finetune Lab: ${title}`, cancellable: true }, (progress, token) => {
      const abort = new AbortController();
      token.onCancellationRequested(() => abort.abort());
      progress.report({ message: 'loading torch…' });
      return runAnalysis(cmd, {
        signal: abort.signal,
        line: (l) => { log.appendLine(l); progress.report({ message: l.length > 90 ? `${l.slice(0, 90)}…` : l }); },
        // A run folder exists: show it in the Runs view now, running.
        progress: (p) => { log.appendLine(JSON.stringify(p)); void this.runs.refresh().then(() => this.reveal(p.run)); },
      });
    }).then((r) => r, (e: Error) => { void vscode.window.showErrorMessage(`Finetune Lab: ${e.message}`); return undefined; });
    if (!result) return undefined;
    if (result.stderr) log.appendLine(result.stderr);
    await this.runs.refresh();
    const failed = result.runs.find((r) => r.status === 'failed');
    if (result.code === 2) {
      const last = result.stderr.split('\n').filter((l) => l.startsWith('error:')).pop() ?? result.stderr.split('\n').pop() ?? '';
      void vscode.window.showErrorMessage(`Finetune Lab: ${last.replace(/^error: /, '')}`, 'Show Output').then((c) => { if (c) log.show(); });
    } else if (failed) {
      void vscode.window.showErrorMessage(`Finetune Lab: ${failed.run} failed: ${failed.error ?? 'see its log'}`, 'Open Log').then((c) => {
        if (c) void vscode.commands.executeCommand('finetuneLab.openLog', failed.run);
      });
    } else if (result.code === 130 || result.runs.some((r) => r.status === 'stopped')) {
      void vscode.window.showInformationMessage(`Finetune Lab: ${title} was cancelled; the run folder says "stopped".`);
    } else if (result.code !== 0) {
      void vscode.window.showErrorMessage(`Finetune Lab: ${title} ended with exit code ${result.code}: ${result.stderr.split('\n').pop() ?? ''}`, 'Show Output').then((c) => { if (c) log.show(); });
    }
    return result;
  }

  /** The new runs in the Spectra view (beside the run they came from, for reduce-intruders); then Pareto or the dashboard. */
  private async show(ids: string[], source?: StoredRun): Promise<void> {
    const fresh = ids.map((id) => this.runs.find(id)).filter((r): r is StoredRun => !!r);
    if (!fresh.length) return;
    await this.reveal(fresh[fresh.length - 1].id);
    const deps = { extensionUri: this.extensionUri, states: this.runs };
    const shown = [...(source ? [source] : []), ...fresh].map((r) => ({ id: r.id, dir: r.dir }));
    SpectraPanel.createOrShow(deps, shown);
    const what = fresh.length === 1 ? fresh[0].id : `${fresh.length} analysis runs (a λ sweep)`;
    const choice = await vscode.window.showInformationMessage(`Finetune Lab: ${what} ready.`, 'Open Pareto Plot', 'Open Dashboard');
    if (choice === 'Open Pareto Plot' && this.runs.runsDir) ParetoPanel.createOrShow(deps, this.runs.runsDir, { experimentName: fresh[0].meta.experiment_name });
    else if (choice === 'Open Dashboard') await vscode.commands.executeCommand('finetuneLab.openDashboard', shown[0], shown);
  }

  private async reveal(id: string): Promise<void> {
    const node = this.tree.nodeFor(id);
    if (node instanceof RunNode) await Promise.resolve(this.view.reveal(node, { select: true, focus: false, expand: true })).catch(() => undefined);
  }

  private channel(): vscode.OutputChannel {
    this.output ??= vscode.window.createOutputChannel('Finetune Lab: Analysis');
    return this.output;
  }

  dispose(): void { this.output?.dispose(); }
}
