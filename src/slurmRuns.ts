// The editor's side of Slurm runs (launcher.kind slurm): submitting them with the Python the user
// chose, holding back runs the queue's submit limit refused (submitted as jobs end), and Stop
// (scancel --signal=INT, scancel after finetuneLab.stopGraceSeconds). States come from the run
// folders and Slurm through the RunManager's store, as for every run.
import * as vscode from 'vscode';
import type { RunStore, StoredRun } from './core/runStore';
import type { RunStatus } from './core/generated/status';
import { submitRuns, stopJob } from './core/slurm/submit';
import { requirePython } from './python';
import { ALLOW_CODE_ENV, bundledDataEnv, codeExecutionAllowed } from './trainerEnv';

const TERMINAL = new Set<RunStatus['state']>(['completed', 'failed', 'stopped']);

function strip(s: StoredRun['status']): RunStatus {
  const { stale: _a, reconciled: _b, slurm: _c, ...rest } = s;
  void _a; void _b; void _c;
  return rest;
}

export class SlurmRuns {
  /** Runs the queue's submit limit held back, submitted again when one of our jobs ends. */
  private deferred: { id: string; resume: boolean }[] = [];

  constructor(private readonly extensionUri: vscode.Uri, private readonly store: () => RunStore | undefined, private readonly refresh: () => Promise<void>) {}

  get waiting(): boolean { return this.deferred.length > 0; }

  forget(id: string): void { this.deferred = this.deferred.filter((d) => d.id !== id); }

  async submit(ids: readonly string[], resume = false): Promise<void> {
    const store = this.store();
    if (!store || !ids.length || !vscode.workspace.isTrusted) return;
    const python = await requirePython();
    if (!python) return;
    let result;
    try {
      result = await submitRuns(store, [...ids], {
        python: python.path, trainerDir: vscode.Uri.joinPath(this.extensionUri, 'trainer').fsPath, resume,
        jobEnv: { ...bundledDataEnv(this.extensionUri), ...(codeExecutionAllowed() ? { [ALLOW_CODE_ENV]: '1' } : {}) },
      });
    } catch (e) {
      void vscode.window.showErrorMessage(`Finetune Lab: could not submit to Slurm: ${(e as Error).message}`);
      return;
    }
    for (const [id, why] of result.rejected) void vscode.window.showErrorMessage(`Finetune Lab: ${id} failed: ${why}`);
    for (const id of result.deferred) if (!this.deferred.some((d) => d.id === id)) this.deferred.push({ id, resume });
    if (result.deferred.length) {
      void vscode.window.showInformationMessage(`Finetune Lab: the Slurm queue's submit limit is reached; ${result.deferred.length} run(s) wait here and are submitted as your jobs end.`);
    }
    if (result.submitted.size) {
      const jobs = [...new Set([...result.submitted.values()].map((j) => j.split('_')[0]))];
      void vscode.window.setStatusBarMessage(`$(server-environment) Finetune Lab: submitted Slurm job${jobs.length > 1 ? 's' : ''} ${jobs.join(', ')}`, 8000);
    }
    await this.refresh();
  }

  async resubmitDeferred(): Promise<void> {
    const waiting = this.deferred;
    this.deferred = [];
    for (const resume of [false, true]) {
      const ids = waiting.filter((d) => d.resume === resume).map((d) => d.id);
      if (ids.length) await this.submit(ids, resume);
    }
  }

  /** scancel --signal=INT (the trainer checkpoints), scancel after the grace period; a pending job is cancelled. */
  async stop(store: RunStore, run: StoredRun): Promise<void> {
    const grace = (vscode.workspace.getConfiguration('finetuneLab').get<number>('stopGraceSeconds') ?? 30) * 1000;
    try {
      const r = await stopJob(store, run, { graceMs: grace });
      if (r.message) void vscode.window.showWarningMessage(`Finetune Lab: scancel for ${run.id}: ${r.message}`);
      store.jobs.invalidate();
      const now = await store.get(run.id);
      if (now && !TERMINAL.has(now.status.state)) {
        await store.writeStatus(run.id, { ...strip(now.status), state: 'stopped', phase: 'done', finished: Date.now() / 1000, error: r.outcome === 'killed' ? `cancelled after ${grace / 1000} s without stopping` : 'stopped before training started' });
      }
    } catch (e) {
      void vscode.window.showErrorMessage(`Finetune Lab: could not stop ${run.id}: ${(e as Error).message}`);
    }
    await this.refresh();
  }
}
