// The "Runs" view: experiments → sweeps → runs, from the RunManager (which a file-system watcher keeps
// current). Icons by state, "step 120/500 · loss 1.93 · ETA 2m", and a tooltip with the config that
// differs from the experiment and, for a failed run, the error and the last lines of train.log.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { StoredRun } from '../core/runStore';
import type { RunManager } from '../runManager';
import { readTail } from '../core/fileTail';
import { ANALYSIS_ICON, analysisDescription, analysisSourceMarkdown, lastLines, runDescription, runTooltipMarkdown, STATE_COLOR, STATE_ICON } from './runFormat';

export type RunsNode = ExperimentNode | SweepNode | RunNode;

export class ExperimentNode extends vscode.TreeItem {
  readonly kind = 'experiment' as const;
  constructor(readonly name: string, readonly children: (SweepNode | RunNode)[], runs: StoredRun[]) {
    super(name, vscode.TreeItemCollapsibleState.Expanded);
    this.id = `experiment:${name}`;
    this.contextValue = 'experiment';
    this.iconPath = new vscode.ThemeIcon('beaker');
    const running = runs.filter((r) => r.status.state === 'running').length;
    this.description = `${runs.length} run${runs.length === 1 ? '' : 's'}${running ? ` · ${running} running` : ''}`;
    const file = runs.find((r) => r.meta.experiment_file)?.meta.experiment_file;
    if (file) this.tooltip = file;
    if (file) this.resourceUri = vscode.Uri.file(file);
  }
}

export class SweepNode extends vscode.TreeItem {
  readonly kind = 'sweep' as const;
  constructor(readonly sweepId: string, readonly parent: ExperimentNode | undefined, readonly children: RunNode[], runs: StoredRun[]) {
    super(`sweep ${new Date(Math.min(...runs.map((r) => r.meta.created)) * 1000).toLocaleString()}`, vscode.TreeItemCollapsibleState.Expanded);
    this.id = `sweep:${sweepId}`;
    this.contextValue = 'sweep';
    this.iconPath = new vscode.ThemeIcon('layers');
    const done = runs.filter((r) => r.status.state === 'completed').length;
    const running = runs.filter((r) => r.status.state === 'running').length;
    const queued = runs.filter((r) => r.status.state === 'queued').length;
    this.description = [`${runs.length} runs`, `${done} done`, running && `${running} running`, queued && `${queued} queued`].filter(Boolean).join(' · ');
  }
}

export class RunNode extends vscode.TreeItem {
  readonly kind = 'run' as const;
  parent?: ExperimentNode | SweepNode;
  constructor(public run: StoredRun) {
    const state = run.status.state;
    // The label is the run id (unique, what folders and the CLI use); the sweep point is in the tooltip.
    super(run.id, vscode.TreeItemCollapsibleState.None);
    this.id = `run:${run.id}`;
    // An analysis run (issue 14) trains nothing: its own icon, and no Resume, Duplicate or Export (menus match run.<state>$).
    // A running run without a heartbeat for finetuneLab.stalledAfterSeconds is stalled: Kill Trainer (issue 17).
    const analysis = run.meta.kind === 'analysis';
    const stalled = state === 'running' && run.status.stale === true;
    const shownState = stalled ? 'stalled' : state;
    this.contextValue = analysis ? `run.${shownState}.analysis` : `run.${shownState}`;
    this.description = analysis ? analysisDescription(run.status, run.analysis?.reduce_intruders?.lambda) : runDescription(run.status);
    const color = stalled ? 'list.warningForeground' : STATE_COLOR[state];
    const icon = stalled ? 'warning' : analysis ? (state === 'running' ? 'sync~spin' : ANALYSIS_ICON) : STATE_ICON[state] ?? 'circle-outline';
    this.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
    this.accessibilityInformation = { label: `${this.label as string}, ${state}, ${this.description}` };
    this.command = { command: 'finetuneLab.openDashboard', title: 'Open Dashboard', arguments: [this] };
  }
}

export class RunsTreeProvider implements vscode.TreeDataProvider<RunsNode> {
  private readonly _onDidChangeTreeData = new vscode.EventEmitter<RunsNode | RunsNode[] | undefined | void>();
  readonly onDidChangeTreeData = this._onDidChangeTreeData.event;
  private roots: ExperimentNode[] = [];
  private byRun = new Map<string, RunNode>();

  constructor(private readonly runs: RunManager) {
    runs.onDidChangeRuns(() => this.rebuild());
  }

  refresh(): void { void this.runs.refresh(); }

  /**
   * When only states and descriptions changed (a running run writes status.json about once a
   * second), update the shown nodes in place and refresh just those: a whole-tree refresh makes
   * VS Code drop its element handles for a moment, and a context-menu command clicked then
   * arrives with no argument (seen after a window reload: Stop asked "which run?").
   */
  private rebuild(): void {
    const before = this.roots;
    const beforeByRun = this.byRun;
    this.build();
    if (before.length && shapeOf(before) === shapeOf(this.roots)) {
      const changed: RunsNode[] = [];
      pairUp(before, this.roots, (old, next) => { if (copyItem(old, next)) changed.push(old); });
      this.roots = before;
      this.byRun = beforeByRun;
      if (changed.length) this._onDidChangeTreeData.fire(changed);
      return;
    }
    this._onDidChangeTreeData.fire();
  }

