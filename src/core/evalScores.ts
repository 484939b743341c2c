/**
 * What the views read from a run's eval points (messages.ts EvalPoint): the scores a user can put
 * on the Pareto plot's axes — the role's aggregate (the mean the trainer writes; the paper's
 * forgetting score is the mean of HellaSwag, WinoGrande and ARC-Challenge) or any single task —
 * each with its value, its change from step 0 (the base) and its direction; and the share of the
 * run's wall time that evaluation took. Pure, for the webviews and their tests.
 */
import type { EvalPoint, EvalTaskScore } from './messages';

export type Role = 'learning' | 'forgetting';
/** 'aggregate', or `task:<name>` for one task of the role. */
export type AxisKey = string;
export const AGGREGATE: AxisKey = 'aggregate';

export interface AxisOption {
  key: AxisKey;
  /** For the picker: "mean of code + english" or "hellaswag (acc_norm, v1.0, n=200)". */
  label: string;
  /** For axis titles: the score's name and metric. */
  name: string;
  metric: string;
  higherIsBetter: boolean;
}

export interface AxisPoint { value: number; delta: number; higherIsBetter: boolean }

/** "acc_norm, v1.0, n=200": a task's metric with its version and n, as tables and legends show it. */
export function taskDetail(t: Pick<EvalTaskScore, 'metric' | 'version' | 'n'>): string {
  return [t.metric, t.version ? `v${t.version}` : '', t.n !== null && t.n !== undefined ? `n=${t.n}` : ''].filter(Boolean).join(', ');
}

/** The last entry of each task of a role over some runs' evals (the newest version and n). */
function latestTasks(runs: readonly { evals: readonly EvalPoint[] }[], role: Role): EvalTaskScore[] {
  const byName = new Map<string, EvalTaskScore>();
  for (const r of runs) for (const e of r.evals) for (const t of e.tasks) if (t.role === role && (t.value !== null || !byName.has(t.name))) byName.set(t.name, t);
  return [...byName.values()];
}

/** The choices for a role's axis over these runs: the aggregate (when the trainer wrote one), then each task. */
export function axisOptions(runs: readonly { evals: readonly EvalPoint[] }[], role: Role): AxisOption[] {
  const tasks = latestTasks(runs, role);
  const out: AxisOption[] = [];
  const agg = runs.flatMap((r) => r.evals).find((e) => e[role]);
  if (agg?.[role]) {
    const names = tasks.map((t) => t.name);
    const one = tasks.length === 1 ? tasks[0] : undefined;
    const mixed = new Set(tasks.map((t) => t.higherIsBetter)).size > 1;
    const list = names.join(' + ');
    out.push({
      // an axis title has room for about 40 characters of name
      key: AGGREGATE, name: one ? one.name : list.length <= 40 ? `mean of ${list}` : `mean of ${names.length} ${role} tasks`,
      // mixed directions: the trainer negates the lower-is-better values before the mean
      label: one ? `${one.name} (${taskDetail(one)})` : `mean of ${list}${mixed ? ' (losses negated)' : ''}`,
      metric: one ? one.metric : mixed ? '' : [...new Set(tasks.map((t) => t.metric))].join('/'),
      higherIsBetter: agg[role]!.higherIsBetter,
    });
  }
  // With one task the aggregate is that task: no second, identical choice.
  if (tasks.length > 1 || !out.length) {
    for (const t of tasks) out.push({ key: `task:${t.name}`, label: `${t.name} (${taskDetail(t)})`, name: t.name, metric: t.metric, higherIsBetter: t.higherIsBetter });
  }
  return out;
}

/** The wanted axis when it is offered, else the aggregate, else the first choice. */
export function pickAxis(options: readonly AxisOption[], wanted: AxisKey | undefined): AxisKey | undefined {
  if (wanted && options.some((o) => o.key === wanted)) return wanted;
  return options.find((o) => o.key === AGGREGATE)?.key ?? options[0]?.key;
}

/**
 * A run's score on an axis at its i-th evaluation: value, change from step 0 (the base; for a task,
 * its own step-0 value, else its first) and direction; undefined when there is none (the task
 * failed at that step, or the run has no such score).
 */
export function axisPoint(evals: readonly EvalPoint[], i: number, role: Role, key: AxisKey): AxisPoint | undefined {
  const e = evals[i];
  if (!e) return undefined;
  if (key === AGGREGATE) {
    const a = e[role];
    return a ? { value: a.value, delta: a.delta, higherIsBetter: a.higherIsBetter } : undefined;
  }
  const name = key.startsWith('task:') ? key.slice(5) : key;
  const find = (p: EvalPoint) => p.tasks.find((t) => t.role === role && t.name === name && t.value !== null);
  const t = find(e);
  if (!t || t.value === null) return undefined;
  const first = evals.find((p) => p.step === 0 && find(p)) ?? evals.find((p) => find(p));
  const base = first ? find(first)!.value! : t.value;
  return { value: t.value, delta: t.value - base, higherIsBetter: t.higherIsBetter };
}

export interface EvalShare { evalSeconds: number; wallSeconds: number; share: number }

/**
 * How much of a run's wall time its evaluations took: their seconds over the time from each
 * run_started (a resumed run has several segments) to the last evaluation of that segment.
 * Undefined before an evaluation with its seconds (an older trainer wrote none).
 */
export function evalShare(evals: readonly EvalPoint[], starts: readonly number[]): EvalShare | undefined {
  const timed = evals.filter((e) => e.seconds !== null && e.time !== null);
  if (!timed.length || !starts.length) return undefined;
  const sorted = [...starts].sort((a, b) => a - b);
  let evalSeconds = 0, wallSeconds = 0;
  sorted.forEach((start, k) => {
    const end = sorted[k + 1] ?? Infinity;
    const mine = timed.filter((e) => e.time! >= start && e.time! < end);
    if (!mine.length) return;
    evalSeconds += mine.reduce((s, e) => s + e.seconds!, 0);
    wallSeconds += Math.max(...mine.map((e) => e.time!)) - start;
  });
  if (wallSeconds <= 0) return undefined;
  return { evalSeconds, wallSeconds, share: Math.min(1, evalSeconds / wallSeconds) };
}
