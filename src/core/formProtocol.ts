// Messages between the Experiment Form (webview/form) and its host (src/form). Imported by both sides,
// so a message type is written once; switch on `type` with assertNever to catch a missing case.

export type PathSeg = string | number;

export interface FormDiagnostic {
  severity: 'error' | 'warning' | 'info';
  message: string;
  /** Dotted setting path ('lora.rank'), '' for the whole file. */
  path: string;
  line: number;
}

export type HostToForm =
  | {
      type: 'document';
      /** What the YAML parsed to (no defaults filled), or undefined when it does not parse. */
      config: unknown;
      /** Schema defaults for what the file leaves out (shown as placeholders). */
      defaults: unknown;
      diagnostics: FormDiagnostic[];
      /** Runs the sweep expands into (1 without a sweep); undefined while the file has errors. */
      runCount?: number;
      trusted: boolean;
    };

export type FormToHost =
  | { type: 'ready' }
  /** Set a key to a value; `undefined` (sent as `remove: true`) removes the key. */
  | { type: 'set'; path: PathSeg[]; value?: unknown; remove?: boolean }
  | { type: 'openText' }
  | { type: 'start' };

/** A form edit names a setting a few levels down (e.g. evals.learning.0.name): keys and list indexes. */
const isPathSeg = (s: unknown): boolean => (typeof s === 'string' && s.length > 0 && s.length <= 200) || (Number.isInteger(s) && (s as number) >= 0 && (s as number) < 10_000);

/** A value the form can set: JSON, a few levels deep, not megabytes (it goes into the YAML text). */
function isFormValue(v: unknown, depth = 0): boolean {
  if (v === undefined || v === null || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return true;
  if (typeof v === 'string') return v.length <= 100_000;
  if (depth >= 6 || typeof v !== 'object') return false;
  const items = Array.isArray(v) ? v : Object.values(v as object);
  return items.length <= 1000 && items.every((x) => isFormValue(x, depth + 1));
}

export function isFormToHost(m: unknown): m is FormToHost {
  if (typeof m !== 'object' || m === null) return false;
  const t = (m as { type?: unknown }).type;
  if (t === 'set') {
    const { path, value, remove } = m as { path?: unknown; value?: unknown; remove?: unknown };
    return Array.isArray(path) && path.length > 0 && path.length <= 8 && path.every(isPathSeg) && isFormValue(value) && (remove === undefined || typeof remove === 'boolean');
  }
  return t === 'ready' || t === 'openText' || t === 'start';
}

export function isHostToForm(m: unknown): m is HostToForm {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'document';
}

export function assertNever(x: never): never {
  throw new Error(`unhandled message: ${JSON.stringify(x)}`);
}
