/**
 * The one host ⇄ webview protocol of Finetune Lab's views (dashboard, pareto, spectra),
 * imported by the panels in src/panels/ and by the bundles in webview/. Both directions are
 * discriminated unions on `type`; handlers switch with an `assertNever` default, and every
 * message that crosses the boundary is checked by `isHostToWebview` / `isWebviewToHost`
 * before use (a webview is untrusted input to the host, and vice versa).
 *
 * The host parses events.jsonl (src/core/events.ts) and posts drawing-ready, columnar
 * batches of NEW points only, so the webview never parses JSONL on its drawing path. A run's
 * state comes from the one place that reconciles it (the RunManager: status.json, the pid and
 * run_finished), never from a panel's own reading, so every view agrees with the Runs view.
 */
import { TRAIN_FIELDS, type TrainField } from './generated/trainFields';
import { isRunId } from './runIds';

export type ViewKind = 'dashboard' | 'pareto' | 'spectra';
/** A run's state as the views show it (status.json's `state`, reconciled; unknown before it is read). */
export type RunState = 'queued' | 'running' | 'completed' | 'failed' | 'stopped' | 'unknown';

/** What a view needs to label and colour a run, and its reconciled state. */
export interface RunHeader {
  id: string;
  dir: string;
  method: 'lora' | 'full' | 'unknown';
  rank: number | null;
  lr: number | null;
  targetModules: string | null;
  totalSteps: number | null;
  experiment: string | null;
  state: RunState;
  error: string | null;
  /** Running, but no heartbeat for the stalled threshold (finetuneLab.stalledAfterSeconds). */
  stale: boolean;
  /** analysis: a finetune analysed without training (run_started.kind, issue 14): no train events. */
  kind: 'training' | 'analysis';
  /** An analysis of PEFT's reduce_intruder_dimension applied to another run's adapter (its config's reduce_intruders). */
  reduceIntruders: ReduceIntrudersInfo | null;
  /** Unix time of each run_started (one per segment: a resumed run has several), for wall-time shares. */
  starts: number[];
  /**
   * Lines of events.jsonl the views could not use: not JSON, not an event, an unknown event type,
   * missing what a chart needs, or (counted again in `skippedNewer`) of a newer protocol version.
   */
  skipped: number;
  skippedNewer: number;
}

/** Which adapter was mitigated and how: runs of one source, top-k and ε form one λ path in the Pareto view. */
export interface ReduceIntrudersInfo { sourceRun: string; lambda: number; topK: number; epsilon: number }

/**
 * Train events as columns of equal length, one per field of the train event in the schema
 * (src/core/generated/trainFields.ts); NaN where the trainer wrote null. Float64Array because a
 * million points cross postMessage as one buffer each, not a million JSON numbers (VS Code
 * transfers typed arrays since 1.57).
 */
export type TrainColumns = Record<TrainField, Float64Array>;

/** Where the training loss stopped being finite (run_finished.diverged). */
export interface Divergence { step: number; value: 'NaN' | 'Infinity' | '-Infinity' }

export interface EvalTaskScore {
  name: string;
  role: 'learning' | 'forgetting';
  /** The eval type: loss, multiple_choice, exact_match, lm_eval, kl_to_base (as the trainer wrote it). */
  type: string;
  metric: string;
  /** null: the task failed at this step (`error` says why). */
  value: number | null;
  higherIsBetter: boolean;
  /** lm_eval: the task's version; null for the other types. */
  version: string | null;
  /** Examples scored (documents, sequences, windows). */
  n: number | null;
  error: string | null;
}

/** A role's score (learning or forgetting): the mean over its tasks, and its change from step 0. */
export interface RoleScore { value: number; higherIsBetter: boolean; delta: number }

export interface EvalPoint {
  step: number;
  /** Unix time the evaluation ended (its event's time), and the seconds it took. */
  time: number | null;
  seconds: number | null;
  tasks: EvalTaskScore[];
  learning: RoleScore | null;
  forgetting: RoleScore | null;
}

