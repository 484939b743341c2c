/**
 * Which columns a runs table has, found from its rows: the run's own columns, the fixed settings
 * (method, rank, alpha, variant, targets, lr, steps, base, data), every other setting whose value
 * differs between the runs (two or more distinct values; a run without the key does not count, so
 * full runs' missing `lora.*` does not make LoRA settings "differ"), and every score some run has:
 * learning and forgetting, each eval task by name, KL to the base, rank90, intruders, throughput,
 * wall time, memory. Columns no row has a value for are left out.
 */
import type { TaskScore } from './runScores';
import type { CellValue, TableColumn, TableRow } from './tableProtocol';
import { FIXED_SETTINGS, IGNORED_SETTINGS, settingColumnId, tableRow, taskColumnId, type RunInput } from './tableRows';

/** What a task column says about its task: its eval type, metric and direction. */
export type TaskInfo = Pick<TaskScore, 'type' | 'metric' | 'higherIsBetter'> & Partial<Pick<TaskScore, 'version' | 'n'>>;

const RUN_COLUMNS: TableColumn[] = [
  { id: 'run', title: 'run', group: 'run', kind: 'text', format: 'text', description: 'The run\'s label (its sweep point); the tooltip has its id.' },
  { id: 'state', title: 'state', group: 'run', kind: 'text', format: 'state', description: 'Reconciled state, live: status.json, the process and run_finished (as in the Runs view).' },
  { id: 'frontier', title: 'frontier', group: 'run', kind: 'number', format: 'bool', description: 'On the learning–forgetting frontier of the runs shown (last evaluation, change from the base): no shown run learned more and forgot less. The run column marks these with a star.', hiddenByDefault: true },
  { id: 'experiment', title: 'experiment', group: 'run', kind: 'text', format: 'text', description: 'The experiment (name in the *.finetune.yaml).' },
  { id: 'sweep', title: 'sweep', group: 'run', kind: 'text', format: 'text', description: 'The sweep the run belongs to (one expansion of a sweep: block).' },
  { id: 'kind', title: 'kind', group: 'run', kind: 'text', format: 'text', description: 'training, or analysis (a run that analyses other runs\' checkpoints).', hiddenByDefault: true },
  { id: 'created', title: 'created', group: 'run', kind: 'number', format: 'time', description: 'When the run folder was created.', hiddenByDefault: true },
  { id: 'step', title: 'step', group: 'run', kind: 'number', format: 'int', description: 'The last optimizer step trained.' },
  { id: 'id', title: 'id', group: 'run', kind: 'text', format: 'text', description: 'The run id (its folder name).', hiddenByDefault: true },
];

type Part = '' | 'delta' | 'best' | 'bestDelta';
const PART_TITLE: Record<Part, string> = { '': '', delta: ' Δ', best: ' best', bestDelta: ' best Δ' };
const PART_TEXT: Record<Part, string> = {
  '': 'at the last evaluation',
  delta: 'change from the base (step 0) at the last evaluation',
  best: 'best value after step 0',
  bestDelta: 'change from the base of the best value after step 0',
};

function direction(higher: boolean | undefined): string {
  return higher === undefined ? '' : higher ? ' Higher is better.' : ' Lower is better.';
}

/** Distinct non-empty values of a cell over the rows (stops counting at 2). */
function distinct(rows: readonly TableRow[], id: string): number {
  let first: CellValue | undefined;
  for (const r of rows) {
    const v = r.cells[id];
    if (v === undefined || v === null) continue;
    if (first === undefined) first = v;
    else if (v !== first) return 2;
  }
  return first === undefined ? 0 : 1;
}

