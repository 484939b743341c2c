import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { batchScript, sbatchLines, sbatchOption, shellQuote, outputPattern, procsPerNode } from '../../src/core/slurm/script';
import { tmpDir } from './helpers';

const every = {
  kind: 'slurm' as const, partition: 'gpu', account: 'proj-42', qos: 'high', nodes: 2, gpus_per_node: 8, cpus_per_task: 32,
  mem: '480G', time: '1-04:00:00', constraint: 'a100&ib or "h100"', extra_sbatch: ['--exclusive', '--mail-type=END'],
  setup: ['module load cuda/12.4', 'source "$HOME/env with space.sh"'], port: 29511, nproc_per_node: 1,
};

test('shellQuote: bare plain words, single quotes otherwise, a quote inside as \'\\\'\'', () => {
  assert.equal(shellQuote('/opt/py/bin/python3.11'), '/opt/py/bin/python3.11');
  assert.equal(shellQuote(''), "''");
  assert.equal(shellQuote('/a b/c'), "'/a b/c'");
  assert.equal(shellQuote("it's $HOME `x`"), `'it'\\''s $HOME \`x\`'`);
  const r = spawnSync('sh', ['-c', `printf %s ${shellQuote("a 'b' \"c\" $d \\e")}`], { encoding: 'utf8' });
  assert.equal(r.stdout, `a 'b' "c" $d \\e`);
});

test('sbatchOption: sbatch double quotes with \\" and \\\\ when a value has spaces, quotes, # or backslashes', () => {
  assert.equal(sbatchOption('partition', 'gpu'), '--partition=gpu');
  assert.equal(sbatchOption('nodes', 4), '--nodes=4');
  assert.equal(sbatchOption('chdir', '/runs/my run'), '--chdir="/runs/my run"');
  assert.equal(sbatchOption('constraint', 'a|b #1'), '--constraint="a|b #1"');
  assert.equal(sbatchOption('job-name', 'a "q" b\\c'), '--job-name="a \\"q\\" b\\\\c"');
  assert.throws(() => sbatchOption('comment', 'two\nlines'), /several lines/);
  assert.equal(outputPattern('/runs/100%/train.log'), '/runs/100%%/train.log');
});

test('every launcher field becomes its #SBATCH line, in a stable order', () => {
  const lines = sbatchLines({ jobName: 'exp-20260101-000000-lora-r16', launcher: every, python: '/py', trainerDir: '/t', runDirs: ['/runs/exp-1'] });
  assert.deepEqual(lines, [
    '#SBATCH --job-name=exp-20260101-000000-lora-r16',
    '#SBATCH --output=/runs/exp-1/train.log',
    '#SBATCH --open-mode=append',
    '#SBATCH --chdir=/runs/exp-1',
    '#SBATCH --nodes=2',
    '#SBATCH --ntasks-per-node=1',
    '#SBATCH --partition=gpu',
    '#SBATCH --account=proj-42',
    '#SBATCH --qos=high',
    '#SBATCH --gpus-per-node=8',
    '#SBATCH --cpus-per-task=32',
    '#SBATCH --mem=480G',
    '#SBATCH --time=1-04:00:00',
    '#SBATCH --constraint="a100&ib or \\"h100\\""',
    '#SBATCH --exclusive',
    '#SBATCH --mail-type=END',
  ]);
  // Nothing optional is written when absent.
  const bare = sbatchLines({ jobName: 'r', launcher: { kind: 'slurm' }, python: '/py', trainerDir: '/t', runDirs: ['/r'] });
  assert.deepEqual(bare.map((l) => l.split('=')[0]), ['#SBATCH --job-name', '#SBATCH --output', '#SBATCH --open-mode', '#SBATCH --chdir', '#SBATCH --nodes', '#SBATCH --ntasks-per-node']);
  assert.throws(() => sbatchLines({ jobName: 'r', launcher: { kind: 'slurm', extra_sbatch: ['exclusive'] }, python: '/py', trainerDir: '/t', runDirs: ['/r'] }), /not one sbatch option/);
  assert.equal(procsPerNode(every), 8);
  assert.equal(procsPerNode({ kind: 'slurm', nproc_per_node: 3 }), 3);
});

