// Finetune Lab's editor shell: construct, register, push. Nothing here reads runs or starts Python;
// the runs are read when the Runs view first asks (or a command needs them).
import * as vscode from 'vscode';
import { AnalysisCommands } from './analysis/analysisCommands';
import { checkEnvironment, installEnvironment } from './commands/checkEnvironment';
import { newExperiment } from './commands/newExperiment';
import { RunCommands } from './commands/runCommands';
import { ExperimentCodeLensProvider } from './editor/codeLens';
import { ExperimentDiagnostics } from './editor/diagnostics';
import { ExperimentHoverProvider } from './editor/hover';
import { MemoryEstimates, MemoryQuickFixProvider } from './editor/memoryEstimates';
import { ExperimentQuickFixProvider } from './editor/quickFix';
import { ExperimentFormProvider } from './form/experimentFormProvider';
import { RunNotifications } from './notifications';
import { registerPanelSerializers } from './panelLinks';
import { PlaygroundCommands, registerPlaygroundSerializer } from './playground';
import { forgetPython } from './python';
import { RunManager } from './runManager';
import { RunStatusBar } from './statusBar';
import { openRunsTable, registerRunsTableSerializer } from './table';
import { explainTrust } from './trust';
import { RunsTreeProvider, type RunsNode } from './views/runsTreeProvider';

export function activate(context: vscode.ExtensionContext): void {
  const uri = context.extensionUri;
  const runs = new RunManager(uri);
  const estimates = new MemoryEstimates(uri);
  const tree = new RunsTreeProvider(runs);
  const view = vscode.window.createTreeView<RunsNode>('finetuneLab.runs', { treeDataProvider: tree, canSelectMany: true, showCollapseAll: true });
  const cmd = new RunCommands(uri, runs, tree, view, estimates);
  const playground = new PlaygroundCommands(uri, runs, view);
  const analysis = new AnalysisCommands(uri, runs, tree, view);
  const reg = vscode.commands.registerCommand;

  context.subscriptions.push(runs);
  context.subscriptions.push(playground);
  context.subscriptions.push(analysis);
  runs.loadSoon();
  context.subscriptions.push(view);
  context.subscriptions.push(new RunStatusBar(runs));
  context.subscriptions.push(new RunNotifications(runs));
  context.subscriptions.push(new ExperimentDiagnostics());
  context.subscriptions.push(estimates);
  context.subscriptions.push(vscode.languages.registerHoverProvider(ExperimentHoverProvider.selector, new ExperimentHoverProvider()));
  context.subscriptions.push(vscode.languages.registerCodeLensProvider(ExperimentCodeLensProvider.selector, new ExperimentCodeLensProvider(runs, estimates)));
  context.subscriptions.push(vscode.languages.registerCodeActionsProvider(ExperimentQuickFixProvider.selector, new ExperimentQuickFixProvider(), ExperimentQuickFixProvider.metadata));
  context.subscriptions.push(vscode.languages.registerCodeActionsProvider(ExperimentQuickFixProvider.selector, new MemoryQuickFixProvider(estimates), MemoryQuickFixProvider.metadata));
  context.subscriptions.push(ExperimentFormProvider.register(context));
  context.subscriptions.push(...registerPanelSerializers({ extensionUri: uri, states: runs }, () => runs.runsDir));
  context.subscriptions.push(registerPlaygroundSerializer(context, () => runs.runsDir));
  context.subscriptions.push(registerRunsTableSerializer(context, runs));
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration((e) => { if (e.affectsConfiguration('finetuneLab.pythonPath')) forgetPython(); }));

  context.subscriptions.push(reg('finetuneLab.newExperiment', () => newExperiment()));
  context.subscriptions.push(reg('finetuneLab.startRun', (arg?: vscode.Uri) => cmd.start(arg)));
  context.subscriptions.push(reg('finetuneLab.estimateMemory', (arg?: vscode.Uri) => cmd.estimateMemory(arg)));
  context.subscriptions.push(reg('finetuneLab.stopRun', (arg, sel) => cmd.stop(arg, sel)));
  context.subscriptions.push(reg('finetuneLab.resumeRun', (arg, sel) => cmd.resume(arg, sel)));
  context.subscriptions.push(reg('finetuneLab.killRun', (arg, sel) => cmd.kill(arg, sel)));
  context.subscriptions.push(reg('finetuneLab.openDashboard', (arg, sel) => cmd.openDashboard(arg, sel)));
  context.subscriptions.push(reg('finetuneLab.openLastRun', (arg?: vscode.Uri) => cmd.openLastRun(arg)));
  context.subscriptions.push(reg('finetuneLab.openLog', (arg) => cmd.openLog(arg)));
  context.subscriptions.push(reg('finetuneLab.revealRunFolder', (arg) => cmd.revealFolder(arg)));
  context.subscriptions.push(reg('finetuneLab.copyAdapterPath', (arg) => cmd.copyAdapterPath(arg)));
  context.subscriptions.push(reg('finetuneLab.duplicateRun', (arg) => cmd.duplicate(arg)));
  context.subscriptions.push(reg('finetuneLab.deleteRun', (arg, sel) => cmd.delete(arg, sel)));
  context.subscriptions.push(reg('finetuneLab.compareRuns', (arg, sel) => cmd.compare(arg, sel)));
  context.subscriptions.push(reg('finetuneLab.openPareto', (arg, sel) => cmd.pareto(arg, sel)));
  context.subscriptions.push(reg('finetuneLab.openSpectra', (arg, sel) => cmd.spectra(arg, sel)));
  context.subscriptions.push(reg('finetuneLab.openRunsTable', (arg) => openRunsTable(uri, runs, arg)));
  context.subscriptions.push(reg('finetuneLab.openPlayground', (arg, ...rest: unknown[]) => playground.open(arg, ...rest)));
  context.subscriptions.push(reg('finetuneLab.exportOnnx', (arg, ...rest: unknown[]) => playground.exportOnnx(arg, ...rest)));
  context.subscriptions.push(reg('finetuneLab.analyse', (arg?: vscode.Uri) => analysis.analyse(arg)));
  context.subscriptions.push(reg('finetuneLab.reduceIntruders', (arg, ...rest: unknown[]) => analysis.reduceIntruders(arg, ...rest)));
  context.subscriptions.push(reg('finetuneLab.refreshRuns', () => cmd.refresh()));
  context.subscriptions.push(reg('finetuneLab.checkEnvironment', () => checkEnvironment(uri)));
  context.subscriptions.push(reg('finetuneLab.installEnvironment', () => installEnvironment(uri)));
  context.subscriptions.push(reg('finetuneLab.explainTrust', () => explainTrust()));
  context.subscriptions.push(reg('finetuneLab.openExperimentForm', (arg?: vscode.Uri) => ExperimentFormProvider.open(arg)));
  context.subscriptions.push(reg('finetuneLab.openExperimentText', (arg?: vscode.Uri) => ExperimentFormProvider.openAsText(arg)));
}

export function deactivate(): void {
  // Runs are detached processes: they keep training; the next window re-attaches from the run folders.
}
