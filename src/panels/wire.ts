/**
 * Turns parsed events (src/core/events.ts) into the drawing-ready batches of
 * src/core/messages.ts. Pure (no vscode import) so node --test covers it. Works on the
 * events' JSON shape (schemas/events.schema.json) and takes the train columns from the schema's
 * own list (TRAIN_FIELDS), so a train field added there is carried without an edit here; a line
 * an older or newer trainer wrote differently loses only what is missing.
 */
import { TRAIN_FIELDS } from '../core/generated/trainFields';
import { eventsSchema } from '../core/schemas';
import type { Divergence, EvalPoint, HostToWebview, RestoreInfo, RunAppend, RunHeader, RunState, SpectrumRecord, TrainColumns, ViewKind } from '../core/messages';

/** Which parts of the events a view draws (the Pareto view needs no train columns). */
export interface FeedFilter { train: boolean; evals: boolean; spectra: boolean }
export const VIEW_FILTERS: Record<ViewKind, FeedFilter> = {
  dashboard: { train: true, evals: true, spectra: false },
  pareto: { train: false, evals: true, spectra: false },
  // run_started (method, LoRA rank) comes through RunHeader; spectra are the data.
  spectra: { train: false, evals: false, spectra: true },
};

/** The parts of a batch a view draws; undefined when none. */
export function filterAppend(a: RunAppend, filter: FeedFilter): RunAppend | undefined {
  const out: RunAppend = { runId: a.runId };
  if (filter.train && a.train) out.train = a.train;
  if (filter.evals && a.evals) out.evals = a.evals;
  if (filter.spectra && a.spectra) out.spectra = a.spectra;
  if (filter.train && a.diverged) out.diverged = a.diverged; // marked on the train charts
  return out.train || out.evals || out.spectra || out.diverged ? out : undefined;
}

/** What a panel posts when its webview says `ready`: init, then everything so far (basePanel.ts). */
export function readyMessages(view: ViewKind, infos: RunHeader[], restore: RestoreInfo, all: RunAppend[]): HostToWebview[] {
  const out: HostToWebview[] = [{ type: 'init', view, runs: infos, restore }];
  if (all.length) out.push({ type: 'append', batches: all });
  return out;
}

type Ev = { type?: unknown; [k: string]: unknown };
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const nan = (v: unknown): number => num(v) ?? NaN;
const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});

const TRAIN_KEYS = TRAIN_FIELDS.map((f) => f.key);
/** The event types of the protocol (schemas/events.schema.json); others are counted as skipped. */
const KNOWN_TYPES = new Set<unknown>(eventsSchema.properties.type.enum);

/** Events a view could not use, counted while folding (RunHeader.skipped). */
export interface FoldStats { skipped: number }
const DIVERGED = new Set(['NaN', 'Infinity', '-Infinity']);

