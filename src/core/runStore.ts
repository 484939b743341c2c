// The runs folder: one folder per run (DECISIONS.md "A run folder"). The store creates runs (meta.json,
// config.yaml, status.json queued) and reads them back, validating each file against its schema and
// reconciling the status with what can be checked. A broken folder is reported, never thrown.
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import type { ExperimentConfig } from './generated/experiment';
import type { RunMeta } from './generated/meta';
import type { RunStatus } from './generated/status';
import type { RunEvent } from './generated/events';
import type { PlannedRun } from './sweep';
import { runId } from './sweep';
import { isRunId, runFolder } from './runPath';
import { assertYamlNesting } from './yamlBounds';
import { errorsText, validateAnalysis, validateExperiment, validateMeta, validateStatus } from './schemas';
import type { AnalysisConfig } from './generated/analysis';
import { writeFileAtomic, writeJsonAtomic } from './atomic';
import { lastEvents } from './events';
import { pidAlive as defaultPidAlive, reconcileStatus, type ReconciledStatus } from './reconcile';
import type { SlurmRecord } from './generated/slurm';
import { reconcileSlurm } from './slurm/reconcile';
import { isTerminal as isJobTerminal } from './slurm/jobs';
import { sharedTracker, type JobTracker } from './slurm/tracker';
import { readSlurmRecord, recordObservation } from './slurm/record';

export const RUN_FILES = {
  meta: 'meta.json', config: 'config.yaml', status: 'status.json', events: 'events.jsonl', log: 'train.log', checkpoints: 'checkpoints', exports: 'exports',
  slurm: 'slurm.json',
} as const;

export interface StoredRun {
  id: string;
  dir: string;
  meta: RunMeta;
  /** status.json reconciled with the process table and events.jsonl (see reconcile.ts). */
  status: ReconciledStatus;
  config?: ExperimentConfig;
  /** An analysis run's config.yaml (meta.json kind: analysis, schemas/analysis.schema.json); `config` is then unset. */
  analysis?: AnalysisConfig;
  /** The last event read while reconciling (only read for runs not yet finished). */
  lastEvent?: RunEvent;
  /** slurm.json: the run's Slurm job (launcher.kind slurm, once submitted). */
  slurm?: SlurmRecord;
  /** What is wrong with the folder (missing or invalid files); the other fields are then best effort. */
  error?: string;
}

export interface CreateRunMeta {
  experimentName: string;
  experimentFile?: string;
  sweepId?: string;
  sweepIndex?: number;
  sweepSize?: number;
}

export interface RunStoreOptions {
  pidAlive?: (pid: number) => boolean;
  /** Unix seconds. */
  now?: () => number;
  /** Asks Slurm about Slurm runs' jobs (default: the process's shared tracker, Slurm's real commands). */
  jobs?: JobTracker;
  /** Seconds without a heartbeat before a running run reads stale (reconcile.ts; default STALE_AFTER_S). */
  staleAfterS?: number;
}

const nowS = (): number => Date.now() / 1000;

export class RunStore {
  private readonly pidAlive: (pid: number) => boolean;
  private readonly now: () => number;
  private readonly tracker?: JobTracker;
  private readonly staleAfterS?: number;

  constructor(readonly runsDir: string, opts: RunStoreOptions = {}) {
    this.pidAlive = opts.pidAlive ?? defaultPidAlive;
    this.now = opts.now ?? nowS;
    this.tracker = opts.jobs;
    this.staleAfterS = opts.staleAfterS;
  }

  /** The tracker Slurm runs are read with. */
  get jobs(): JobTracker { return this.tracker ?? sharedTracker(); }

  /** `<runsDir>/<id>`; throws RunPathError for an id that is not one or a folder that is a symlink (runPath.ts). */
  dir(id: string): string {
    return runFolder(this.runsDir, id);
  }

  /** Every run folder (a real folder named like a run id, with a meta.json or status.json), newest first. */
  async list(): Promise<StoredRun[]> {
    let names: fs.Dirent[];
    try { names = await fs.promises.readdir(this.runsDir, { withFileTypes: true }); } catch { return []; }
    const runs = await Promise.all(names.filter((d) => d.isDirectory() && isRunId(d.name)).map((d) => this.read(d.name)));
    return runs.filter((r): r is StoredRun => !!r).sort((a, b) => b.meta.created - a.meta.created || (a.id < b.id ? 1 : -1));
  }

  async get(id: string): Promise<StoredRun | undefined> {
    try { return await this.read(id); } catch { return undefined; }
  }

