// The memory estimate of an experiment file in the editor (core/memoryEstimate.ts): computed by the
// trainer (a Python process) when the file is saved (debounced), when its CodeLens or "Estimate Memory"
// asks, and before Start; never at activation or while typing, never in Restricted Mode. Results are
// cached by the resolved configs and the limit. Runs over the limit get a warning in Problems at the line
// that moves the estimate, with quick fixes that apply the advice. The limit is
// `finetuneLab.memoryLimitGiB`, else the GPU that doctor reports (asked once per session), else the
// trainer compares a CPU run with the host's RAM.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { runDoctor } from '../commands/checkEnvironment';
import type { DoctorInfo } from '../commands/doctorReport';
import { memoryDiagnostics, plannedRunEstimates, runEstimate, type GpuLimit, type PlannedRunEstimate } from '../core/memoryEstimate';
import { expandSweep } from '../core/sweep';
import { resolvePython } from '../python';
import { toVscodeDiagnostic } from './diagnostics';
import { isExperimentFile, parsedExperiment } from './parsedCache';
import { setValuesEdit } from './yamlEdit';

export type EstimateState =
  | { state: 'running' }
  | { state: 'done'; runs: PlannedRunEstimate[] }
  | { state: 'error'; message: string };

const SAVE_DEBOUNCE_MS = 750;

export class MemoryEstimates implements vscode.Disposable {
  private readonly _onDidChange = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this._onDidChange.event;
  private readonly byKey = new Map<string, Promise<PlannedRunEstimate[]>>();
  private readonly byDoc = new Map<string, EstimateState>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly collection = vscode.languages.createDiagnosticCollection('finetuneLab.memory');
  private readonly disposables: vscode.Disposable[] = [this.collection, this._onDidChange];
  private doctor?: Promise<DoctorInfo | undefined>;