  private build(): void {
    const byExperiment = new Map<string, StoredRun[]>();
    for (const r of this.runs.runs) {
      const list = byExperiment.get(r.meta.experiment_name) ?? [];
      list.push(r);
      byExperiment.set(r.meta.experiment_name, list);
    }
    this.byRun = new Map();
    this.roots = [...byExperiment.entries()].map(([name, runs]) => {
      const children: (SweepNode | RunNode)[] = [];
      const sweeps = new Map<string, StoredRun[]>();
      for (const r of runs) {
        if (r.meta.sweep_id && (r.meta.sweep_size ?? 0) > 1) {
          const s = sweeps.get(r.meta.sweep_id) ?? [];
          s.push(r);
          sweeps.set(r.meta.sweep_id, s);
        } else {
          const node = new RunNode(r);
          this.byRun.set(r.id, node);
          children.push(node);
        }
      }
      const exp = new ExperimentNode(name, children, runs);
      for (const [id, sweepRuns] of sweeps) {
        sweepRuns.sort((a, b) => (a.meta.sweep_index ?? 0) - (b.meta.sweep_index ?? 0));
        const nodes = sweepRuns.map((r) => new RunNode(r));
        const sweep = new SweepNode(id, exp, nodes, sweepRuns);
        for (const n of nodes) { n.parent = sweep; this.byRun.set(n.run.id, n); }
        children.push(sweep);
      }
      for (const c of children) if (c instanceof RunNode) c.parent = exp;
      // Newest first, as the store lists runs.
      const newest = (c: SweepNode | RunNode): number =>
        c instanceof RunNode ? c.run.meta.created : Math.max(...c.children.map((n) => n.run.meta.created));
      children.sort((a, b) => newest(b) - newest(a));
      return exp;
    });
  }

  getTreeItem(node: RunsNode): vscode.TreeItem { return node; }

  getChildren(node?: RunsNode): RunsNode[] {
    if (!node) {
      void this.runs.load();
      return this.roots;
    }
    return node.kind === 'run' ? [] : node.children;
  }

  getParent(node: RunsNode): RunsNode | undefined {
    if (node.kind === 'run') return node.parent;
    if (node.kind === 'sweep') return node.parent;
    return undefined;
  }

  /** The tooltip is built when hovered: it may read train.log. */
  resolveTreeItem(item: vscode.TreeItem, node: RunsNode): vscode.TreeItem {
    if (node.kind !== 'run') return item;
    const r = node.run;
    const logTail = r.status.state === 'failed' ? lastLines(readTail(path.join(r.dir, 'train.log'), 4096), 8) : undefined;
    const md = new vscode.MarkdownString(runTooltipMarkdown({
      id: r.id, label: r.meta.label, status: r.status, overrides: r.meta.overrides as Record<string, unknown> | undefined, logTail,
    }));
    if (r.analysis) md.appendMarkdown(`\n\n${analysisSourceMarkdown(r.analysis)}`);
    if (r.error) md.appendMarkdown(`\n\n*Folder problem:* ${r.error.replace(/[*_`]/g, '')}`);
    item.tooltip = md;
    return item;
  }

  nodeFor(runId: string): RunNode | undefined { return this.byRun.get(runId); }
}

/** The tree's structure: which nodes, in which order, under which parent (by id). */
function shapeOf(nodes: readonly RunsNode[]): string {
  return nodes.map((n) => (n.kind === 'run' ? n.id : `${n.id}(${shapeOf(n.children)})`)).join(',');
}

/** Walks two trees of the same shape side by side. */
function pairUp(a: readonly RunsNode[], b: readonly RunsNode[], visit: (old: RunsNode, next: RunsNode) => void): void {
  a.forEach((old, i) => {
    const next = b[i];
    visit(old, next);
    if (old.kind !== 'run' && next.kind !== 'run') pairUp(old.children, next.children, visit);
  });
}

/** Copies what is shown from `next` onto `old`; true when anything visible changed. */
function copyItem(old: RunsNode, next: RunsNode): boolean {
  const icon = (n: RunsNode) => (n.iconPath instanceof vscode.ThemeIcon ? `${n.iconPath.id}:${n.iconPath.color?.id ?? ''}` : '');
  const changed = old.description !== next.description || old.contextValue !== next.contextValue || icon(old) !== icon(next)
    || old.tooltip !== next.tooltip;
  old.description = next.description;
  old.contextValue = next.contextValue;
  old.iconPath = next.iconPath;
  old.tooltip = next.tooltip;
  old.accessibilityInformation = next.accessibilityInformation;
  if (old.kind === 'run' && next.kind === 'run') old.run = next.run;
  return changed;
}
