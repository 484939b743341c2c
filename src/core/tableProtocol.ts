// Messages between the runs table (webview/table) and its panel (src/table/tablePanel.ts), imported
// by both sides like playgroundProtocol.ts. Both directions are discriminated unions on `type`,
// checked on receipt (isHostToTable / isTableToHost): the webview is untrusted input to the host,
// and the host's rows are checked before the grid draws them.
import type { RunState } from './messages';
import { isRunId } from './runIds';

/** Which runs a table shows: all of the runs folder, one experiment's, or one sweep's. */
export interface TableScope { experiment?: string; sweepId?: string }

/** How a cell's value is written (the CSV has the raw value). */
export type CellFormat = 'text' | 'state' | 'int' | 'sci' | 'score' | 'delta' | 'seconds' | 'mib' | 'rate' | 'time' | 'bool';
export type CellValue = string | number | null;

export interface TableColumn {
  /** Stable across reloads and runs (saved visibility, order, widths and sort refer to it). */
  id: string;
  title: string;
  group: 'run' | 'setting' | 'score';
  /** number: sorted numerically and filterable by range; text: sorted and searched as text. */
  kind: 'text' | 'number';
  format: CellFormat;
  /** The header's tooltip: what the column is and which way is better. */
  description: string;
  better?: 'higher' | 'lower';
  /** Hidden until the user shows it (it repeats another column, or is rarely needed). */
  hiddenByDefault?: boolean;
}

/** A run's point on the learning–forgetting plane (its last evaluation, as change from the base). */
export interface ParetoPoint {
  /** Runs are compared only with runs evaluated on the same tasks in the same directions. */
  group: string;
  learning: number;
  forgetting: number;
  learningHigherIsBetter: boolean;
  forgettingHigherIsBetter: boolean;
}

export interface TableRow {
  id: string;
  kind: 'training' | 'analysis';
  state: RunState;
  /** Running, but no heartbeat for a minute. */
  stale: boolean;
  error: string | null;
  experiment: string;
  sweepId: string | null;
  /** What the run's colour is made of (webview/common/theme.ts runColor: the same in every view). */
  method: 'lora' | 'full' | 'unknown';
  rank: number | null;
  lr: number | null;
  /** Column id → value; a missing id is an empty cell. */
  cells: Record<string, CellValue>;
  pareto: ParetoPoint | null;
}

export type TableAction = 'dashboard' | 'compare' | 'pareto' | 'spectra' | 'playground' | 'stop' | 'resume' | 'duplicate' | 'delete' | 'openLog' | 'revealFolder';
export const TABLE_ACTIONS: readonly TableAction[] = ['dashboard', 'compare', 'pareto', 'spectra', 'playground', 'stop', 'resume', 'duplicate', 'delete', 'openLog', 'revealFolder'];

export type HostToTable =
  | { type: 'init'; scope: TableScope; title: string; columns: TableColumn[]; rows: TableRow[]; trusted: boolean; loading: boolean }
  /** Rows that changed or appeared, ids that went; the columns when the set of columns changed. */
  | { type: 'update'; upsert: TableRow[]; remove: string[]; columns?: TableColumn[]; loading: boolean }
  | { type: 'error'; message: string };

export type TableToHost =
  | { type: 'ready' }
  | { type: 'action'; action: TableAction; runIds: string[] }
  | { type: 'export'; name: string; data: string }
  | { type: 'log'; level: 'info' | 'error'; message: string };

export function assertNever(x: never): never {
  throw new Error(`unexpected message: ${JSON.stringify(x)}`);
}

// ---- validation -----------------------------------------------------------------------

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const isStr = (x: unknown, max = 4096): x is string => typeof x === 'string' && x.length <= max;
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isNumOrNull = (x: unknown): boolean => x === null || isNum(x);
const isStrOrNull = (x: unknown, max?: number): boolean => x === null || isStr(x, max);
const isArr = (x: unknown, item: (v: unknown) => boolean, max = 100_000): boolean => Array.isArray(x) && x.length <= max && x.every(item);
const isBool = (x: unknown): x is boolean => typeof x === 'boolean';