  constructor(private readonly extensionUri: vscode.Uri) {
    this.disposables.push(
      vscode.workspace.onDidSaveTextDocument((doc) => this.schedule(doc)),
      vscode.workspace.onDidCloseTextDocument((doc) => this.forget(doc)),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (!e.affectsConfiguration('finetuneLab.memoryLimitGiB') && !e.affectsConfiguration('finetuneLab.pythonPath')) return;
        this.byKey.clear();
        for (const doc of vscode.workspace.textDocuments) if (this.byDoc.has(doc.uri.toString())) void this.estimate(doc);
      }),
    );
  }

  /** What the CodeLens shows for `doc`: nothing asked yet, running, the runs' estimates, or why none. */
  get(doc: vscode.TextDocument): EstimateState | undefined {
    return this.byDoc.get(doc.uri.toString());
  }

  private schedule(doc: vscode.TextDocument): void {
    if (!isExperimentFile(doc) || !vscode.workspace.isTrusted) return;
    const key = doc.uri.toString();
    clearTimeout(this.timers.get(key));
    this.timers.set(key, setTimeout(() => { this.timers.delete(key); void this.estimate(doc); }, SAVE_DEBOUNCE_MS));
  }

  /** The GPU to check against: the setting, else doctor's smallest GPU (doctor asked once per session). */
  private async gpuLimit(python: string): Promise<GpuLimit | undefined> {
    const setting = vscode.workspace.getConfiguration('finetuneLab').get<number>('memoryLimitGiB', 0);
    if (setting > 0) return { gib: setting };
    this.doctor ??= runDoctor(python, vscode.Uri.joinPath(this.extensionUri, 'trainer').fsPath).then((r) => r.info);
    const gpus = (await this.doctor)?.gpus ?? [];
    if (!gpus.length) return undefined; // the trainer compares a CPU run with the host's RAM itself
    const smallest = gpus.reduce((a, b) => (b.memory_mb < a.memory_mb ? b : a));
    return { gib: Math.round((smallest.memory_mb / 1024) * 100) / 100, count: gpus.length, name: smallest.name };
  }

  /**
   * Estimates `doc` (its saved text's planned runs), from the cache when the configs and the limit are
   * the same. Undefined when the file has errors, the workspace is untrusted or no Python has torch.
   */
  async estimate(doc: vscode.TextDocument): Promise<PlannedRunEstimate[] | undefined> {
    if (!vscode.workspace.isTrusted || !isExperimentFile(doc)) return undefined;
    const parsed = parsedExperiment(doc);
    if (!parsed.ok || !parsed.value) return undefined;
    let planned;
    try { planned = expandSweep(parsed.value); } catch { return undefined; }
    const uri = doc.uri.toString();
    const set = (s: EstimateState) => { this.byDoc.set(uri, s); this._onDidChange.fire(doc.uri); };
    set({ state: 'running' });
    const { python } = await resolvePython();
    if (!python) {
      set({ state: 'error', message: 'no Python with torch: set finetuneLab.pythonPath (Finetune Lab: Check Environment)' });
      return undefined;
    }
    const gpu = await this.gpuLimit(python.path);
    const baseDir = doc.uri.scheme === 'file' ? path.dirname(doc.uri.fsPath) : undefined;
    const configs = planned.map((p) => p.config);
    const key = JSON.stringify({ configs, gpu, baseDir, python: python.path });
    let pending = this.byKey.get(key);
    if (!pending) {
      const trainerDir = vscode.Uri.joinPath(this.extensionUri, 'trainer').fsPath;
      pending = runEstimate(python.path, trainerDir, configs, { baseDir, gpu }).then((items) => plannedRunEstimates(planned, items));
      this.byKey.set(key, pending);
      pending.catch(() => this.byKey.delete(key)); // a failure is not cached: the next save tries again
    }
    try {
      const runs = await pending;
      set({ state: 'done', runs });
      this.collection.set(doc.uri, memoryDiagnostics(parsedExperiment(doc), runs).map(toVscodeDiagnostic));
      return runs;
    } catch (e) {
      set({ state: 'error', message: (e as Error).message });
      this.collection.delete(doc.uri);
      return undefined;
    }
  }

  /**
   * Before Start: the runs over the limit, estimated now if needed (with a progress notification).
   * Empty when everything fits or there is no estimate (Start is never blocked by the estimate failing).
   */
  async overLimit(doc: vscode.TextDocument): Promise<PlannedRunEstimate[]> {
    const runs = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Finetune Lab: estimating memory…' },
      () => this.estimate(doc),
    );
    return (runs ?? []).filter((r) => r.memory?.fits === false);
  }

  private forget(doc: vscode.TextDocument): void {
    const key = doc.uri.toString();
    clearTimeout(this.timers.get(key));
    this.byDoc.delete(key);
    this.collection.delete(doc.uri);
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    for (const d of this.disposables) d.dispose();
  }
}

/** Quick fixes for a run over the limit: each change the advice says would fit, applied to the file. */
export class MemoryQuickFixProvider implements vscode.CodeActionProvider {
  static readonly metadata: vscode.CodeActionProviderMetadata = { providedCodeActionKinds: [vscode.CodeActionKind.QuickFix] };

  constructor(private readonly estimates: MemoryEstimates) {}

  provideCodeActions(doc: vscode.TextDocument, _range: vscode.Range, ctx: vscode.CodeActionContext): vscode.CodeAction[] {
    const diagnostic = ctx.diagnostics.find((d) => d.code === 'memory-over-limit');
    const state = this.estimates.get(doc);
    if (!diagnostic || state?.state !== 'done' || state.runs.length !== 1) return []; // a sweep: which point to change is the user's call
    const memory = state.runs[0].memory;
    const text = doc.getText();
    const actions: vscode.CodeAction[] = [];
    for (const a of (memory?.advice ?? []).filter((x) => x.fits)) {
      const next = setValuesEdit(text, a.set);
      if (next === undefined) continue;
      const action = new vscode.CodeAction(`Fit in memory: ${a.text} (≈ ${a.total_gib.toFixed(1)} GiB)`, vscode.CodeActionKind.QuickFix);
      action.diagnostics = [diagnostic];
      action.isPreferred = !actions.length;
      action.edit = new vscode.WorkspaceEdit();
      action.edit.replace(doc.uri, new vscode.Range(doc.positionAt(next.start), doc.positionAt(next.end)), next.text);
      actions.push(action);
    }
    return actions;
  }
}

