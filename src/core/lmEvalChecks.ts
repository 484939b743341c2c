// What the editor and the CLI say about an experiment's `lm_eval` evals before a run exists: a task
// name lm-eval does not know (at its line, with close names and a quick fix), an include_path that
// is not a folder, and a task that executes model-generated code (humaneval, mbpp: lm-eval's
// `unsafe_code`), which is an error unless code execution is allowed on this machine
// (finetuneLab.allowCodeExecution, machine scope; finetune-lab run --allow-code-execution).
import * as path from 'node:path';
import type { ExperimentConfig } from './generated/experiment';
import type { Diagnostic } from './diagnostics';
import type { LmEvalCatalog } from './lmEvalCatalog';
import { rangeOf, type YamlSource } from './yamlPositions';

export interface LmEvalCheckOptions {
  /** The catalog of task names for the built-in folder plus these include folders (lmEvalCatalog). */
  catalog: (includeDirs: string[]) => LmEvalCatalog | undefined;
  /** Code execution is allowed on this machine (the setting, or the CLI's flag). */
  allowCodeExecution: boolean;
  dirExists: (absPath: string) => boolean;
}

export const HOW_TO_ALLOW_CODE = 'allow it on this machine with the setting finetuneLab.allowCodeExecution (User settings: machine scope, a workspace cannot set it) or `finetune-lab run --allow-code-execution`';
export const SANDBOX_WORDS = 'allowed code runs in the trainer\'s sandbox: a separate process with CPU, memory and file-size limits and no network where the OS allows';

/** The include_path of an lm_eval eval as an absolute folder (relative to the experiment file). */
export function includeDir(includePath: string, file: string | undefined): string {
  return path.isAbsolute(includePath) ? includePath : path.resolve(file ? path.dirname(file) : process.cwd(), includePath);
}

/** The lm_eval evals of a config, each with where it is. */
export function lmEvalTasks(cfg: ExperimentConfig): { role: 'learning' | 'forgetting'; index: number; task: string; includePath?: string; name: string }[] {
  const out: { role: 'learning' | 'forgetting'; index: number; task: string; includePath?: string; name: string }[] = [];
  for (const role of ['learning', 'forgetting'] as const) {
    cfg.evals?.[role]?.forEach((t, index) => {
      if (t.type === 'lm_eval') out.push({ role, index, task: t.task, includePath: t.include_path, name: t.name });
    });
  }
  return out;
}

export function lmEvalDiagnostics(cfg: ExperimentConfig, src: YamlSource, file: string | undefined, opts: LmEvalCheckOptions): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const t of lmEvalTasks(cfg)) {
    const at = ['evals', t.role, t.index];
    const dirs: string[] = [];
    if (t.includePath) {
      const dir = includeDir(t.includePath, file);
      if (!opts.dirExists(dir)) {
        out.push({ severity: 'error', code: 'lm-eval-include-path', path: [...at, 'include_path'].join('.'), ...rangeOf(src, [...at, 'include_path']),
          message: `include_path is not a folder: ${t.includePath} (looked in ${dir}); it should hold your lm-eval task YAMLs` });
        continue;
      }
      dirs.push(dir);
    }
    const catalog = opts.catalog(dirs);
    if (!catalog) continue; // no shipped names here: the trainer checks with lm-eval itself
    const taskAt = [...at, 'task'];
    if (!catalog.has(t.task)) {
      const close = catalog.closest(t.task);
      out.push({
        severity: 'error', code: 'lm-eval-unknown-task', path: taskAt.join('.'), ...rangeOf(src, taskAt),
        message: `unknown lm-eval task '${t.task}' (lm-eval ${catalog.version}${dirs.length ? `, and the tasks in ${t.includePath}` : ''})` +
          (close.length ? ` — did you mean '${close[0]}'? Close names: ${close.join(', ')}` : ': see `lm_eval ls tasks` for the names'),
        ...(close.length ? { fix: { path: taskAt.join('.'), value: close[0], title: `Use '${close[0]}'` } } : {}),
      });
      continue;
    }
    if (catalog.unsafe(t.task)) {
      out.push(opts.allowCodeExecution
        ? { severity: 'info', code: 'lm-eval-code-execution', path: taskAt.join('.'), ...rangeOf(src, taskAt),
          message: `'${t.task}' executes model-generated code, which this machine allows (finetuneLab.allowCodeExecution / --allow-code-execution): it runs in the trainer's sandbox, a separate process with CPU, memory and file-size limits and no network where the OS allows` }
        : { severity: 'error', code: 'lm-eval-code-execution-not-allowed', path: taskAt.join('.'), ...rangeOf(src, taskAt),
          message: `'${t.task}' executes model-generated code (lm-eval marks it unsafe_code), so the run is refused: ${HOW_TO_ALLOW_CODE}; ${SANDBOX_WORDS}` });
    }
  }
  return out;
}