/** Folds a run's new events into one batch; returns undefined when nothing drawable came. */
export function toAppend(runId: string, events: readonly unknown[], stats: FoldStats = { skipped: 0 }): RunAppend | undefined {
  // Train points go straight into typed columns sized by a first count: a reopened run of a
  // million lines is read in about 2x the time of JSON.parse alone (bench/feed).
  let nTrain = 0;
  for (const raw of events) if ((raw as Ev | null)?.type === 'train') nTrain++;
  const cols = nTrain ? TRAIN_KEYS.map(() => new Float64Array(nTrain)) : [];
  let n = 0;
  const evals: EvalPoint[] = [];
  const spectra: SpectrumRecord[] = [];
  let diverged: Divergence | undefined;
  for (const raw of events) {
    const e = obj(raw) as Ev;
    if (!KNOWN_TYPES.has(e.type)) { stats.skipped++; continue; }
    if (e.type === 'train') {
      // A point needs its x and the loss; any other field it lacks (an older trainer) is NaN.
      if (num(e.step) === null || num(e.loss) === null) { stats.skipped++; continue; }
      for (let k = 0; k < TRAIN_KEYS.length; k++) cols[k][n] = nan(e[TRAIN_KEYS[k]]);
      n++;
    } else if (e.type === 'run_finished') {
      const d = obj(e.diverged), step = num(d.step);
      if (step !== null && typeof d.value === 'string' && DIVERGED.has(d.value)) diverged = { step, value: d.value as Divergence['value'] };
    } else if (e.type === 'eval') {
      const step = num(e.step);
      if (step === null || !Array.isArray(e.tasks)) { stats.skipped++; continue; }
      const agg = (a: unknown): EvalPoint['learning'] => {
        const o = obj(a);
        const v = num(o.value), d = num(o.delta);
        return v === null || typeof o.higher_is_better !== 'boolean' ? null : { value: v, higherIsBetter: o.higher_is_better, delta: d ?? 0 };
      };
      evals.push({
        step, time: num(e.time), seconds: num(e.seconds),
        // a task that failed at this step (value null, an error) is kept: the views say so
        tasks: e.tasks.map(obj).filter((t) => typeof t.name === 'string' && (num(t.value) !== null || typeof t.error === 'string') && (t.role === 'learning' || t.role === 'forgetting'))
          .map((t) => ({
            name: t.name as string, role: t.role as 'learning' | 'forgetting', type: String(t.type ?? ''), metric: String(t.metric ?? ''),
            value: num(t.value), higherIsBetter: t.higher_is_better === true,
            version: t.version === null || t.version === undefined ? null : String(t.version), n: num(t.n),
            error: typeof t.error === 'string' ? t.error : null,
          })),
        learning: agg(e.learning),
        forgetting: agg(e.forgetting),
      });
    } else if (e.type === 'spectrum') {
      const step = num(e.step), layer = num(e.layer), rank90 = num(e.rank90);
      const shape = Array.isArray(e.shape) ? e.shape.map(num) : [];
      if (step === null || layer === null || rank90 === null || typeof e.module !== 'string' || (e.kind !== 'attention' && e.kind !== 'mlp')
        || shape.length !== 2 || shape[0] === null || shape[1] === null) { stats.skipped++; continue; }
      spectra.push({
        step, layer, rank90, module: e.module, kind: e.kind,
        name: typeof e.name === 'string' ? e.name : e.module.split('.').pop() ?? e.module,
        shape: [shape[0], shape[1]],
        sv: Array.isArray(e.singular_values) ? e.singular_values.filter((v): v is number => num(v) !== null) : [],
        intruders: num(e.intruders), randomRank90: num(e.random_rank90), randomIntruders: num(e.random_intruders), loraRank: num(e.lora_rank),
      });
    }
  }
  if (n === 0 && evals.length === 0 && spectra.length === 0 && !diverged) return undefined;
  const out: RunAppend = { runId };
  if (n) out.train = Object.fromEntries(TRAIN_KEYS.map((k, i) => [k, n === nTrain ? cols[i] : cols[i].slice(0, n)])) as TrainColumns;
  if (evals.length) out.evals = evals;
  if (spectra.length) out.spectra = spectra;
  if (diverged) out.diverged = diverged;
  return out;
}

/** The reconciled state of a run (RunManager's reading of status.json, the pid and run_finished). */
export interface ReconciledState { state: RunState; error: string | null; stale: boolean }

/**
 * A run's header from its run_started / run_finished events, with `reconciled` (when the one
 * place that reconciles states knows the run) overriding what the events alone say: a trainer
 * killed with SIGKILL never writes run_finished, and only the reconciler sees its pid gone.
 */
export function runHeaderFrom(id: string, dir: string, events: readonly unknown[], reconciled?: ReconciledState, skipped = { skipped: 0, newer: 0 }): RunHeader {
  const info: RunHeader = { id, dir, method: 'unknown', rank: null, lr: null, targetModules: null, totalSteps: null, experiment: null, state: 'unknown', error: null, stale: false, kind: 'training', reduceIntruders: null, starts: [], skipped: skipped.skipped, skippedNewer: skipped.newer };
  for (const raw of events) {
    const e = obj(raw);
    if (e.type === 'run_started') {
      const cfg = obj(e.config), lora = obj(cfg.lora), train = obj(cfg.train);
      info.method = e.method === 'lora' || e.method === 'full' ? e.method : 'unknown';
      info.rank = info.method === 'lora' ? num(lora.rank) : null;
      info.lr = num(train.lr);
      const tm = lora.target_modules;
      info.targetModules = info.method === 'lora' ? (typeof tm === 'string' ? tm : Array.isArray(tm) ? tm.join(',') : null) : null;
      info.totalSteps = num(e.total_steps);
      info.experiment = typeof cfg.name === 'string' ? cfg.name : null;
      info.state = 'running';
      info.kind = e.kind === 'analysis' ? 'analysis' : 'training';
      const ri = obj(cfg.reduce_intruders);
      const lambda = num(ri.lambda), topK = num(ri.top_k), epsilon = num(ri.epsilon);
      info.reduceIntruders = info.kind === 'analysis' && typeof ri.source_run === 'string' && lambda !== null && topK !== null && epsilon !== null
        ? { sourceRun: ri.source_run, lambda, topK, epsilon } : null;
      const t = num(e.time);
      if (t !== null) info.starts.push(t);
    } else if (e.type === 'run_finished') {
      info.state = e.status === 'completed' || e.status === 'failed' || e.status === 'stopped' ? e.status : 'unknown';
      info.error = typeof e.error === 'string' ? e.error : null;
    }
  }
  if (reconciled) Object.assign(info, reconciled);
  return info;
}
