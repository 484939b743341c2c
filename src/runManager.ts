// The runs of this workspace: read through the core's RunStore, refreshed from a file-system watcher
// on the runs folder (status.json, meta.json; debounced) and, as its fallback, a stat of each
// running run's status.json every 2 s (core/statusPoll); never by talking to the trainer. Holds the
// queue that starts a sweep's runs one after another (or N at once, one GPU each). The queue is
// mirrored on disk (core/queueFile), so a reloaded window carries on with it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { RunStore, type StoredRun } from './core/runStore';
import type { RunStatus } from './core/generated/status';
import type { RunState } from './core/messages';
import { requirePython } from './python';
import { EXIT_ALREADY_RUNNING, otherNodeCommands, spawnTrainer, stopRun, trainerCommand } from './core/trainerLaunch';
import { isTrainerOf } from './core/trainerProcess';
import { killTrainer, type RunEnd } from './core/killTrainer';
import { isTerminal as isJobTerminal } from './core/slurm/jobs';
import { adoptOrphanQueues, saveQueue, type QueueEntry } from './core/queueFile';
import { lastLines } from './views/runFormat';
import { readTail } from './core/fileTail';
import { bundledDataEnv, withCodeExecution } from './trainerEnv';
import { SlurmRuns } from './slurmRuns';
import { StatusChangePoll } from './core/statusPoll';

export interface StateChange { run: StoredRun; from: RunStatus['state']; to: RunStatus['state'] }

interface Active { pid: number; slot: number }

const TERMINAL = new Set<RunStatus['state']>(['completed', 'failed', 'stopped']);

export class RunManager implements vscode.Disposable {
  private _runs: StoredRun[] = [];
  private readonly queue: QueueEntry[] = [];
  private readonly active = new Map<string, Active>();
  private readonly stopping = new Set<string>();
  private readonly _onDidChangeRuns = new vscode.EventEmitter<readonly StoredRun[]>();
  readonly onDidChangeRuns = this._onDidChangeRuns.event;
  private readonly _onDidChangeState = new vscode.EventEmitter<StateChange>();
  readonly onDidChangeState = this._onDidChangeState.event;
  /** A running run's heartbeat went quiet for finetuneLab.stalledAfterSeconds (the process still exists). */
  private readonly _onDidStall = new vscode.EventEmitter<StoredRun>();
  readonly onDidStall = this._onDidStall.event;
  private readonly disposables: vscode.Disposable[] = [this._onDidChangeRuns, this._onDidChangeState, this._onDidStall];
  /** Why a run is being killed (Kill Trainer): what its status says once the process is gone. */
  private readonly killing = new Map<string, string>();
  private watcher?: vscode.FileSystemWatcher;
  private watchedDir?: string;
  private timer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  private refreshAgain = false;
  private loaded = false;
  private readonly statusPoll = new StatusChangePoll();

