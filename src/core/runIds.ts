// The one rule for run ids (docs/DECISIONS.md "Reliability and security"), pure so the webviews' message
// validators use it too: a run id typed by a user, read from a file or a message is a single folder
// name — never `../x`, an absolute path, an encoded separator (`%2e%2e%2f`), a backslash or a NUL.
// runPath.ts adds the file-system half (the folder must not be a symbolic link).

/** What runId() makes: a letter or digit, then letters, digits, `_ . + -`; at most 200 characters. */
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,199}$/;

/** Why `id` is not a run id, or undefined when it is one. */
export function runIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string' || id === '') return 'a run id must be a non-empty string';
  if (id.length > 200) return `a run id has at most 200 characters (this one ${id.length})`;
  if (RUN_ID_PATTERN.test(id)) return undefined;
  const shown = JSON.stringify(id.length > 60 ? `${id.slice(0, 60)}…` : id);
  return `${shown} is not a run id (letters, digits, '_', '.', '+', '-'; no path separators or '%')`;
}

export const isRunId = (id: unknown): id is string => runIdProblem(id) === undefined;