const RUN_STATES = new Set(['queued', 'running', 'completed', 'failed', 'stopped', 'unknown']);
const FORMATS = new Set<CellFormat>(['text', 'state', 'int', 'sci', 'score', 'delta', 'seconds', 'mib', 'rate', 'time', 'bool']);
const ACTIONS = new Set<string>(TABLE_ACTIONS);
/** A CSV's name becomes a file name: no separators, no leading dot. */
const SAFE_NAME = /^[\w][\w.\- ]{0,120}\.csv$/;
const MAX_EXPORT = 64 * 1024 * 1024;
const MAX_ID = 512;

export function isTableScope(x: unknown): x is TableScope {
  return isObj(x) && (x.experiment === undefined || isStr(x.experiment, MAX_ID)) && (x.sweepId === undefined || isStr(x.sweepId, MAX_ID));
}

function isColumn(x: unknown): boolean {
  return isObj(x) && isStr(x.id, MAX_ID) && x.id.length > 0 && isStr(x.title, MAX_ID)
    && (x.group === 'run' || x.group === 'setting' || x.group === 'score') && (x.kind === 'text' || x.kind === 'number')
    && FORMATS.has(x.format as CellFormat) && isStr(x.description)
    && (x.better === undefined || x.better === 'higher' || x.better === 'lower')
    && (x.hiddenByDefault === undefined || isBool(x.hiddenByDefault));
}

const isCell = (v: unknown): boolean => v === null || isNum(v) || isStr(v, 65_536);

function isPareto(x: unknown): boolean {
  return x === null || (isObj(x) && isStr(x.group) && isNum(x.learning) && isNum(x.forgetting)
    && isBool(x.learningHigherIsBetter) && isBool(x.forgettingHigherIsBetter));
}

function isRow(x: unknown): boolean {
  if (!isObj(x) || !isStr(x.id, MAX_ID) || x.id.length === 0) return false;
  if ((x.kind !== 'training' && x.kind !== 'analysis') || !RUN_STATES.has(x.state as string) || !isBool(x.stale)) return false;
  if (!isStrOrNull(x.error, 65_536) || !isStr(x.experiment, MAX_ID) || !isStrOrNull(x.sweepId, MAX_ID)) return false;
  if (!['lora', 'full', 'unknown'].includes(x.method as string) || !isNumOrNull(x.rank) || !isNumOrNull(x.lr)) return false;
  if (!isObj(x.cells) || !Object.values(x.cells).every(isCell)) return false;
  return isPareto(x.pareto);
}

export function isHostToTable(x: unknown): x is HostToTable {
  if (!isObj(x)) return false;
  switch (x.type) {
    case 'init': return isTableScope(x.scope) && isStr(x.title) && isArr(x.columns, isColumn, 10_000) && isArr(x.rows, isRow)
      && isBool(x.trusted) && isBool(x.loading);
    case 'update': return isArr(x.upsert, isRow) && isArr(x.remove, (id) => isStr(id, MAX_ID)) && isBool(x.loading)
      && (x.columns === undefined || isArr(x.columns, isColumn, 10_000));
    case 'error': return isStr(x.message, 100_000);
    default: return false;
  }
}

export function isTableToHost(x: unknown): x is TableToHost {
  if (!isObj(x)) return false;
  switch (x.type) {
    case 'ready': return true;
    case 'action': return ACTIONS.has(x.action as string) && isArr(x.runIds, isRunId, 100_000) && (x.runIds as unknown[]).length > 0;
    case 'export': return isStr(x.name) && SAFE_NAME.test(x.name) && isStr(x.data, MAX_EXPORT);
    case 'log': return (x.level === 'info' || x.level === 'error') && isStr(x.message, 10_000);
    default: return false;
  }
}
