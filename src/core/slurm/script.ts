// The batch script of a Slurm run (launcher.kind: slurm): #SBATCH lines from the launcher's fields,
// the user's setup lines, then one torchrun per node under srun, meeting at the first node. Pure:
// the text only, from the config, the Python and the paths (the caller writes and submits it).
// Quoting: sbatch reads #SBATCH values with its own rules (a value with spaces in double quotes,
// \" and \\ inside); the shell part quotes every path and value in single quotes.
import type { ExperimentConfig } from '../generated/experiment';

export type Launcher = NonNullable<ExperimentConfig['launcher']>;

/** The file name of a run's batch script, in its run folder. */
export const SCRIPT_FILE = 'slurm.sbatch';

/** A word for a POSIX shell: bare when it is safe, else in single quotes ('\'' for a quote). */
export function shellQuote(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `--name=value` for an #SBATCH line: bare when it is one plain word, else in sbatch's double quotes. */
export function sbatchOption(name: string, value: string | number): string {
  const v = String(value);
  if (/[\r\n]/.test(v)) throw new Error(`--${name}: a value on several lines cannot be an #SBATCH option`);
  if (v !== '' && /^[^\s"'\\#]+$/.test(v)) return `--${name}=${v}`;
  return `--${name}="${v.replace(/[\\"]/g, '\\$&')}"`;
}

/** A path for --output: Slurm expands %j, %A, %a...; a literal % is written %%. */
export const outputPattern = (file: string): string => file.replace(/%/g, '%%');

/** Processes per node: gpus_per_node when set (one per GPU), else nproc_per_node. */
export const procsPerNode = (l: Launcher): number => l.gpus_per_node ?? l.nproc_per_node ?? 1;

export interface BatchScriptOptions {
  /** --job-name: the run id, or the sweep id for a job array. */
  jobName: string;
  launcher: Launcher;
  /** The trainer's Python, as for a local run (it must exist on the compute nodes: a shared file system). */
  python: string;
  /** The folder holding the finetune_lab package (PYTHONPATH). */
  trainerDir: string;
  /** Absolute run folders: one for a job, several for a job array (task i trains runDirs[i]). */
  runDirs: string[];
  /** --output of a job array: a pattern with %a (see submit.ts); a single job writes its train.log. */
  arrayOutput?: string;
  /** --resume: continue from the newest checkpoint (Resume Run / finetune-lab resume). */
  resume?: boolean;
  /** Environment variables the job sets before training (FINETUNE_LAB_BROWN_DIR...). */
  env?: Record<string, string>;
}

/** The #SBATCH lines, in a stable order. */
export function sbatchLines(o: BatchScriptOptions): string[] {
  const l = o.launcher;
  const array = o.runDirs.length > 1;
  const lines: string[] = [
    sbatchOption('job-name', o.jobName),
    array ? sbatchOption('output', o.arrayOutput ?? 'slurm-%A_%a.out') : sbatchOption('output', outputPattern(`${o.runDirs[0]}/train.log`)),
    // Every submission of a run (a resume, a requeue) appends to the same log.
    '--open-mode=append',
    sbatchOption('chdir', array ? parentOf(o.runDirs[0]) : o.runDirs[0]),
    sbatchOption('nodes', l.nodes ?? 1),
    // One torchrun per node; it starts the node's worker processes.
    '--ntasks-per-node=1',
  ];
  if (array) lines.push(`--array=0-${o.runDirs.length - 1}${l.max_running ? `%${l.max_running}` : ''}`);
  if (l.partition) lines.push(sbatchOption('partition', l.partition));
  if (l.account) lines.push(sbatchOption('account', l.account));
  if (l.qos) lines.push(sbatchOption('qos', l.qos));
  if (l.gpus_per_node) lines.push(sbatchOption('gpus-per-node', l.gpus_per_node));
  if (l.cpus_per_task) lines.push(sbatchOption('cpus-per-task', l.cpus_per_task));
  if (l.mem) lines.push(sbatchOption('mem', l.mem));
  if (l.time) lines.push(sbatchOption('time', l.time));
  if (l.constraint) lines.push(sbatchOption('constraint', l.constraint));
  for (const extra of l.extra_sbatch ?? []) {
    if (/[\r\n]/.test(extra) || !extra.startsWith('-')) throw new Error(`launcher.extra_sbatch: '${extra}' is not one sbatch option`);
    lines.push(extra.trim());
  }
  return lines.map((x) => `#SBATCH ${x}`);
}

function parentOf(p: string): string {
  const i = p.replace(/\/+$/, '').lastIndexOf('/');
  return i > 0 ? p.slice(0, i) : '/';
}

/** The whole batch script. */
export function batchScript(o: BatchScriptOptions): string {
  const l = o.launcher;
  const array = o.runDirs.length > 1;
  const nproc = procsPerNode(l);
  const port = l.port != null ? String(l.port) : '$((20000 + SLURM_JOB_ID % 20000))';
  const out: string[] = [
    '#!/bin/bash',
    `# Finetune Lab: ${array ? `a job array of ${o.runDirs.length} runs` : `run ${o.jobName}`} on Slurm, one torchrun per node.`,
    '# Written when the job was submitted (sbatch --parsable); the job id is in slurm.json beside it.',
    ...sbatchLines(o),
    '',
    'set -e',
  ];
  if (l.setup?.length) out.push('# launcher.setup', ...l.setup);
  out.push(
    'set -uo pipefail',
    '',
    `export PYTHONPATH=${shellQuote(o.trainerDir)}\${PYTHONPATH:+:$PYTHONPATH}`,
    'export PYTHONUNBUFFERED=1',
  );
  for (const [k, v] of Object.entries(o.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`not an environment variable name: ${k}`);
    out.push(`export ${k}=${shellQuote(v)}`);
  }
  if (array) {
    out.push(`RUN_DIRS=(${o.runDirs.map(shellQuote).join(' ')})`, 'RUN_DIR=${RUN_DIRS[$SLURM_ARRAY_TASK_ID]}');
  } else {
    out.push(`RUN_DIR=${shellQuote(o.runDirs[0])}`);
  }
  out.push(
    // A job that Slurm requeued (preemption, node failure) continues from its checkpoint too.
    `RESUME=${o.resume ? '--resume' : ''}`,
    'if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then RESUME=--resume; fi',
    // sed reads every line: head would close the pipe early and pipefail would end the job (SIGPIPE).
    'HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed -n 1p)',
    `PORT=${port}`,
    'echo "finetune-lab: Slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST ($SLURM_NNODES node(s)), rendezvous $HEAD_NODE:$PORT $RESUME"',
    '',
    // finetune_lab torchrun is torch.distributed.run with the same arguments; its exit code follows
    // the run's run_finished (a stop is exit 0), so the job's state says how the run ended.
    `srun --kill-on-bad-exit=1 \${SLURM_CPUS_PER_TASK:+--cpus-per-task=$SLURM_CPUS_PER_TASK} ${shellQuote(o.python)} -m finetune_lab torchrun \\`,
    `  --nnodes "$SLURM_NNODES" --nproc_per_node ${nproc} \\`,
    '  --rdzv_id "$SLURM_JOB_ID" --rdzv_backend c10d --rdzv_endpoint "$HEAD_NODE:$PORT" \\',
    '  -m finetune_lab run --run-dir "$RUN_DIR" $RESUME',
    '',
  );
  return out.join('\n');
}
