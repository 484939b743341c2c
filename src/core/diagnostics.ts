// Diagnostics that src/core produces for an experiment file. Lines and columns are 1-based (as the
// CLI prints `file:line:col`); the editor shell converts them to 0-based vscode.Range (DECISIONS.md).

export type Severity = 'error' | 'warning' | 'info';

/**
 * A one-click repair. By default it sets the value at `path` (dotted) to `value`. When `renameKey`
 * is given it instead renames the last key of `path` to `renameKey` (for a misspelt key).
 * `applyFix` in experimentEdit.ts applies either kind to the YAML text, keeping comments.
 */
export interface DiagnosticFix {
  path: string;
  value: unknown;
  title: string;
  renameKey?: string;
}

export interface Diagnostic {
  severity: Severity;
  message: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  /** Dotted path of the setting, e.g. 'lora.rank'; '' for the whole file. */
  path: string;
  /** Stable id, e.g. 'yaml-syntax', 'schema-enum', 'lint-lora-lr-low'. */
  code?: string;
  fix?: DiagnosticFix;
  /** For lints: where the advice comes from (a paper and section). */
  cite?: string;
}

/** `file:line:col: severity: message`, the form compilers print and editors' problem matchers read. */
export function formatDiagnostic(d: Diagnostic, file: string): string {
  return `${file}:${d.line}:${d.column}: ${d.severity}: ${d.message}`;
}

export const hasErrors = (ds: Diagnostic[]): boolean => ds.some((d) => d.severity === 'error');

/** Edit distance, for "did you mean" suggestions. */
export function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** The closest candidate within a third of the word's length (at least 2 edits), if any. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = levenshtein(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) { best = c; bestD = d; }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}