export function tableColumns(rows: readonly TableRow[], taskInfo: ReadonlyMap<string, TaskInfo> = new Map()): TableColumn[] {
  const has = (id: string): boolean => rows.some((r) => r.cells[id] !== undefined && r.cells[id] !== null);
  // A column whose value is the same in every row says nothing about the difference between runs:
  // it stays available, hidden until asked for (the identity of a run, method/rank/lr, always shows).
  const constant = (id: string): boolean => rows.length > 1 && distinct(rows, id) < 2;
  const out: TableColumn[] = RUN_COLUMNS
    .filter((c) => c.id === 'frontier' ? rows.some((r) => r.pareto) : c.id === 'run' || c.id === 'state' || has(c.id))
    .map((c) => ((c.id === 'experiment' || c.id === 'sweep') && constant(c.id) ? { ...c, hiddenByDefault: true } : c));

  // Settings: the fixed ones, then what differs, in the order the keys first appear.
  const fixed = new Set(FIXED_SETTINGS.map((s) => s.key));
  for (const s of FIXED_SETTINGS) {
    const id = settingColumnId(s.key);
    if (!has(id)) continue;
    const always = s.key === 'method' || s.key === 'lora.rank' || s.key === 'train.lr';
    out.push({
      id, title: s.title, group: 'setting', kind: rows.some((r) => typeof r.cells[id] === 'number') ? 'number' : 'text', format: s.key === 'train.lr' ? 'sci' : 'text',
      description: `${s.key} in the run's resolved config.`, ...(!always && constant(id) ? { hiddenByDefault: true } : {}),
    });
  }
  const keys = new Set<string>();
  for (const r of rows) for (const id of Object.keys(r.cells)) if (id.startsWith('cfg:')) keys.add(id.slice(4));
  for (const key of keys) {
    if (fixed.has(key) || IGNORED_SETTINGS.has(key.split('.')[0]) || distinct(rows, settingColumnId(key)) < 2) continue;
    const id = settingColumnId(key);
    const numeric = rows.every((r) => r.cells[id] === undefined || typeof r.cells[id] === 'number');
    const small = numeric && rows.some((r) => { const v = r.cells[id]; return typeof v === 'number' && v !== 0 && Math.abs(v) < 1e-2; });
    out.push({ id, title: key, group: 'setting', kind: numeric ? 'number' : 'text', format: numeric ? (small ? 'sci' : 'score') : 'text', description: `${key}: differs between the runs shown.` });
  }

  // Scores.
  const score = (id: string, title: string, format: TableColumn['format'], description: string, better?: 'higher' | 'lower', hiddenByDefault?: boolean): void => {
    if (has(id)) out.push({ id, title, group: 'score', kind: 'number', format, description, ...(better ? { better } : {}), ...(hiddenByDefault ? { hiddenByDefault } : {}) });
  };
  score('loss', 'train loss', 'score', 'Training loss of the last logged step.', 'lower');
  // A role's direction over the runs: one (all its tasks are losses, or all accuracies), or mixed
  // when runs' tasks differ; then each row is coloured by its own direction and the column says so.
  const roleDir = (role: 'learning' | 'forgetting'): boolean | 'mixed' | undefined => {
    const dirs = new Set(rows.flatMap((r) => (r.pareto ? [role === 'learning' ? r.pareto.learningHigherIsBetter : r.pareto.forgettingHigherIsBetter] : [])));
    return dirs.size > 1 ? 'mixed' : dirs.size ? [...dirs][0] : undefined;
  };
  for (const role of ['learning', 'forgetting'] as const) {
    const hib = roleDir(role);
    for (const part of ['', 'delta', 'best', 'bestDelta'] as Part[]) {
      const what = role === 'learning' ? 'Mean of the learning (target-domain) tasks' : 'Mean of the forgetting (source-domain) tasks';
      const dir = hib === 'mixed' ? ' Which way is better differs between these runs (their tasks differ): compare runs of one experiment.' : direction(hib);
      score(part ? `${role}.${part}` : role, `${role}${PART_TITLE[part]}`, part === 'delta' || part === 'bestDelta' ? 'delta' : 'score',
        `${what}, ${PART_TEXT[part]} (the trainer's aggregate: losses count negated when mixed with accuracies).${dir}`, hib === undefined || hib === 'mixed' ? undefined : hib ? 'higher' : 'lower', part === 'best');
    }
  }
  // Each eval task by role and name; a role with one task everywhere repeats its aggregate, so hidden.
  const tasks = new Map<string, { name: string; role: string }>();
  for (const r of rows) for (const id of Object.keys(r.cells)) {
    const m = /^task:(learning|forgetting):(.*)$/.exec(id);
    if (m && !/\.(delta|best|bestDelta)$/.test(id)) tasks.set(`${m[1]}:${m[2]}`, { name: m[2], role: m[1] });
  }
  const perRole = (role: string): number => [...tasks.values()].filter((t) => t.role === role).length;
  const names = [...tasks.values()].map((t) => t.name);
  for (const [key, t] of tasks) {
    const info = taskInfo.get(key);
    const clash = names.filter((n) => n === t.name).length > 1 || t.name === 'learning' || t.name === 'forgetting';
    // an lm_eval task's version is part of what the number means: in the title (so in the CSV too)
    const title = `${clash ? `${t.name} (${t.role})` : t.name}${info?.version ? ` v${info.version}` : ''}`;
    const single = perRole(t.role) === 1;
    for (const part of ['', 'delta', 'best', 'bestDelta'] as Part[]) {
      const detail = info ? [info.type || 'eval', info.metric, info.version ? `version ${info.version}` : '', info.n !== null && info.n !== undefined ? `n=${info.n}` : ''].filter(Boolean).join(', ') : '';
      const what = `${t.role === 'learning' ? 'Learning' : 'Forgetting'} task ${t.name}${detail ? ` (${detail})` : ''}`;
      score(taskColumnId(key, part), `${title}${PART_TITLE[part]}`, part === 'delta' || part === 'bestDelta' ? 'delta' : 'score',
        `${what}, ${PART_TEXT[part]}.${direction(info?.higherIsBetter)}`, info ? (info.higherIsBetter ? 'higher' : 'lower') : undefined, single || part === 'best' || part === 'bestDelta');
    }
  }
  score('kl', 'KL to base', 'score', 'KL divergence of the run\'s next-token distribution from the base model\'s (the eval task of type kl_to_base), last evaluation. Lower: closer to the base.', 'lower');
  score('rank90.attention', 'rank90 attn', 'score', 'Median rank90 of ΔW over the attention matrices at the latest spectrum step: how many directions hold 90% of the change.');
  score('rank90.mlp', 'rank90 MLP', 'score', 'Median rank90 of ΔW over the MLP matrices at the latest spectrum step.');
  score('intruders', 'intruders', 'int', 'Intruder dimensions summed over the matrices at the latest spectrum step (Shuttleworth et al. 2024).', 'lower');
  score('tokensPerS', 'tokens/s', 'rate', 'Mean training throughput over the logged steps (target tokens per second, evals excluded).', 'higher');
  score('wall', 'wall time', 'seconds', 'Wall time from run_started to the last event, summed over resumed segments.');
  score('memory', 'peak memory', 'mib', 'Peak memory of the training steps: CUDA peak allocated, or resident memory on CPU.', 'lower');
  return out;
}

