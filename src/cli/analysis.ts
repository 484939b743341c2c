// finetune-lab analyse / reduce-intruders: the trainer does the work (python -m finetune_lab analyse |
// reduce-intruders), its output goes straight to the terminal, its exit code is ours. What can be
// checked without Python (flags, the base's form, run ids, λ) is checked here first: exit 2, as run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { AnalysisInputError, analyseArgs, analysisCommand, parseLambdas, reduceArgs } from '../core/analysisLaunch';
import { trainerDir } from '../core/trainerLaunch';

export class AnalysisUsageError extends Error {}

const num = (v: string | undefined, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || v.trim() === '') throw new AnalysisUsageError(`${flag}: expected a number, got ${JSON.stringify(v)}`);
  return n;
};

/** The trainer's arguments for `analyse …` / `reduce-intruders …` (throws AnalysisUsageError or AnalysisInputError). */
export function analysisArgv(command: 'analyse' | 'reduce-intruders', argv: string[], defaultRunsDir: string): string[] {
  if (command === 'analyse') {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { base: { type: 'string' }, adapter: { type: 'string' }, model: { type: 'string' }, experiment: { type: 'string' }, 'runs-dir': { type: 'string' }, name: { type: 'string' } },
    });
    if (positionals.length) throw new AnalysisUsageError(`analyse: unexpected argument ${positionals[0]}`);
    if (!values.base) throw new AnalysisUsageError('analyse: missing --base <hf:folder-or-name | builtin:size>');
    for (const [flag, p] of [['--adapter', values.adapter], ['--model', values.model], ['--experiment', values.experiment]] as const) {
      if (p !== undefined && !fs.existsSync(p)) throw new AnalysisInputError(`${flag} ${p}: no such ${flag === '--experiment' ? 'file' : 'folder'}`);
    }
    return analyseArgs({ base: values.base, adapter: values.adapter, model: values.model, experiment: values.experiment, runsDir: values['runs-dir'] ?? defaultRunsDir, name: values.name });
  }
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: { lambda: { type: 'string' }, 'top-k': { type: 'string' }, epsilon: { type: 'string' }, 'runs-dir': { type: 'string' } },
  });
  if (positionals.length !== 1) throw new AnalysisUsageError('reduce-intruders: expected one <run-id>');
  const runsDir = values['runs-dir'] ?? defaultRunsDir;
  const args = reduceArgs({
    runId: positionals[0], runsDir, lambdas: values.lambda !== undefined ? parseLambdas(values.lambda) : undefined,
    topK: num(values['top-k'], '--top-k'), epsilon: num(values.epsilon, '--epsilon'),
  });
  if (!fs.existsSync(path.join(runsDir, positionals[0], 'config.yaml'))) throw new AnalysisInputError(`no run ${positionals[0]} in ${path.resolve(runsDir)}`);
  return args;
}

/** Runs the trainer's command in the foreground; its exit code (0, 1 failed, 2 bad input, 130 stopped). */
export async function cmdAnalysis(command: 'analyse' | 'reduce-intruders', argv: string[], defaultRunsDir: string, python: () => Promise<string | undefined>): Promise<number> {
  let args: string[];
  try { args = analysisArgv(command, argv, defaultRunsDir); } catch (e) {
    if (e instanceof AnalysisInputError) { console.error(`finetune-lab: error: ${e.message}`); return 2; }
    throw e;
  }
  const py = await python();
  if (!py) return 1;
  const cmd = analysisCommand(py, trainerDir(), args, process.cwd());
  return new Promise<number>((resolve) => {
    // Same terminal, same process group: Ctrl-C reaches the trainer, which ends its run folder "stopped".
    const child = spawn(cmd.command, cmd.args, { cwd: cmd.cwd, env: cmd.env, stdio: 'inherit' });
    child.once('error', (e) => { console.error(`finetune-lab: could not run ${cmd.command}: ${e.message}`); resolve(1); });
    child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1)));
  });
}
