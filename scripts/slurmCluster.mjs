#!/usr/bin/env node
// A single-node Slurm cluster in a folder, for tests: munge (started if it is not answering), a
// slurm.conf with this host as controller and only node, one partition `debug`, no accounting
// (sacct has nothing: jobs are read from squeue and scontrol, kept visible for an hour by
// MinJobAge), free ports, and slurmctld + slurmd as root. Stopped by their pid files.
// Needs root and scripts/slurmSetup.mjs's packages; fails with a message otherwise.
//
//   node scripts/slurmCluster.mjs start DIR   prints {"SLURM_CONF": ".../slurm.conf", "partition": "debug", ...}
//   node scripts/slurmCluster.mjs stop DIR
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv } from './childEnv.mjs';

export const PARTITION = 'debug';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) throw new Error(`could not run ${cmd}: ${r.error.message}`);
  return r;
}

function mungeAnswers() {
  const r = spawnSync('sh', ['-c', 'munge -n | unmunge'], { stdio: 'ignore' });
  return r.status === 0;
}

/** munged running with a key (it is the host's daemon: left running afterwards, as a service would be). */
async function ensureMunge() {
  if (mungeAnswers()) return;
  if (!existsSync('/etc/munge/munge.key')) {
    const r = sh('mungekey', ['-c']);
    if (r.status !== 0) throw new Error(`mungekey -c failed: ${r.stderr}`);
  }
  for (const d of ['/etc/munge', '/run/munge', '/var/log/munge', '/var/lib/munge']) mkdirSync(d, { recursive: true });
  sh('chown', ['-R', 'munge:munge', '/etc/munge', '/run/munge', '/var/log/munge', '/var/lib/munge']);
  const r = sh('runuser', ['-u', 'munge', '--', 'munged', '--force']);
  if (r.status !== 0) throw new Error(`munged did not start: ${r.stderr.trim()}`);
  for (let i = 0; i < 50 && !mungeAnswers(); i++) await sleep(100);
  if (!mungeAnswers()) throw new Error('munged started but `munge -n | unmunge` fails');
}

export function slurmConf(dir, { host, cpuCount, ctldPort, slurmdPort }) {
  return [
    '# Written by scripts/slurmCluster.mjs: a single-node test cluster.',
    'ClusterName=finetunelab',
    `SlurmctldHost=${host}`,
    `SlurmctldPort=${ctldPort}`,
    `SlurmdPort=${slurmdPort}`,
    'SlurmUser=root',
    'SlurmdUser=root',
    'AuthType=auth/munge',
    'CredType=cred/munge',
    'MpiDefault=none',
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'JobAcctGatherType=jobacct_gather/none',
    'AccountingStorageType=accounting_storage/none',
    'SchedulerType=sched/backfill',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_Core',
    'ReturnToService=2',
    // Finished jobs stay in squeue --states=all / scontrol show job for an hour (no accounting here).
    'MinJobAge=3600',
    // A job that ignores SIGTERM is killed 5 s later (Slurm's default is 30 s): the tests stay short.
    'KillWait=5',
    `StateSaveLocation=${join(dir, 'state')}`,
    `SlurmdSpoolDir=${join(dir, 'spool')}`,
    `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
    `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
    `SlurmctldLogFile=${join(dir, 'slurmctld.log')}`,
    `SlurmdLogFile=${join(dir, 'slurmd.log')}`,
    `NodeName=${host} CPUs=${cpuCount} RealMemory=16000 State=UNKNOWN`,
    `PartitionName=${PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP`,
    '',
  ].join('\n');
}

/** Starts the cluster; resolves to the environment and names the tests use. */
export async function startCluster(dir) {
  dir = resolve(dir);
  if (process.getuid?.() !== 0) throw new Error('a test Slurm cluster needs root (slurmd runs jobs as their user)');
  for (const p of ['slurmctld', 'slurmd', 'sinfo']) {
    if (sh('sh', ['-c', 'command -v "$1"', 'sh', p]).status !== 0) throw new Error(`${p} is not on PATH: run node scripts/slurmSetup.mjs (Debian packages slurm-wlm, munge)`);
  }
  await ensureMunge();
  for (const d of ['state', 'spool']) mkdirSync(join(dir, d), { recursive: true });
  const host = hostname().split('.')[0];
  const conf = join(dir, 'slurm.conf');
  writeFileSync(conf, slurmConf(dir, { host, cpuCount: cpus().length, ctldPort: await freePort(), slurmdPort: await freePort() }));
  const env = childEnv({ SLURM_CONF: conf });
  for (const [daemon, args] of [['slurmctld', ['-i']], ['slurmd', []]]) {
    const r = sh(daemon, args, { env });
    if (r.status !== 0) throw new Error(`${daemon} did not start (exit ${r.status}): ${r.stderr.trim()}\n${tail(join(dir, `${daemon}.log`))}`);
  }
  const deadline = Date.now() + 60_000;
  let state = '';
  while (Date.now() < deadline) {
    state = sh('sinfo', ['-h', '-o', '%t'], { env }).stdout.trim();
    if (/^(idle|mix|alloc)/.test(state)) return { SLURM_CONF: conf, partition: PARTITION, node: host, dir };
    await sleep(300);
  }
  await stopCluster(dir);
  throw new Error(`the node did not become idle in 60 s (sinfo: '${state}')\n${tail(join(dir, 'slurmctld.log'))}\n${tail(join(dir, 'slurmd.log'))}`);
}

function tail(file, n = 20) {
  try { return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n'); } catch { return `(no ${file})`; }
}

function pidAlive(pid) { try { process.kill(pid, 0); return true; } catch { return false; } }

/**
 * Cancels the cluster's jobs (slurmstepd outlives slurmd: a job would train on), then stops slurmd
 * and slurmctld by their pid files (SIGTERM, then SIGKILL after 10 s).
 */
export async function stopCluster(dir) {
  dir = resolve(dir);
  const env = childEnv({ SLURM_CONF: join(dir, 'slurm.conf') });
  if (existsSync(join(dir, 'slurm.conf'))) {
    const ids = () => spawnSync('squeue', ['-h', '-o', '%i'], { encoding: 'utf8', env }).stdout?.trim().split(/\s+/).filter(Boolean) ?? [];
    const jobs = ids();
    if (jobs.length) spawnSync('scancel', jobs, { env });
    for (let i = 0; i < 100 && ids().length; i++) await sleep(100);
  }
  for (const name of ['slurmd', 'slurmctld']) {
    let pid;
    try { pid = Number(readFileSync(join(dir, `${name}.pid`), 'utf8').trim()); } catch { continue; }
    if (!pid || !pidAlive(pid)) continue;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && pidAlive(pid); i++) await sleep(100);
    if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [cmd, dir] = process.argv.slice(2);
  if (!dir || !['start', 'stop'].includes(cmd)) { console.error('usage: node scripts/slurmCluster.mjs start|stop DIR'); process.exit(2); }
  try {
    if (cmd === 'start') console.log(JSON.stringify(await startCluster(dir)));
    else await stopCluster(dir);
  } catch (e) {
    console.error(`[slurm-cluster] ${e.message}`);
    process.exit(1);
  }
}
