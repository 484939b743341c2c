// Run folders inside the run store (docs/DECISIONS.md "Reliability and security"): a run id typed by
// a user (CLI arguments, the palette), read from a file (queue files, meta.json's sweep_id, a
// webview's saved state) or made from an experiment name must pass runIds.ts's rule, and the
// folder it names must not be a symbolic link out of the store.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isRunId, runIdProblem } from './runIds';

export { RUN_ID_PATTERN, isRunId, runIdProblem } from './runIds';

export class RunPathError extends Error {}

/**
 * `<runsDir>/<id>`, after checking the id and that the folder, when it exists, is a real folder and
 * not a symbolic link (a link could point the trainer's writes, or a delete, anywhere).
 * @throws RunPathError naming what is wrong.
 */
export function runFolder(runsDir: string, id: string): string {
  const problem = runIdProblem(id);
  if (problem) throw new RunPathError(problem);
  const dir = path.join(runsDir, id);
  let st: fs.Stats | undefined;
  try { st = fs.lstatSync(dir); } catch { /* not there (yet): a new run's folder */ }
  if (st?.isSymbolicLink()) throw new RunPathError(`run folder ${id} is a symbolic link; run folders must be real folders inside ${runsDir}`);
  return dir;
}

/** True when `dir` is exactly `<runsDir>/<id>` for a valid id (restored panel state, refs from files). */
export function isRunFolderOf(runsDir: string, id: string, dir: string): boolean {
  return isRunId(id) && path.resolve(dir) === path.resolve(runsDir, id);
}