export interface SpectrumRecord {
  step: number;
  module: string;
  name: string;
  layer: number;
  kind: 'attention' | 'mlp';
  shape: [number, number];
  sv: number[];
  rank90: number;
  intruders: number | null;
  randomRank90: number | null;
  randomIntruders: number | null;
  loraRank: number | null;
}

/** New points of one run since the last batch. */
export interface RunAppend {
  runId: string;
  train?: TrainColumns;
  evals?: EvalPoint[];
  spectra?: SpectrumRecord[];
  diverged?: Divergence;
}

/**
 * What a panel needs to come back after a reload: the webview keeps it in its state
 * (setState) and VS Code hands that state to the panel serializer.
 */
export interface RestoreInfo {
  runs: { id: string; dir: string }[];
  runsDir?: string;
  filter?: { experimentName?: string; runIds?: string[] };
}

export type HostToWebview =
  | { type: 'init'; view: ViewKind; runs: RunHeader[]; restore: RestoreInfo }
  | { type: 'append'; batches: RunAppend[] }
  /** A run's header changed: its reconciled state, or what run_started says about it. */
  | { type: 'header'; run: RunHeader }
  | { type: 'error'; message: string };

export type WebviewToHost =
  | { type: 'ready' }
  | { type: 'openRun'; runId: string }
  /** Kill Trainer on a stalled run (the host acts only on a run the panel shows). */
  | { type: 'killRun'; runId: string }
  | { type: 'export'; format: 'png' | 'csv'; name: string; data: string }
  | { type: 'log'; level: 'info' | 'error'; message: string }
  /** The Spectra view's "Reduce Intruders…": the LoRA runs shown; the host asks which (when several) and λ. */
  | { type: 'reduceIntruders'; runIds: string[] };

export function assertNever(x: never): never {
  throw new Error(`unexpected message: ${JSON.stringify(x)}`);
}

// ---- validation -----------------------------------------------------------------------

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const isStr = (x: unknown): x is string => typeof x === 'string';
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isNumOrNull = (x: unknown): boolean => x === null || isNum(x);
const isArr = (x: unknown, item: (v: unknown) => boolean): boolean => Array.isArray(x) && x.every(item);
const RUN_STATES = new Set<string>(['queued', 'running', 'completed', 'failed', 'stopped', 'unknown']);
const VIEWS = new Set<string>(['dashboard', 'pareto', 'spectra']);
/** An export's name becomes a file name: no separators, no leading dot. */
const SAFE_NAME = /^[\w][\w.\- ]{0,120}$/;
const MAX_EXPORT = 64 * 1024 * 1024;

const isReduceInfo = (x: unknown): boolean => x === null
  || (isObj(x) && isStr(x.sourceRun) && isNum(x.lambda) && isNum(x.topK) && isNum(x.epsilon));

function isRunHeader(x: unknown): boolean {
  return isObj(x) && isStr(x.id) && isStr(x.dir) && ['lora', 'full', 'unknown'].includes(x.method as string)
    && isNumOrNull(x.rank) && isNumOrNull(x.lr) && (x.targetModules === null || isStr(x.targetModules))
    && isNumOrNull(x.totalSteps) && (x.experiment === null || isStr(x.experiment))
    && RUN_STATES.has(x.state as string) && (x.error === null || isStr(x.error)) && typeof x.stale === 'boolean'
    && (x.kind === 'training' || x.kind === 'analysis') && isReduceInfo(x.reduceIntruders)
    && isArr(x.starts, isNum) && isNum(x.skipped) && isNum(x.skippedNewer);
}

function isTrainColumns(x: unknown): boolean {
  if (!isObj(x) || !(x.step instanceof Float64Array)) return false;
  const n = x.step.length;
  return TRAIN_FIELDS.every((f) => x[f.key] instanceof Float64Array && (x[f.key] as Float64Array).length === n);
}