test('a job array: --array=0-(N-1)%max_running, the %a output pattern, task i trains run i', () => {
  const s = batchScript({ jobName: 'sweep-x', launcher: { kind: 'slurm', max_running: 2 }, python: '/py', trainerDir: '/t', runDirs: ['/runs/a', '/runs/b c', '/runs/d'], arrayOutput: '/runs/.slurm/sweep-x/%a/train.log' });
  assert.match(s, /^#SBATCH --array=0-2%2$/m);
  assert.match(s, /^#SBATCH --output=\/runs\/.slurm\/sweep-x\/%a\/train.log$/m);
  assert.match(s, /^#SBATCH --chdir=\/runs$/m);
  assert.match(s, /^RUN_DIRS=\(\/runs\/a '\/runs\/b c' \/runs\/d\)$/m);
});

/** Runs the script's shell part with stand-ins for srun and scontrol that record their argv. */
function runScript(script: string, env: Record<string, string>): { argv: string[]; log: string } {
  const dir = tmpDir('ftl-sbatch-');
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const record = path.join(dir, 'argv.json');
  fs.writeFileSync(path.join(bin, 'srun'), `#!/usr/bin/env node\nrequire('fs').writeFileSync(${JSON.stringify(record)}, JSON.stringify(process.argv.slice(2)));\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'scontrol'), '#!/bin/sh\necho node7; echo node8\n', { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'module'), '#!/bin/sh\necho "module $*"\n', { mode: 0o755 });
  const file = path.join(dir, 'job.sbatch');
  fs.writeFileSync(file, script);
  const syntax = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
  assert.equal(syntax.status, 0, syntax.stderr);
  const r = spawnSync('bash', [file], { encoding: 'utf8', env: { PATH: `${bin}:${process.env.PATH}`, HOME: dir, ...env } });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  return { argv: JSON.parse(fs.readFileSync(record, 'utf8')) as string[], log: r.stdout };
}

test('the script runs: setup lines, then srun <python> -m finetune_lab torchrun with every value quoted through the shell', () => {
  const home = tmpDir('ftl-home-');
  fs.writeFileSync(path.join(home, 'env with space.sh'), 'export FROM_SETUP=yes\n');
  const python = "/opt/my envs/it's/python";
  const runDir = '/shared/runs/exp "1" $x';
  const s = batchScript({ jobName: 'exp-1', launcher: { ...every, setup: ['module load cuda/12.4', `source ${shellQuote(path.join(home, 'env with space.sh'))}`] }, python, trainerDir: '/ext/trainer dir', runDirs: [runDir], env: { FINETUNE_LAB_BROWN_DIR: '/data/brown corpus' } });
  assert.match(s, /^#!\/bin\/bash\n/);
  const { argv, log } = runScript(s, { SLURM_NNODES: '2', SLURM_JOB_ID: '4242', SLURM_JOB_NODELIST: 'node[7-8]', SLURM_CPUS_PER_TASK: '32' });
  assert.match(log, /module load cuda\/12.4/);
  assert.match(log, /Slurm job 4242 on node\[7-8\] \(2 node\(s\)\), rendezvous node7:29511/);
  assert.deepEqual(argv, [
    '--kill-on-bad-exit=1', '--cpus-per-task=32', python, '-m', 'finetune_lab', 'torchrun',
    '--nnodes', '2', '--nproc_per_node', '8', '--rdzv_id', '4242', '--rdzv_backend', 'c10d', '--rdzv_endpoint', 'node7:29511',
    '-m', 'finetune_lab', 'run', '--run-dir', runDir,
  ]);
});

test('resume and requeue add --resume; without a port the rendezvous port follows the job id', () => {
  const base = { jobName: 'r', launcher: { kind: 'slurm' as const }, python: '/py', trainerDir: '/t', runDirs: ['/r'] };
  const env = { SLURM_NNODES: '1', SLURM_JOB_ID: '123', SLURM_JOB_NODELIST: 'node7' };
  const fresh = runScript(batchScript(base), env).argv;
  assert.equal(fresh.at(-1), '/r');
  assert.ok(fresh.includes('node7:20123'), fresh.join(' '));
  assert.ok(!fresh.includes('--cpus-per-task=32'));
  assert.equal(runScript(batchScript({ ...base, resume: true }), env).argv.at(-1), '--resume');
  assert.equal(runScript(batchScript(base), { ...env, SLURM_RESTART_COUNT: '1' }).argv.at(-1), '--resume');
});

test('an array task picks its run folder by SLURM_ARRAY_TASK_ID', () => {
  const s = batchScript({ jobName: 'sw', launcher: { kind: 'slurm' }, python: '/py', trainerDir: '/t', runDirs: ['/runs/a', '/runs/b c'], arrayOutput: '/runs/.slurm/sw/%a/train.log' });
  const { argv } = runScript(s, { SLURM_NNODES: '1', SLURM_JOB_ID: '9', SLURM_JOB_NODELIST: 'n1', SLURM_ARRAY_TASK_ID: '1' });
  assert.deepEqual(argv.slice(-2), ['--run-dir', '/runs/b c']);
});
