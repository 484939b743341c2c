// Expands an experiment's `sweep:` grid into one resolved config per run (a sweep expands into many runs;
// docs/DECISIONS.md "Sweep expansion"), and names runs (DECISIONS.md: `<name>-<yyyymmdd-HHMMSS>-<label>`).
import type { ExperimentConfig } from './generated/experiment';
import { applyDefaults, writtenConfig } from './defaults';

export interface PlannedRun {
  /** The resolved config of this one run: defaults filled, no `sweep` key. */
  config: ExperimentConfig;
  /** Dotted key -> value: what this run sets differently from the experiment file. */
  overrides: Record<string, unknown>;
  /** e.g. `full`, `lora-r16`, `lora-r16-lr5e-4`. */
  label: string;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Sets a dotted key ('lora.rank') in a plain object, creating sections as needed. */
export function setDotted(obj: Record<string, unknown>, key: string, value: unknown): void {
  const segs = key.split('.');
  let cur = obj;
  for (const s of segs.slice(0, -1)) {
    if (!isObj(cur[s])) cur[s] = {};
    cur = cur[s] as Record<string, unknown>;
  }
  cur[segs[segs.length - 1]] = structuredClone(value);
}

export function getDotted(obj: unknown, key: string): unknown {
  let cur = obj;
  for (const s of key.split('.')) cur = isObj(cur) ? cur[s] : undefined;
  return cur;
}

/** Compact value text for labels: 0.0005 -> 5e-4, 16 -> 16, ['q_proj','v_proj'] -> q_proj+v_proj. */
export function formatValue(v: unknown): string {
  if (typeof v === 'number') {
    if (v !== 0 && Math.abs(v) < 0.01) return v.toExponential();
    return String(v);
  }
  if (Array.isArray(v)) return v.map(formatValue).join('+');
  return String(v).replace(/[^A-Za-z0-9_.+-]/g, '_');
}

/** Short names of commonly swept settings in labels; others use their last segment. */
const SHORT: Record<string, string> = {
  'train.lr': 'lr', 'lora.alpha': 'a', 'lora.dropout': 'do', 'lora.target_modules': '', 'lora.variant': '',
  'train.steps': 'steps', 'train.seed': 'seed', 'train.batch_size': 'bs', 'train.schedule': '', 'data.seq_len': 'seq',
};

export function runLabel(config: ExperimentConfig, overrides: Record<string, unknown>): string {
  const parts: string[] = [config.method];
  if (config.method === 'lora') parts.push(`r${config.lora?.rank ?? 16}`);
  for (const [k, v] of Object.entries(overrides)) {
    if (k === 'method' || k === 'lora.rank') continue;
    parts.push(`${SHORT[k] ?? k.split('.').pop()!.replace(/_/g, '')}${formatValue(v)}`);
  }
  return parts.join('-');
}

/** Canonical JSON (sorted keys) for deduplication. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/**
 * One PlannedRun per point of the grid, first sweep key varying slowest (the order written in the
 * file). Runs that differ only in settings their method ignores are merged (a full run ignores
 * lora.*), keeping the first. Accepts the config as written or as returned by applyDefaults: the
 * derived defaults (lora.alpha = 2·rank, train.lr by method) are recomputed for each point.
 */
export function expandSweep(cfg: ExperimentConfig): PlannedRun[] {
  const written = structuredClone(writtenConfig(cfg) ?? cfg) as unknown as Record<string, unknown>;
  const sweep = isObj(written.sweep) ? (written.sweep as Record<string, unknown[]>) : {};
  delete written.sweep;
  const keys = Object.keys(sweep).filter((k) => Array.isArray(sweep[k]) && sweep[k].length > 0);

  let points: Record<string, unknown>[] = [{}];
  for (const k of keys) points = points.flatMap((p) => sweep[k].map((v) => ({ ...p, [k]: v })));

  const runs: PlannedRun[] = [];
  const seen = new Set<string>();
  for (const point of points) {
    const raw = structuredClone(written);
    for (const [k, v] of Object.entries(point)) setDotted(raw, k, v);
    const overrides = { ...point };
    if (raw.method === 'full') {
      delete raw.lora;
      for (const k of Object.keys(overrides)) if (k.startsWith('lora.')) delete overrides[k];
    }
    const config = applyDefaults(raw);
    const key = canonical(config);
    if (seen.has(key)) continue;
    seen.add(key);
    runs.push({ config: structuredClone(config), overrides, label: runLabel(config, overrides) });
  }
  return runs;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `<name>-<yyyymmdd-HHMMSS>-<label>` in local time; RunStore adds `-2`, `-3` on collision. */
export function runId(name: string, label: string, date: Date = new Date()): string {
  const stamp = `${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}-${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}`;
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.+-]/g, '_');
  const id = `${safe(name)}-${stamp}-${safe(label)}`;
  // A file name has at most 255 bytes, and a run id at most 200 characters (runPath.ts); a long name
  // or label is cut, with a hash of the whole so that two long ids stay apart.
  return id.length <= 190 ? id : `${id.slice(0, 181)}-${fnv1a(id)}`;
}

/** 8 hex digits of FNV-1a: a short, stable tag for a cut name. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}
