// Runs one planned run in the foreground: starts the trainer, tails its events, prints a progress line
// every few seconds (step/total, loss, eta), and stops it cleanly on Ctrl-C.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunEvent } from '../core/generated/events';
import type { RunStatus } from '../core/generated/status';
import { EventTail } from '../core/events';
import { RUN_FILES, type RunStore } from '../core/runStore';
import { EXIT_ALREADY_RUNNING, otherNodeCommands, spawnTrainer, stopRun, trainerCommand } from '../core/trainerLaunch';
import { num } from './table';
import { formatDuration } from '../core/duration';

export type RunOutcome = 'completed' | 'failed' | 'stopped';

export interface FollowOptions {
  python: string;
  trainerDir: string;
  resume?: boolean;
  /** e.g. "[2/4] " */
  prefix?: string;
  progressEveryMs?: number;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

/** Tracks progress from events; `line()` is the progress line. */
export class Progress {
  total?: number;
  step?: number;
  loss?: number;
  pretrain?: { step: number; total: number };
  private first?: { step: number; time: number };
  private last?: { step: number; time: number };
  finished?: Extract<RunEvent, { type: 'run_finished' }>;
  changed = false;

  add(e: RunEvent): void {
    switch (e.type) {
      case 'run_started': this.total = e.total_steps; break;
      case 'pretrain': this.pretrain = { step: e.step, total: e.total_steps }; this.changed = true; break;
      case 'train':
        this.step = e.step; this.loss = e.loss; this.changed = true;
        this.first ??= { step: e.step, time: e.time };
        this.last = { step: e.step, time: e.time };
        break;
      case 'run_finished': this.finished = e; break;
      default: break;
    }
  }

  eta(): number | undefined {
    if (!this.first || !this.last || this.total == null || this.last.step <= this.first.step) return undefined;
    const rate = (this.last.step - this.first.step) / (this.last.time - this.first.time);
    return (this.total - this.last.step) / rate;
  }

  line(): string {
    if (this.step == null && this.pretrain) return `pretraining the base ${this.pretrain.step}/${this.pretrain.total}`;
    if (this.step == null) return 'starting';
    const eta = this.eta();
    return `step ${this.step}/${this.total ?? '?'}  loss ${num(this.loss)}${eta != null ? `  eta ${formatDuration(eta)}` : ''}`;
  }
}

function evalLine(e: Extract<RunEvent, { type: 'eval' }>): string {
  const tasks = e.tasks.map((t) => `${t.role === 'learning' ? 'learn' : 'forget'}:${t.name} ${num(t.value)}`).join('  ');
  return `eval @${e.step}  ${tasks}`;
}

const isTerminal = (s: RunStatus['state']): boolean => s === 'completed' || s === 'failed' || s === 'stopped';

/**
 * Starts (or resumes) a run and follows it to the end. Ctrl-C: SIGINT to the trainer's group (it
 * checkpoints and stops); a second Ctrl-C kills it. Returns the outcome and whether the user interrupted.
 */
export async function followRun(store: RunStore, id: string, opts: FollowOptions): Promise<{ outcome: RunOutcome; interrupted: boolean }> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const dir = store.dir(id);
  const prefix = opts.prefix ?? '';
  const cmd = trainerCommand(opts.python, opts.trainerDir, dir, { resume: opts.resume, env: opts.env });
  const eventsFile = path.join(dir, RUN_FILES.events);
  // On resume, follow only what is appended from now on.
  const fromOffset = opts.resume && fs.existsSync(eventsFile) ? fs.statSync(eventsFile).size : 0;
  const launcher = (await store.get(id))?.config?.launcher;
  if (launcher?.kind === 'torchrun' && (launcher.nnodes ?? 1) > 1) {
    log(`${prefix}${id}  node ${launcher.node_rank ?? 0} of ${launcher.nnodes} starts here; on each other machine run:`);
    for (const line of otherNodeCommands(opts.python, opts.trainerDir, dir, launcher, opts.resume)) log(`  ${line}`);
  }
  const trainer = await spawnTrainer(cmd);
  const progress = new Progress();
  const tail = new EventTail(eventsFile, { pollMs: 500, fromOffset });
  tail.onEvents((events) => {
    for (const e of events) {
      progress.add(e);
      if (e.type === 'eval') log(`${prefix}${id}  ${evalLine(e)}`);
      if (e.type === 'log' && (e.level === 'warning' || e.level === 'error')) log(`${prefix}${id}  ${e.level}: ${e.message}`);
    }
  });
  const timer = setInterval(() => {
    if (progress.changed) { progress.changed = false; log(`${prefix}${id}  ${progress.line()}`); }
  }, opts.progressEveryMs ?? 5000);

  let interrupted = false;
  let sigints = 0;
  const onSigint = () => {
    interrupted = true;
    sigints++;
    if (sigints === 1) {
      log(`${prefix}${id}  stopping: the trainer finishes its step and checkpoints (Ctrl-C again to kill)`);
      void stopRun(trainer.pid, { graceMs: 30_000 });
    } else {
      try { process.kill(-trainer.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  };
  process.on('SIGINT', onSigint);
  try {
    const exit = await trainer.exit;
    await tail.poll();
    let outcome: RunOutcome;
    if (exit.code === EXIT_ALREADY_RUNNING) {
      // Another trainer (a window, another CLI) holds the run folder: it owns the run's files.
      log(`${prefix}${id}  not started: another process is already training this run`);
      return { outcome: 'failed', interrupted };
    }
    if (progress.finished) outcome = progress.finished.status;
    else {
      // The trainer died without run_finished (crash at import, killed): record it, since no one else will.
      const info = await store.get(id);
      const st = info?.status;
      if (st && isTerminal(st.state)) outcome = st.state as RunOutcome;
      else {
        outcome = 'failed';
        const why = `trainer exited (${exit.signal ?? `code ${exit.code}`}) without finishing; see ${path.join(dir, RUN_FILES.log)}`;
        if (st) {
          await store.writeStatus(id, { ...stripReconciled(st), state: 'failed', error: why, pid: trainer.pid, finished: Date.now() / 1000 })
            .catch((e: Error) => log(`${prefix}${id}  could not record the failure in the run folder: ${e.message}`));
        }
      }
    }
    if (progress.step != null && progress.changed) log(`${prefix}${id}  ${progress.line()}`);
    const err = progress.finished?.error ?? (outcome === 'failed' ? (await store.get(id))?.status.error : null);
    log(`${prefix}${id}  ${outcome}${err ? `: ${err}` : ''}`);
    if (outcome === 'failed') printLogTail(path.join(dir, RUN_FILES.log), log);
    return { outcome, interrupted };
  } finally {
    clearInterval(timer);
    tail.dispose();
    process.off('SIGINT', onSigint);
  }
}

function stripReconciled(s: RunStatus & { stale?: boolean; reconciled?: string }): RunStatus {
  const { stale: _s, reconciled: _r, ...rest } = s;
  void _s; void _r;
  return rest;
}

function printLogTail(file: string, log: (l: string) => void, lines = 15): void {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines);
    if (text.length && text[0]) log(`--- last lines of ${file}\n${text.join('\n')}\n---`);
  } catch { /* no log */ }
}
