// Which runs a runs table shows, and what its tab is called. No vscode import (the screenshot
// harness and the tests use it too).
import type { TableScope } from '../core/tableProtocol';
import type { RunsNode } from '../views/runsTreeProvider';

/** The scope of a Runs view node: an experiment's runs, a sweep's; all runs from the palette or the view title. */
export function scopeOf(node: unknown): TableScope {
  const n = node as RunsNode | undefined;
  if (n?.kind === 'experiment') return { experiment: n.name };
  if (n?.kind === 'sweep') return { ...(n.parent ? { experiment: n.parent.name } : {}), sweepId: n.sweepId };
  return {};
}

/** One panel per scope: the same scope reveals the open panel. */
export const scopeKey = (s: TableScope): string => JSON.stringify([s.experiment ?? null, s.sweepId ?? null]);

export function scopeTitle(s: TableScope): string {
  if (s.sweepId) return s.experiment ? `Runs: ${s.experiment} sweep` : 'Runs: sweep';
  return s.experiment ? `Runs: ${s.experiment}` : 'Runs';
}