  /** Makes the run folder and writes meta.json, config.yaml and status.json (queued). */
  async create(planned: PlannedRun, meta: CreateRunMeta): Promise<StoredRun> {
    await fs.promises.mkdir(this.runsDir, { recursive: true });
    const created = this.now();
    const base = runId(meta.experimentName, planned.label, new Date(created * 1000));
    let id = base;
    for (let n = 2; ; n++) {
      try { await fs.promises.mkdir(this.dir(id)); break; } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        id = `${base}-${n}`;
      }
    }
    const dir = this.dir(id);
    const runMeta: RunMeta = {
      v: 1, run_id: id, experiment_name: meta.experimentName, experiment_file: meta.experimentFile ?? null,
      sweep_id: meta.sweepId ?? null, sweep_index: meta.sweepIndex ?? null, sweep_size: meta.sweepSize ?? null,
      overrides: planned.overrides, created, label: planned.label,
    };
    const config = structuredClone(planned.config) as ExperimentConfig;
    delete (config as { sweep?: unknown }).sweep;
    const status: RunStatus = { v: 1, state: 'queued', pid: null, heartbeat: null, started: null, finished: null, step: 0, total_steps: config.train?.steps ?? 0, loss: null, error: null };
    try {
      await writeJsonAtomic(path.join(dir, RUN_FILES.meta), runMeta);
      await writeFileAtomic(path.join(dir, RUN_FILES.config), `# Resolved config of run ${id} (defaults filled). Written by Finetune Lab; the trainer reads it.\n${YAML.stringify(config)}`);
      await writeJsonAtomic(path.join(dir, RUN_FILES.status), status);
    } catch (e) { // disk full mid-way: no half-made run folder is left behind
      await fs.promises.rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw e;
    }
    return { id, dir, meta: runMeta, status, config };
  }

  /** Replaces status.json atomically (the trainer's job once it runs; the launcher may mark a dead start failed). */
  async writeStatus(id: string, status: RunStatus): Promise<void> {
    await writeJsonAtomic(path.join(this.dir(id), RUN_FILES.status), status);
  }

  async delete(id: string): Promise<void> {
    await fs.promises.rm(this.dir(id), { recursive: true, force: true });
  }

  private async read(id: string): Promise<StoredRun | undefined> {
    const dir = this.dir(id);
    const problems: string[] = [];
    const meta = await readJson(path.join(dir, RUN_FILES.meta));
    const status = await readJson(path.join(dir, RUN_FILES.status));
    if (meta.missing && status.missing) return undefined; // not a run folder
    let stat: fs.Stats | undefined;
    try { stat = await fs.promises.stat(dir); } catch { return undefined; }

    let runMeta: RunMeta;
    if (!meta.missing && !meta.error && validateMeta()(meta.value)) runMeta = meta.value as RunMeta;
    else {
      problems.push(`meta.json: ${meta.missing ? 'missing' : meta.error ?? errorsText(validateMeta().errors)}`);
      runMeta = { v: 1, run_id: id, experiment_name: id.replace(/-\d{8}-\d{6}-.*$/, ''), created: stat.birthtimeMs ? stat.birthtimeMs / 1000 : stat.mtimeMs / 1000 };
    }

    let runStatus: RunStatus;
    if (!status.missing && !status.error && validateStatus()(status.value)) runStatus = status.value as RunStatus;
    else {
      problems.push(`status.json: ${status.missing ? 'missing' : status.error ?? errorsText(validateStatus().errors)}`);
      runStatus = { v: 1, state: 'failed', step: 0, total_steps: 0, error: 'unreadable status.json' };
    }

    let config: ExperimentConfig | undefined;
    let analysis: AnalysisConfig | undefined;
    try {
      const text = await fs.promises.readFile(path.join(dir, RUN_FILES.config), 'utf8');
      assertYamlNesting(text);
      const parsed = YAML.parse(text) as unknown;
      // An analysis run's config says what was analysed, not how to train (issue 14).
      const validate = runMeta.kind === 'analysis' ? validateAnalysis() : validateExperiment();
      if (!validate(parsed)) problems.push(`config.yaml: ${errorsText(validate.errors)}`);
      else if (runMeta.kind === 'analysis') analysis = parsed as AnalysisConfig;
      else config = parsed as ExperimentConfig;
    } catch (e) {
      problems.push(`config.yaml: ${(e as Error).message.split('\n')[0]}`);
    }

    // Only an unfinished run needs its events to be reconciled; finished runs stay cheap to list.
    let lastEvent: RunEvent | undefined;
    const unfinished = runStatus.state === 'running' || runStatus.state === 'queued';
    if (unfinished) {
      const tail: RunEvent[] = await lastEvents(path.join(dir, RUN_FILES.events)).catch(() => []);
      // A run_finished followed by a run_started is a resumed run's earlier end: it no longer counts.
      const fin = tail.map((e) => e.type).lastIndexOf('run_finished');
      const start = tail.map((e) => e.type).lastIndexOf('run_started');
      lastEvent = fin > start ? tail[fin] : tail[tail.length - 1];
    }
    const slurm = await readSlurmRecord(dir, problems);
    let reconciled: ReconciledStatus;
    if (slurm) {
      // Finished runs are not asked about, except once to record how their job ended.
      const ask = unfinished || (slurm.state != null && !isJobTerminal(slurm.state));
      const view = ask ? await this.jobs.view(slurm.job_id) : { kind: 'missing' as const };
      if (view.kind === 'job') await recordObservation(dir, slurm, view.job, this.now()).catch(() => undefined);
      reconciled = reconcileSlurm(runStatus, { record: slurm, view, finished: lastEvent?.type === 'run_finished' ? lastEvent : undefined, now: this.now(), staleAfterS: this.staleAfterS });
    } else {
      // A Slurm run not yet submitted, or between sbatch and slurm.json: its pid (if any) is on another node.
      const onCluster = config?.launcher?.kind === 'slurm';
      reconciled = reconcileStatus(runStatus, { pidAlive: onCluster ? () => true : this.pidAlive, lastEvent, now: this.now(), staleAfterS: this.staleAfterS });
    }
    const info: StoredRun = { id, dir, meta: runMeta, status: reconciled, config, analysis, lastEvent, slurm };
    if (problems.length) info.error = problems.join('; ');
    return info;
  }
}

async function readJson(file: string): Promise<{ value?: unknown; missing?: boolean; error?: string }> {
  let text: string;
  try { text = await fs.promises.readFile(file, 'utf8'); } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? { missing: true } : { error: (e as Error).message };
  }
  try { return { value: JSON.parse(text) }; } catch (e) { return { error: `not JSON (${(e as Error).message})` }; }
}
