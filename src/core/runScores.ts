/**
 * A run's scores for the runs table, folded over its events as they are read: the learning and
 * forgetting aggregates and every eval task (base, last, best), KL to the base, the ΔW spectra's
 * median rank90 and intruders at the latest analysed step, throughput, wall time and peak memory.
 * A fold, not a list: a million-line events.jsonl is read chunk by chunk (readEventsFrom's
 * onChunk) and a run that grew is continued from where the last read stopped (scoreCache.ts).
 * Works on the events' JSON shape (schemas/events.schema.json) and tolerates what it does not
 * know: a task type added later (lm_eval, kl_to_base) becomes columns like any other.
 */
import { median } from './rankAdvice';

/** One eval task of one role, over the run's evaluations. */
export interface TaskScore {
  /** `${role}:${name}`: unique within a run. */
  key: string;
  name: string;
  role: 'learning' | 'forgetting';
  /** The eval type as the trainer wrote it (loss, multiple_choice, exact_match, lm_eval, kl_to_base, ...). */
  type: string;
  metric: string;
  higherIsBetter: boolean;
  /** lm_eval: the task's version (lm-eval's metadata.version), null for the other types; n: examples scored. Both of the last evaluation. */
  version: string | null;
  n: number | null;
  /** At step 0: the base model. */
  base: number | null;
  last: number | null;
  lastStep: number | null;
  /** The best value after step 0 (by the task's direction); null before the first evaluation after the base. */
  best: number | null;
  bestStep: number | null;
}

/** A role's aggregate (the mean over its tasks, as the trainer writes it in each eval event). */
export interface RoleScores {
  higherIsBetter: boolean;
  last: number;
  /** last − the value at step 0. */
  lastDelta: number;
  lastStep: number;
  best: number | null;
  bestDelta: number | null;
}

export interface RunScores {
  lastStep: number | null;
  totalSteps: number | null;
  method: 'lora' | 'full' | null;
  lastTrainLoss: number | null;
  learning: RoleScores | null;
  forgetting: RoleScores | null;
  tasks: TaskScore[];
  /** The last value of the eval task(s) of type kl_to_base (their mean when there are several). */
  klToBase: number | null;
  /** The step of the latest spectrum analysis, and the medians over its attention and MLP matrices. */
  spectraStep: number | null;
  rank90Attention: number | null;
  rank90Mlp: number | null;
  /** Intruder dimensions summed over the matrices at that step (null when none was computed). */
  intruders: number | null;
  /** Mean of the train events' tokens_per_s (each step's throughput, evals excluded). */
  tokensPerS: number | null;
  /** Seconds between each run_started and the last event after it, summed over resumed segments. */
  wallSeconds: number | null;
  /** Peak of the train events' memory_mb (CUDA peak, or resident memory on CPU), MiB. */
  peakMemoryMb: number | null;
  finished: 'completed' | 'failed' | 'stopped' | null;
  /** Events folded so far (for tests and the cache's bookkeeping). */
  events: number;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const better = (a: number, b: number, higher: boolean): boolean => (higher ? a > b : a < b);

interface RoleFold { higherIsBetter: boolean; base: number | null; last: number; lastStep: number; best: number | null }

/** Folds events into RunScores; `add` may be called any number of times, `result` at any point. */
export class ScoreFold {
  private n = 0;
  private lastStep: number | null = null;
  private totalSteps: number | null = null;
  private method: 'lora' | 'full' | null = null;
  private lastLoss: number | null = null;
  private readonly roles: { learning: RoleFold | null; forgetting: RoleFold | null } = { learning: null, forgetting: null };
  private readonly tasks = new Map<string, TaskScore>();
  private specStep: number | null = null;
  private specAtt: number[] = [];
  private specMlp: number[] = [];
  private specIntruders: number | null = null;
  private tpsSum = 0;
  private tpsN = 0;
  private peakMem: number | null = null;
  private wallDone = 0;
  private segStart: number | null = null;
  private lastTime: number | null = null;
  private finished: RunScores['finished'] = null;

  add(events: readonly unknown[]): void {
    for (const raw of events) {
      const e = obj(raw);
      this.n++;
      const t = num(e.time);
      switch (e.type) {
        case 'run_started': this.onStarted(e, t); break;
        case 'train': this.onTrain(e); break;
        case 'eval': this.onEval(e); break;
        case 'spectrum': this.onSpectrum(e); break;
        case 'run_finished':
          this.finished = e.status === 'completed' || e.status === 'failed' || e.status === 'stopped' ? e.status : null;
          break;
        default: break;
      }
      if (t !== null) this.lastTime = t;
    }
  }

  private onStarted(e: Obj, t: number | null): void {
    // A resumed run starts a new segment: the time between segments (stopped) is not wall time.
    if (this.segStart !== null && this.lastTime !== null) this.wallDone += Math.max(0, this.lastTime - this.segStart);
    this.segStart = t;
    this.method = e.method === 'lora' || e.method === 'full' ? e.method : this.method;
    this.totalSteps = num(e.total_steps) ?? this.totalSteps;
    this.finished = null;
  }

