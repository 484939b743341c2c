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

export function isFormToHost(m: unknown): m is FormToHost {
  if (typeof m !== 'object' || m === null) return false;
  const t = (m as { type?: unknown }).type;
  if (t === 'set') return Array.isArray((m as { path?: unknown }).path) && (m as { path: unknown[] }).path.every((s) => typeof s === 'string' || typeof s === 'number');
  return t === 'ready' || t === 'openText' || t === 'start';
}

export function isHostToForm(m: unknown): m is HostToForm {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'document';
}

export function assertNever(x: never): never {
  throw new Error(`unhandled message: ${JSON.stringify(x)}`);
}