  constructor(private readonly extensionUri: vscode.Uri) {
    this.slurm = new SlurmRuns(extensionUri, () => this.store, () => this.refresh());
    this.disposables.push(vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('finetuneLab.runsDirectory')) { this.watch(); void this.refresh(); }
      if (e.affectsConfiguration('finetuneLab.maxConcurrentRuns')) void this.pump();
    }));
  }

  /** `<workspace>/.finetune/runs` or the setting; undefined without a folder open. */
  get runsDir(): string | undefined {
    const folder = vscode.workspace.workspaceFolders?.[0];
    const setting = vscode.workspace.getConfiguration('finetuneLab', folder?.uri).get<string>('runsDirectory') || '.finetune/runs';
    if (path.isAbsolute(setting)) return setting;
    return folder ? path.join(folder.uri.fsPath, setting) : undefined;
  }

  get store(): RunStore | undefined {
    const dir = this.runsDir;
    const staleAfterS = vscode.workspace.getConfiguration('finetuneLab').get<number>('stalledAfterSeconds');
    return dir ? new RunStore(dir, { staleAfterS }) : undefined;
  }

  get runs(): readonly StoredRun[] { return this._runs; }

  find(id: string): StoredRun | undefined { return this._runs.find((r) => r.id === id); }

  /**
   * The reconciled state of a run (status.json, the pid, run_finished): what the Runs view shows,
   * and what every panel shows (RunStateSource, src/panels/runFeed.ts). Undefined until read.
   */
  stateOf(id: string): { state: RunState; error: string | null; stale: boolean } | undefined {
    const s = this.find(id)?.status;
    return s && { state: s.state, error: s.error ?? null, stale: s.stale === true };
  }

  onDidChangeStates(listener: () => void): vscode.Disposable { return this.onDidChangeRuns(() => listener()); }

  /** Reads the runs shortly after activation (the status bar and re-attaching), not during it. */
  loadSoon(delayMs = 1500): void {
    const t = setTimeout(() => void this.load(), delayMs);
    this.disposables.push({ dispose: () => clearTimeout(t) });
  }

  /**
   * First read: starts the watcher, reconciles what died while the editor was away, and carries on
   * with the queue of a window that is gone (a reload). Queued runs of a live window or of the CLI
   * are left to their owner.
   */
  async load(): Promise<void> {
    if (this.loaded) return this.refreshing;
    this.loaded = true;
    this.watch();
    // A process that dies says nothing to the file system: while runs are running, re-check
    // pid and heartbeat now and then (reads status files; never talks to the trainer).
    const check = setInterval(() => {
      // Slurm runs change state on the cluster (pending → running → done): ask about them too.
      // (and a finished run's job until it leaves the queue, so slurm.json records how it ended).
      if (this._runs.some((r) => r.status.state === 'running' || (r.slurm && (r.status.state === 'queued' || !isJobTerminal(r.slurm.state ?? 'PENDING'))))) void this.refresh();
    }, 15_000);
    // Live progress without the watcher: it can miss or delay events (a busy host, NFS, inotify limits).
    // The poll compares with the files as the last refresh found them, so it costs no refresh of
    // its own while the watcher keeps up.
    const progress = setInterval(() => {
      void this.statusPoll.changed(this.runningDirs()).then((changed) => { if (changed) this.scheduleRefresh(); });
    }, 2_000);
    this.disposables.push({ dispose: () => { clearInterval(check); clearInterval(progress); } });
    await this.refresh();
    this.adoptQueues();
  }

  /** Takes over queues whose extension host has exited (see core/queueFile) and starts them. */
  private adoptQueues(): void {
    const dir = this.runsDir;
    if (!dir) return;
    const startable = adoptOrphanQueues(dir).filter(({ id, resume }) => {
      const state = this.find(id)?.status.state;
      return state === 'queued' || (resume && (state === 'stopped' || state === 'failed'));
    });
    if (!startable.length) return;
    for (const e of startable) this.enqueue([e.id], e.resume); // in order; pump starts after the first await
    void vscode.window.showInformationMessage(
      `Finetune Lab: carrying on with ${startable.length} queued run${startable.length === 1 ? '' : 's'} that a closed or reloaded window left waiting.`,
      'Show Runs',
    ).then((pick) => { if (pick) void vscode.commands.executeCommand('finetuneLab.runs.focus'); });
  }

  /** Mirrors the queue to disk; a failure only costs the hand-over after a reload. */
  private saveQueue(): void {
    const dir = this.runsDir;
    if (!dir) return;
    try { saveQueue(dir, this.queue); } catch (e) { console.warn(`[finetune-lab] could not save the run queue: ${(e as Error).message}`); }
  }

  /** Slots in use: runs this window started, and runs still training that it re-attached to. */
  private busy(): number {
    // Slurm runs train on the cluster: they take no slot here.
    return this.active.size + this._runs.filter((r) => r.status.state === 'running' && !this.active.has(r.id) && !isSlurm(r)).length;
  }

  private watch(): void {
    const dir = this.runsDir;
    if (this.watchedDir === dir) return;
    this.watcher?.dispose();
    this.watchedDir = dir;
    if (!dir) return;
    // Inside the workspace, go through the workspace folder: its watcher also sees the runs folder
    // being created later. Outside, watch the folder itself.
    const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(dir));
    const rel = folder ? path.relative(folder.uri.fsPath, dir).split(path.sep).join('/') : '';
    const pattern = folder && rel && !rel.startsWith('..')
      ? new vscode.RelativePattern(folder, `${rel}/**/{status.json,meta.json}`)
      : new vscode.RelativePattern(vscode.Uri.file(dir), '**/{status.json,meta.json}');
    const w = vscode.workspace.createFileSystemWatcher(pattern);
    const kick = (): void => this.scheduleRefresh();
    w.onDidChange(kick); w.onDidCreate(kick); w.onDidDelete(kick);
    this.watcher = w;
  }

  scheduleRefresh(delayMs = 200): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), delayMs);
  }

  /** Re-reads every run; writes reconciled states back to status.json; reports state changes. */
  async refresh(): Promise<void> {
    if (this.refreshing) { this.refreshAgain = true; return this.refreshing; }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        // What is read next includes every status write until now: the poll starts from here.
        await this.statusPoll.changed(this.runningDirs());
        const store = this.store;
        const next = store ? await store.list() : [];
        const before = new Map(this._runs.map((r) => [r.id, r.status.state]));
        const stalled = new Set(this._runs.filter((r) => r.status.stale).map((r) => r.id));
        for (const run of next) {
          if (run.status.reconciled && store && TERMINAL.has(run.status.state) && !this.active.has(run.id)) {
            await this.persist(store, run);
          }
        }
        this._runs = next;
        this._onDidChangeRuns.fire(next);
        let freed = false;
        for (const run of next) {
          const from = before.get(run.id);
          if (from && from !== run.status.state) this._onDidChangeState.fire({ run, from, to: run.status.state });
          if (run.status.stale && run.status.state === 'running' && !stalled.has(run.id)) this._onDidStall.fire(run);
          if (from === 'running' && run.status.state !== 'running' && !this.active.has(run.id)) freed = true;
        }
        // A re-attached run (not our child: no exit event) finished: its slot is free for the queue.
        if (freed && this.queue.length) void this.pump();
        // A Slurm job ended: runs held back by the queue's submit limit may go now.
        if (this.slurm.waiting && next.some((r) => r.slurm && before.get(r.id) !== r.status.state && TERMINAL.has(r.status.state))) void this.slurm.resubmitDeferred();
      } while (this.refreshAgain);
    })().finally(() => { this.refreshing = undefined; });
    return this.refreshing;
  }

  private runningDirs(): string[] {
    return this._runs.filter((r) => r.status.state === 'running').map((r) => r.dir);
  }

  /** The reconciled status, without the reader's annotations, as the new status.json. */
  private async persist(store: RunStore, run: StoredRun): Promise<void> {
    const { stale: _stale, reconciled: _why, slurm: _job, ...status } = run.status;
    void _stale; void _why; void _job;
    if (TERMINAL.has(status.state) && status.finished == null) status.finished = Date.now() / 1000;
    try { await store.writeStatus(run.id, status); } catch { /* read-only folder: show it anyway */ }
  }

  /** Queues runs (already created, status queued) and starts as many as the settings allow. */
  enqueue(ids: readonly string[], resume = false): void {
    for (const id of ids) if (!this.queue.some((q) => q.id === id) && !this.active.has(id)) this.queue.push({ id, resume });
    this.saveQueue();
    void this.pump();
  }

  isQueued(id: string): boolean { return this.queue.some((q) => q.id === id); }

  private maxConcurrent(): number {
    return Math.max(1, vscode.workspace.getConfiguration('finetuneLab').get<number>('maxConcurrentRuns') ?? 1);
  }

  /** CUDA_VISIBLE_DEVICES per slot: the setting's ids, else 0..N-1 when more than one run may train at once. */
  private devices(): string[] {
    const listed = vscode.workspace.getConfiguration('finetuneLab').get<string[]>('cudaDevices') ?? [];
    if (listed.length) return listed;
    const n = this.maxConcurrent();
    return n > 1 ? Array.from({ length: n }, (_, i) => String(i)) : [];
  }

  private pumping = false;
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length && this.busy() < this.maxConcurrent()) {
        if (!vscode.workspace.isTrusted) return;
        const python = await requirePython();
        if (!python) return; // the queue waits; Start again after fixing Python
        const next = this.queue.shift()!;
        this.saveQueue();
        try {
          await this.launch(next.id, next.resume, python.path);
        } catch (e) {
          void vscode.window.showErrorMessage(`Finetune Lab: could not start ${next.id}: ${(e as Error).message}`);
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private async launch(id: string, resume: boolean, python: string): Promise<void> {
    const store = this.store;
    if (!store) return;
    if (!fs.existsSync(store.dir(id))) {
      // Queued in another runs folder: finetuneLab.runsDirectory changed before its turn came.
      void vscode.window.showWarningMessage(`Finetune Lab: ${id} was not started: it is not in the runs folder ${this.runsDir} (finetuneLab.runsDirectory changed after it was queued). Start it again from its experiment.`);
      return;
    }
    const planned = await store.get(id);
    if (planned?.status.state === 'running') { // started meanwhile by another window or the CLI: never twice
      void vscode.window.showInformationMessage(`Finetune Lab: ${id} is already running (pid ${planned.status.pid}); not started again.`);
      return;
    }
    if (planned?.config?.launcher?.kind === 'slurm') { await this.submitSlurm([id], resume); return; }
    const dir = store.dir(id);
    const used = new Set([...this.active.values()].map((a) => a.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    const devices = this.devices();
    const env: Record<string, string> = bundledDataEnv(this.extensionUri);
    if (devices.length) env.CUDA_VISIBLE_DEVICES = devices[slot % devices.length];
    if (resume) {
      const run = await store.get(id);
      if (run) await store.writeStatus(id, { ...stripReader(run.status), state: 'queued', error: null, pid: null });
    }
    const trainerDir = vscode.Uri.joinPath(this.extensionUri, 'trainer').fsPath;
    let started;
    try {
      started = await spawnTrainer(trainerCommand(python, trainerDir, dir, { resume, env: withCodeExecution({ ...process.env, ...env }) }));
    } catch (e) {
      const run = await store.get(id);
      if (run) await store.writeStatus(id, { ...stripReader(run.status), state: 'failed', phase: 'done', error: `could not start ${python}: ${(e as Error).message}` });
      return this.refresh();
    }
    this.active.set(id, { pid: started.pid, slot });
    void started.exit.then((exit) => this.onExit(id, exit.code, exit.signal));
    const launcher = planned?.config?.launcher;
    if (launcher?.kind === 'torchrun' && (launcher.nnodes ?? 1) > 1) {
      const lines = otherNodeCommands(python, trainerDir, dir, launcher, resume);
      void vscode.window.showInformationMessage(
        `Finetune Lab: ${id} is node ${launcher.node_rank ?? 0} of ${launcher.nnodes}; it waits at ${launcher.rdzv_endpoint} until the other machines start: ${lines.join(' ; ')}`,
        'Copy Commands',
      ).then((pick) => { if (pick) void vscode.env.clipboard.writeText(lines.join('\n') + '\n'); });
    }
    this.scheduleRefresh(0);
  }

  /** The trainer ended. If it never wrote a final state, it died: mark the run failed with its log's last lines. */
  private async onExit(id: string, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    this.active.delete(id);
    const store = this.store;
    const run = store ? await store.get(id) : undefined;
    const killedWhy = this.killing.get(id);
    this.killing.delete(id);
    if (code === EXIT_ALREADY_RUNNING) {
      // Another window (or the CLI) started this run's trainer first; it owns the run folder.
      this.stopping.delete(id);
      void vscode.window.showWarningMessage(`Finetune Lab: ${id} is already being trained by another process (another window or the CLI); not started twice.`);
      await this.refresh();
      return void this.pump();
    }
    // The store's reader may already call it "process disappeared"; here we know more (exit code, log).
    const died = run && (!TERMINAL.has(run.status.state) || run.status.reconciled === 'process disappeared');
    if (store && run && died) {
      const wasStopped = this.stopping.has(id);
      const tail = lastLines(readTail(path.join(run.dir, 'train.log')), 1)[0];
      const why = signal ? `killed by ${signal}` : `exited with code ${code}`;
      await this.recordEnd(store, run, {
        state: wasStopped && !killedWhy ? 'stopped' : 'failed',
        error: killedWhy ?? (wasStopped ? `stopped (${why})` : `trainer ${why}${tail ? `: ${tail}` : ''}`),
      });
    } else if (store && run?.status.reconciled) {
      await this.persist(store, run);
    }
    this.stopping.delete(id);
    await this.refresh();
    void this.pump();
  }

  /** Stop: a queued run leaves the queue; a running one gets SIGINT, then SIGKILL after the grace period. */
  async stop(id: string): Promise<void> {
    const store = this.store;
    const run = this.find(id) ?? (store ? await store.get(id) : undefined);
    const qi = this.queue.findIndex((q) => q.id === id);
    if (qi >= 0) { this.queue.splice(qi, 1); this.saveQueue(); }
    this.slurm.forget(id);
    if (store && run?.slurm && (run.status.state === 'running' || run.status.state === 'queued')) return this.slurm.stop(store, run);
    // Only a live run is signalled: a finished run's pid may belong to another process by now.
    const live = this.active.has(id) || run?.status.state === 'running';
    let pid = this.active.get(id)?.pid ?? (live ? run?.status.pid : undefined) ?? undefined;
    // status.json's pid is the workspace's word: signal it only if it is this run's trainer.
    if (pid && !this.active.has(id) && run && !isTrainerOf(pid, run.dir)) pid = undefined;
    if (!pid || pid <= 0) {
      if (store && run && run.status.state === 'queued') {
        await store.writeStatus(id, { ...stripReader(run.status), state: 'stopped', error: 'stopped before it started' });
      }
      return this.refresh();
    }
    this.stopping.add(id);
    const grace = (vscode.workspace.getConfiguration('finetuneLab').get<number>('stopGraceSeconds') ?? 30) * 1000;
    const clean = (await stopRun(pid, { graceMs: grace })) !== 'killed';
    if (!clean && store && !this.active.has(id)) {
      const now = await store.get(id);
      if (now && !TERMINAL.has(now.status.state)) {
        await this.recordEnd(store, now, { state: 'stopped', error: `killed after ${grace / 1000} s without stopping` });
      }
    }
    await this.refresh();
  }

  /** Kill Trainer (core/killTrainer.ts): SIGKILL to the run's group now, the run then failed with the reason. */
  async kill(id: string): Promise<void> {
    const store = this.store;
    const run = (store ? await store.get(id) : undefined) ?? this.find(id);
    if (!store || !run || run.status.state !== 'running' || run.slurm) return this.refresh();
    const ownPid = this.active.get(id)?.pid;
    const done = await killTrainer(run, {
      ownPid,
      record: (r, end) => { this.killing.set(id, end.error); return this.recordEnd(store, r, end); },
      reread: () => store.get(id),
    });
    if (!done.killed) void vscode.window.showWarningMessage(`Finetune Lab: ${id}: ${done.why}; nothing was killed.`);
    if (!this.active.has(id)) this.killing.delete(id);
    await this.refresh();
  }

  /**
   * The end of a run that said nothing itself, into status.json. When the folder cannot be written
   * (disk full, read-only) the user is told here, since the run folder cannot say it.
   */
  private async recordEnd(store: RunStore, run: StoredRun, end: RunEnd): Promise<void> {
    try {
      await store.writeStatus(run.id, { ...stripReader(run.status), state: end.state, phase: 'done', finished: Date.now() / 1000, error: end.error });
    } catch (e) {
      void vscode.window.showErrorMessage(`Finetune Lab: ${run.id} ${end.state}: ${end.error}. Could not record it in the run folder: ${(e as Error).message}`);
    }
  }

  isActive(id: string): boolean { return this.active.has(id); }

  // ---- Slurm (launcher.kind slurm): src/slurmRuns.ts ----

  private readonly slurm: SlurmRuns;

  /** Submits runs as Slurm jobs (a sweep: one job per run, or one array); sbatch's rejection is shown. */
  submitSlurm(ids: readonly string[], resume = false): Promise<void> { return this.slurm.submit(ids, resume); }

  async delete(id: string): Promise<void> {
    if (this.active.has(id) || this.find(id)?.status.state === 'running') await this.stop(id);
    await this.store?.delete(id);
    await this.refresh();
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.watcher?.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

function stripReader(s: StoredRun['status']): RunStatus {
  const { stale: _a, reconciled: _b, slurm: _c, ...rest } = s;
  void _a; void _b; void _c;
  return rest;
}

const isSlurm = (r: StoredRun): boolean => !!r.slurm || r.config?.launcher?.kind === 'slurm';