  private onTrain(e: Obj): void {
    const step = num(e.step), loss = num(e.loss);
    if (step === null || loss === null) return;
    this.lastStep = step;
    this.lastLoss = loss;
    const tps = num(e.tokens_per_s);
    if (tps !== null) { this.tpsSum += tps; this.tpsN++; }
    const mem = num(e.memory_mb);
    if (mem !== null && (this.peakMem === null || mem > this.peakMem)) this.peakMem = mem;
  }

  private onEval(e: Obj): void {
    const step = num(e.step);
    if (step === null) return;
    for (const role of ['learning', 'forgetting'] as const) {
      const a = obj(e[role]);
      const v = num(a.value);
      if (v === null || typeof a.higher_is_better !== 'boolean') continue;
      const hib = a.higher_is_better;
      const cur: RoleFold = this.roles[role] ?? { higherIsBetter: hib, base: null, last: v, lastStep: step, best: null };
      const d = num(a.delta);
      if (step === 0) cur.base = v;
      else if (cur.base === null && d !== null) cur.base = v - d; // resumed without the step-0 line: the trainer's delta knows the base
      if (step >= cur.lastStep) { cur.last = v; cur.lastStep = step; }
      if (step > 0 && (cur.best === null || better(v, cur.best, hib))) cur.best = v;
      this.roles[role] = cur;
    }
    if (!Array.isArray(e.tasks)) return;
    for (const rawTask of e.tasks) {
      const t = obj(rawTask);
      const v = num(t.value);
      if (typeof t.name !== 'string' || v === null || (t.role !== 'learning' && t.role !== 'forgetting')) continue;
      const key = `${t.role}:${t.name}`;
      const hib = t.higher_is_better === true;
      const cur = this.tasks.get(key) ?? {
        key, name: t.name, role: t.role, type: typeof t.type === 'string' ? t.type : '', metric: typeof t.metric === 'string' ? t.metric : '',
        higherIsBetter: hib, version: null, n: null, base: null, last: null, lastStep: null, best: null, bestStep: null,
      };
      if (step === 0) cur.base = v;
      if (cur.lastStep === null || step >= cur.lastStep) {
        cur.last = v; cur.lastStep = step;
        cur.version = t.version === undefined || t.version === null ? null : String(t.version);
        cur.n = num(t.n);
      }
      if (step > 0 && (cur.best === null || better(v, cur.best, hib))) { cur.best = v; cur.bestStep = step; }
      this.tasks.set(key, cur);
    }
  }

  private onSpectrum(e: Obj): void {
    const step = num(e.step), r90 = num(e.rank90);
    if (step === null || r90 === null) return;
    if (this.specStep === null || step > this.specStep) {
      this.specStep = step; this.specAtt = []; this.specMlp = []; this.specIntruders = null;
    } else if (step < this.specStep) return;
    if (e.kind === 'attention') this.specAtt.push(r90); else if (e.kind === 'mlp') this.specMlp.push(r90);
    const intr = num(e.intruders);
    if (intr !== null) this.specIntruders = (this.specIntruders ?? 0) + intr;
  }

  result(): RunScores {
    const role = (r: RoleFold | null): RoleScores | null => r && {
      higherIsBetter: r.higherIsBetter, last: r.last, lastStep: r.lastStep,
      lastDelta: r.base === null ? 0 : r.last - r.base,
      best: r.best, bestDelta: r.best === null || r.base === null ? null : r.best - r.base,
    };
    const tasks = [...this.tasks.values()].map((t) => ({ ...t }));
    const kl = tasks.filter((t) => t.type === 'kl_to_base' && t.last !== null).map((t) => t.last as number);
    const wall = this.segStart !== null && this.lastTime !== null ? this.wallDone + Math.max(0, this.lastTime - this.segStart) : null;
    return {
      lastStep: this.lastStep, totalSteps: this.totalSteps, method: this.method, lastTrainLoss: this.lastLoss,
      learning: role(this.roles.learning), forgetting: role(this.roles.forgetting), tasks,
      klToBase: kl.length ? kl.reduce((a, b) => a + b, 0) / kl.length : null,
      spectraStep: this.specStep, rank90Attention: median(this.specAtt), rank90Mlp: median(this.specMlp), intruders: this.specIntruders,
      tokensPerS: this.tpsN ? this.tpsSum / this.tpsN : null,
      wallSeconds: wall, peakMemoryMb: this.peakMem, finished: this.finished, events: this.n,
    };
  }
}

/** The scores of a complete list of events (tests, small runs). */
export function scoreEvents(events: readonly unknown[]): RunScores {
  const f = new ScoreFold();
  f.add(events);
  return f.result();
}
