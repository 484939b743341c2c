/**
 * The runs table's row model: one row per run from what the run folder holds (meta.json, the
 * resolved config.yaml, the reconciled status) and its scores (runScores.ts). Settings are the
 * config's leaves as dotted keys (`lora.rank`, `train.lr`); which of them become columns is
 * decided over all rows (tableColumns.ts).
 */
import type { RunState } from './messages';
import type { RunScores } from './runScores';
import type { CellValue, ParetoPoint, TableRow } from './tableProtocol';

/** What the table needs of a run (the shell maps a StoredRun onto it). */
export interface RunInput {
  id: string;
  meta: {
    experiment_name: string;
    sweep_id?: string | null;
    sweep_index?: number | null;
    sweep_size?: number | null;
    label?: string;
    created: number;
    /** meta.json's optional `kind` (issue 14's analysis runs); anything else is a training run. */
    kind?: unknown;
  };
  state: RunState;
  stale: boolean;
  error: string | null;
  step: number;
  totalSteps: number;
  config?: unknown;
  scores: RunScores | null;
  /** What is wrong with the folder (unreadable files), shown as the run's error when it has none. */
  folderError?: string;
}

/** Column ids of the run's own columns (not settings or scores). */
export const RUN_COLUMN_IDS = ['run', 'state', 'experiment', 'sweep', 'kind', 'created', 'step', 'id', 'frontier'] as const;

/** The setting columns shown for every table (when any run has a value), in this order. */
export const FIXED_SETTINGS: readonly { key: string; title: string }[] = [
  { key: 'method', title: 'method' },
  { key: 'lora.rank', title: 'rank' },
  { key: 'lora.alpha', title: 'alpha' },
  { key: 'lora.variant', title: 'variant' },
  { key: 'lora.target_modules', title: 'targets' },
  { key: 'train.lr', title: 'lr' },
  { key: 'train.steps', title: 'steps' },
  { key: 'model.base', title: 'base' },
  { key: 'data.train', title: 'data' },
];

/** Config keys never offered as differing settings: the experiment column has the name. */
export const IGNORED_SETTINGS = new Set(['name', 'description', 'sweep']);

type Obj = Record<string, unknown>;
const isPlain = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A value as one line of text: lists joined, maps in flow style (`{name: code, type: loss}`). */
export function flowText(v: unknown): string {
  if (Array.isArray(v)) return v.every((x) => !isPlain(x) && !Array.isArray(x)) ? v.map(flowText).join(', ') : `[${v.map(flowText).join(', ')}]`;
  if (isPlain(v)) return `{${Object.entries(v).map(([k, x]) => `${k}: ${flowText(x)}`).join(', ')}}`;
  return String(v);
}

/** The config's leaves as dotted keys; lists and lists of maps are one value each. */
export function flattenConfig(config: unknown, prefix = '', out = new Map<string, CellValue>()): Map<string, CellValue> {
  if (!isPlain(config)) return out;
  for (const [k, v] of Object.entries(config)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isPlain(v)) flattenConfig(v, key, out);
    else if (v === null || v === undefined) continue;
    else if (typeof v === 'number') out.set(key, Number.isFinite(v) ? v : String(v));
    else if (typeof v === 'string') out.set(key, v);
    else out.set(key, flowText(v));
  }
  return out;
}

export const settingColumnId = (key: string): string => `cfg:${key}`;
export const taskColumnId = (taskKey: string, part: '' | 'delta' | 'best' | 'bestDelta'): string => `task:${taskKey}${part ? `.${part}` : ''}`;

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The learning–forgetting point of a run with both aggregates: the change from the base at its last evaluation. */
function paretoPoint(s: RunScores | null): ParetoPoint | null {
  if (!s?.learning || !s.forgetting) return null;
  const names = (role: 'learning' | 'forgetting'): string => s.tasks.filter((t) => t.role === role).map((t) => t.name).sort().join('+');
  return {
    group: `${names('learning')}|${s.learning.higherIsBetter ? 'hi' : 'lo'}|${names('forgetting')}|${s.forgetting.higherIsBetter ? 'hi' : 'lo'}`,
    learning: s.learning.lastDelta, forgetting: s.forgetting.lastDelta,
    learningHigherIsBetter: s.learning.higherIsBetter, forgettingHigherIsBetter: s.forgetting.higherIsBetter,
  };
}

/** One run's row: its own cells, every config leaf as `cfg:<key>`, and its scores. */
export function tableRow(r: RunInput): TableRow {
  const cfg = flattenConfig(r.config);
  const s = r.scores;
  const method = cfg.get('method');
  const m: TableRow['method'] = method === 'lora' || method === 'full' ? method : s?.method ?? 'unknown';
  const cells: Record<string, CellValue> = {
    run: r.meta.label ?? r.id,
    id: r.id,
    state: r.state,
    experiment: r.meta.experiment_name,
    sweep: r.meta.sweep_id && (r.meta.sweep_size ?? 0) > 1 ? r.meta.sweep_id : null,
    kind: r.meta.kind === 'analysis' ? 'analysis' : 'training',
    created: r.meta.created,
    // Not a column: orders a sweep's runs as the sweep does when nothing else decides (tableQuery.ts).
    sweepIndex: r.meta.sweep_index ?? null,
    step: s?.lastStep ?? (r.step || null),
  };
  for (const [k, v] of cfg) cells[settingColumnId(k)] = v;
  if (s) {
    cells.loss = s.lastTrainLoss;
    for (const role of ['learning', 'forgetting'] as const) {
      const a = s[role];
      if (!a) continue;
      cells[role] = a.last;
      cells[`${role}.delta`] = a.lastDelta;
      cells[`${role}.best`] = a.best;
      cells[`${role}.bestDelta`] = a.bestDelta;
    }
    for (const t of s.tasks) {
      cells[taskColumnId(t.key, '')] = t.last;
      cells[taskColumnId(t.key, 'delta')] = t.last !== null && t.base !== null ? t.last - t.base : null;
      cells[taskColumnId(t.key, 'best')] = t.best;
      cells[taskColumnId(t.key, 'bestDelta')] = t.best !== null && t.base !== null ? t.best - t.base : null;
    }
    cells.kl = s.klToBase;
    cells['rank90.attention'] = s.rank90Attention;
    cells['rank90.mlp'] = s.rank90Mlp;
    cells.intruders = s.intruders;
    cells.tokensPerS = s.tokensPerS;
    cells.wall = s.wallSeconds;
    cells.memory = s.peakMemoryMb;
  }
  for (const k of Object.keys(cells)) if (cells[k] === null || cells[k] === undefined) delete cells[k];
  return {
    id: r.id,
    kind: r.meta.kind === 'analysis' ? 'analysis' : 'training',
    state: r.state,
    stale: r.stale,
    error: r.error ?? r.folderError ?? null,
    experiment: r.meta.experiment_name,
    sweepId: (cells.sweep as string | undefined) ?? null,
    method: m,
    rank: m === 'lora' ? num(cfg.get('lora.rank')) : null,
    lr: num(cfg.get('train.lr')),
    cells,
    pareto: paretoPoint(s),
  };
}