/**
 * What of a row the columns depend on: which cells it has, its settings and run columns, its
 * learning/forgetting directions; not its scores' values or step, which change while it trains.
 * The feed recomputes the columns only when a row's shape changes.
 */
export function columnShape(row: TableRow): string {
  const keys = Object.keys(row.cells).sort();
  const fixed = keys.filter((k) => k.startsWith('cfg:') || k === 'experiment' || k === 'sweep').map((k) => `${k}=${String(row.cells[k])}`);
  return `${keys.join(',')}|${fixed.join(',')}|${row.pareto ? `${row.pareto.learningHigherIsBetter}${row.pareto.forgettingHigherIsBetter}` : ''}`;
}

/** Rows and columns of a table over `runs`. */
export function buildTable(runs: readonly RunInput[]): { rows: TableRow[]; columns: TableColumn[] } {
  const rows = runs.map(tableRow);
  return { rows, columns: tableColumns(rows, taskInfoOf(runs)) };
}

/** Each task's type, metric and direction, from the first run that has it. */
export function taskInfoOf(runs: readonly Pick<RunInput, 'scores'>[]): Map<string, TaskInfo> {
  const out = new Map<string, TaskInfo>();
  for (const r of runs) for (const t of r.scores?.tasks ?? []) if (!out.has(t.key)) out.set(t.key, { type: t.type, metric: t.metric, higherIsBetter: t.higherIsBetter, version: t.version, n: t.n });
  return out;
}