const DIVERGED_VALUES = new Set<string>(['NaN', 'Infinity', '-Infinity']);
const isDivergence = (x: unknown): boolean => isObj(x) && isNum(x.step) && DIVERGED_VALUES.has(x.value as string);

const isRoleScore = (x: unknown): boolean => x === null || (isObj(x) && isNum(x.value) && typeof x.higherIsBetter === 'boolean' && isNum(x.delta));

const isStrOrNull = (x: unknown): boolean => x === null || isStr(x);

function isEvalPoint(x: unknown): boolean {
  return isObj(x) && isNum(x.step) && isNumOrNull(x.time) && isNumOrNull(x.seconds) && isRoleScore(x.learning) && isRoleScore(x.forgetting)
    && isArr(x.tasks, (t) => isObj(t) && isStr(t.name) && (t.role === 'learning' || t.role === 'forgetting') && isStr(t.type)
      && isStr(t.metric) && isNumOrNull(t.value) && typeof t.higherIsBetter === 'boolean'
      && isStrOrNull(t.version) && isNumOrNull(t.n) && isStrOrNull(t.error));
}

function isSpectrum(x: unknown): boolean {
  return isObj(x) && isNum(x.step) && isStr(x.module) && isStr(x.name) && isNum(x.layer)
    && (x.kind === 'attention' || x.kind === 'mlp') && isArr(x.shape, isNum) && (x.shape as unknown[]).length === 2
    && isArr(x.sv, isNum) && isNum(x.rank90) && isNumOrNull(x.intruders) && isNumOrNull(x.randomRank90)
    && isNumOrNull(x.randomIntruders) && isNumOrNull(x.loraRank);
}

function isRunAppend(x: unknown): boolean {
  return isObj(x) && isStr(x.runId)
    && (x.train === undefined || isTrainColumns(x.train))
    && (x.evals === undefined || isArr(x.evals, isEvalPoint))
    && (x.spectra === undefined || isArr(x.spectra, isSpectrum))
    && (x.diverged === undefined || isDivergence(x.diverged));
}

export function isRestoreInfo(x: unknown): x is RestoreInfo {
  if (!isObj(x) || !isArr(x.runs, (r) => isObj(r) && isStr(r.id) && isStr(r.dir))) return false;
  if (x.runsDir !== undefined && !isStr(x.runsDir)) return false;
  if (x.filter === undefined) return true;
  const f = x.filter;
  return isObj(f) && (f.experimentName === undefined || isStr(f.experimentName)) && (f.runIds === undefined || isArr(f.runIds, isStr));
}

export function isHostToWebview(x: unknown): x is HostToWebview {
  if (!isObj(x)) return false;
  switch (x.type) {
    case 'init': return VIEWS.has(x.view as string) && isArr(x.runs, isRunHeader) && isRestoreInfo(x.restore);
    case 'append': return isArr(x.batches, isRunAppend);
    case 'header': return isRunHeader(x.run);
    case 'error': return isStr(x.message);
    default: return false;
  }
}

export function isWebviewToHost(x: unknown): x is WebviewToHost {
  if (!isObj(x)) return false;
  switch (x.type) {
    case 'ready': return true;
    case 'openRun': case 'killRun': return isRunId(x.runId);
    case 'export': return (x.format === 'png' || x.format === 'csv') && isStr(x.name) && SAFE_NAME.test(x.name)
      && isStr(x.data) && x.data.length < MAX_EXPORT
      && (x.format === 'csv' || x.data.startsWith('data:image/png;base64,'));
    case 'log': return (x.level === 'info' || x.level === 'error') && isStr(x.message) && x.message.length < 10_000;
    case 'reduceIntruders': return isArr(x.runIds, (id) => isStr(id) && id.length > 0 && id.length < 512) && (x.runIds as unknown[]).length > 0 && (x.runIds as unknown[]).length <= 64;
    default: return false;
  }
}
