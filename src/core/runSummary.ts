// One run's outcome from its events: final train loss and each eval task at step 0 (the base) and at
// the end. Used by the CLI's results table and available to the editor's views.
import type { RunEvent, EvalEvent, Aggregate } from './generated/events';

export interface TaskSummary {
  name: string;
  role: 'learning' | 'forgetting';
  /** The eval type (loss, multiple_choice, exact_match, lm_eval, kl_to_base). */
  type?: string;
  metric: string;
  higherIsBetter: boolean;
  /** At step 0 (the base model), when evaluated. */
  base?: number;
  /** The last value (NaN when the task never produced one: it failed at every evaluation). */
  final: number;
  finalStep: number;
  /** lm_eval: the lm-eval task name and its version; n: examples scored (as in the last evaluation). */
  task?: string;
  version?: string | null;
  n?: number;
  /** The error of the last evaluation, when it failed (the last good value stays in `final`). */
  error?: string;
}

export interface RunSummary {
  method?: 'lora' | 'full';
  totalSteps?: number;
  lastStep?: number;
  finalTrainLoss?: number;
  tasks: TaskSummary[];
  learning: Aggregate;
  forgetting: Aggregate;
  finished?: { status: 'completed' | 'failed' | 'stopped'; error: string | null };
  /** Seconds from run_started to the last event. */
  seconds?: number;
}

export function summarizeRun(events: readonly RunEvent[]): RunSummary {
  const s: RunSummary = { tasks: [], learning: null, forgetting: null };
  let started: number | undefined;
  let lastTime: number | undefined;
  const evals: EvalEvent[] = [];
  for (const e of events) {
    lastTime = e.time;
    switch (e.type) {
      case 'run_started': s.method = e.method; s.totalSteps = e.total_steps; started ??= e.time; break;
      case 'train': s.finalTrainLoss = e.loss; s.lastStep = e.step; break;
      case 'eval': evals.push(e); break;
      case 'run_finished': s.finished = { status: e.status, error: e.error }; break;
      default: break;
    }
  }
  if (started !== undefined && lastTime !== undefined) s.seconds = lastTime - started;
  const byName = new Map<string, TaskSummary>();
  for (const ev of evals) {
    for (const t of ev.tasks) {
      const key = `${t.role}:${t.name}`;
      const cur: TaskSummary = byName.get(key) ?? { name: t.name, role: t.role, type: t.type, metric: t.metric, higherIsBetter: t.higher_is_better, final: NaN, finalStep: -1 };
      if (ev.step >= cur.finalStep) {
        cur.error = t.error;
        if (t.value !== null) { cur.final = t.value; cur.finalStep = ev.step; cur.version = t.version; cur.n = t.n; cur.task = t.task; }
      }
      if (ev.step === 0 && t.value !== null) cur.base = t.value;
      byName.set(key, cur);
    }
    s.learning = ev.learning;
    s.forgetting = ev.forgetting;
  }
  s.tasks = [...byName.values()];
  return s;
}
