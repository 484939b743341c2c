/**
 * Turns parsed events (src/core/events.ts) into the drawing-ready batches of
 * src/core/messages.ts. Pure (no vscode import) so node --test covers it. Works on the
 * events' JSON shape (schemas/events.schema.json) rather than the generated types, so a
 * field the schema adds later is simply ignored.
 */
import { TRAIN_COLUMNS, type EvalPoint, type HostToWebview, type RestoreInfo, type RunAppend, type RunInfo, type RunStatus, type SpectrumRecord, type TrainColumns, type ViewKind } from '../core/messages';

/** Which parts of the events a view draws (the Pareto view needs no train columns). */
export interface FeedFilter { train: boolean; evals: boolean; spectra: boolean }
export const VIEW_FILTERS: Record<ViewKind, FeedFilter> = {
  dashboard: { train: true, evals: true, spectra: false },
  pareto: { train: false, evals: true, spectra: false },
  // run_started (method, LoRA rank) comes through RunInfo; spectra are the data.
  spectra: { train: false, evals: false, spectra: true },
};

/** The parts of a batch a view draws; undefined when none. */
export function filterAppend(a: RunAppend, filter: FeedFilter): RunAppend | undefined {
  const out: RunAppend = { runId: a.runId };
  if (filter.train && a.train) out.train = a.train;
  if (filter.evals && a.evals) out.evals = a.evals;
  if (filter.spectra && a.spectra) out.spectra = a.spectra;
  return out.train || out.evals || out.spectra ? out : undefined;
}

/** What a panel posts when its webview says `ready`: init, then everything so far (basePanel.ts). */
export function readyMessages(view: ViewKind, infos: RunInfo[], restore: RestoreInfo, all: RunAppend[]): HostToWebview[] {
  const out: HostToWebview[] = [{ type: 'init', view, runs: infos, restore }];
  if (all.length) out.push({ type: 'append', batches: all });
  return out;
}

type Ev = { type?: unknown; [k: string]: unknown };
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const nan = (v: unknown): number => num(v) ?? NaN;
const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});

type Cols = Record<(typeof TRAIN_COLUMNS)[number], number[]>;
const emptyCols = (): Cols => ({ step: [], loss: [], lr: [], gradNorm: [], tokensPerS: [], memoryMb: [] });
const toTyped = (c: Cols): TrainColumns => ({
  step: Float64Array.from(c.step), loss: Float64Array.from(c.loss), lr: Float64Array.from(c.lr),
  gradNorm: Float64Array.from(c.gradNorm), tokensPerS: Float64Array.from(c.tokensPerS), memoryMb: Float64Array.from(c.memoryMb),
});

/** Folds a run's new events into one batch; returns undefined when nothing drawable came. */
export function toAppend(runId: string, events: readonly unknown[]): RunAppend | undefined {
  let train: Cols | undefined;
  const evals: EvalPoint[] = [];
  const spectra: SpectrumRecord[] = [];
  for (const raw of events) {
    const e = obj(raw) as Ev;
    if (e.type === 'train') {
      const step = num(e.step), loss = typeof e.loss === 'number' ? e.loss : null, lr = num(e.lr);
      if (step === null || loss === null || lr === null) continue;
      train ??= emptyCols();
      train.step.push(step); train.loss.push(loss); train.lr.push(lr);
      train.gradNorm.push(nan(e.grad_norm)); train.tokensPerS.push(nan(e.tokens_per_s)); train.memoryMb.push(nan(e.memory_mb));
    } else if (e.type === 'eval') {
      const step = num(e.step);
      if (step === null || !Array.isArray(e.tasks)) continue;
      const agg = (a: unknown): EvalPoint['learning'] => {
        const o = obj(a);
        const v = num(o.value), d = num(o.delta);
        return v === null || typeof o.higher_is_better !== 'boolean' ? null : { value: v, higherIsBetter: o.higher_is_better, delta: d ?? 0 };
      };
      evals.push({
        step,
        tasks: e.tasks.map(obj).filter((t) => typeof t.name === 'string' && num(t.value) !== null && (t.role === 'learning' || t.role === 'forgetting'))
          .map((t) => ({ name: t.name as string, role: t.role as 'learning' | 'forgetting', metric: String(t.metric ?? ''), value: t.value as number, higherIsBetter: t.higher_is_better === true })),
        learning: agg(e.learning),
        forgetting: agg(e.forgetting),
      });
    } else if (e.type === 'spectrum') {
      const step = num(e.step), layer = num(e.layer), rank90 = num(e.rank90);
      const shape = Array.isArray(e.shape) ? e.shape.map(num) : [];
      if (step === null || layer === null || rank90 === null || typeof e.module !== 'string' || (e.kind !== 'attention' && e.kind !== 'mlp')
        || shape.length !== 2 || shape[0] === null || shape[1] === null) continue;
      spectra.push({
        step, layer, rank90, module: e.module, kind: e.kind,
        name: typeof e.name === 'string' ? e.name : e.module.split('.').pop() ?? e.module,
        shape: [shape[0], shape[1]],
        sv: Array.isArray(e.singular_values) ? e.singular_values.filter((v): v is number => num(v) !== null) : [],
        intruders: num(e.intruders), randomRank90: num(e.random_rank90), randomIntruders: num(e.random_intruders), loraRank: num(e.lora_rank),
      });
    }
  }
  if (!train && evals.length === 0 && spectra.length === 0) return undefined;
  const out: RunAppend = { runId };
  if (train) out.train = toTyped(train);
  if (evals.length) out.evals = evals;
  if (spectra.length) out.spectra = spectra;
  return out;
}

/** Merges batches of the same run (the host coalesces up to 100 ms of events). */
export function mergeAppend(a: RunAppend, b: RunAppend): RunAppend {
  const out: RunAppend = { runId: a.runId };
  if (a.train || b.train) {
    const n = (a.train?.step.length ?? 0) + (b.train?.step.length ?? 0);
    const t = {} as TrainColumns;
    for (const k of TRAIN_COLUMNS) {
      t[k] = new Float64Array(n);
      if (a.train) t[k].set(a.train[k]);
      if (b.train) t[k].set(b.train[k], a.train?.step.length ?? 0);
    }
    out.train = t;
  }
  if (a.evals || b.evals) out.evals = [...(a.evals ?? []), ...(b.evals ?? [])];
  if (a.spectra || b.spectra) out.spectra = [...(a.spectra ?? []), ...(b.spectra ?? [])];
  return out;
}

/** What the run_started / run_finished events (and status.json, if read) say about a run. */
export function runInfoFrom(id: string, dir: string, events: readonly unknown[], status?: { state?: unknown; error?: unknown }): RunInfo {
  const info: RunInfo = { id, dir, method: 'unknown', rank: null, lr: null, targetModules: null, totalSteps: null, experiment: null, status: 'unknown', error: null };
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
      info.status = 'running';
    } else if (e.type === 'run_finished') {
      info.status = e.status === 'completed' || e.status === 'failed' || e.status === 'stopped' ? e.status : 'unknown';
      info.error = typeof e.error === 'string' ? e.error : null;
    }
  }
  if (status && typeof status.state === 'string' && info.status !== 'completed' && info.status !== 'failed' && info.status !== 'stopped') {
    const s = status.state as RunStatus;
    if (['queued', 'running', 'completed', 'failed', 'stopped'].includes(s)) info.status = s;
    if (typeof status.error === 'string') info.error = status.error;
  }
  return info;
}
