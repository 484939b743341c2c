#!/usr/bin/env node
// Installs what the Slurm tests need: Debian's slurm-wlm (slurmctld, slurmd, sbatch, squeue,
// scontrol, scancel, sacct) and munge (Slurm's authentication). As root it runs apt-get; otherwise
// it stops with the command to run. Quick when they are there (it only asks dpkg). The cluster
// itself is started per test by scripts/slurmCluster.mjs.
//
//   node scripts/slurmSetup.mjs          (scripts/ensure.mjs test runs it)
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv } from './childEnv.mjs';

export const SLURM_PACKAGES = ['slurm-wlm', 'munge'];
/** The programs the tests and the extension call; each must be on PATH after the install. */
export const SLURM_PROGRAMS = ['slurmctld', 'slurmd', 'sbatch', 'squeue', 'scontrol', 'scancel', 'sinfo', 'munged', 'mungekey'];

class SetupError extends Error {}

function log(msg) { process.stderr.write(`[slurm-setup] ${msg}\n`); }

function dpkgInstalled(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && /install ok installed/.test(r.stdout);
}

function onPath(program) {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', program], { stdio: 'ignore' }).status === 0;
}

/** Installs the packages dpkg lacks; throws SetupError naming them and the command otherwise. */
export function slurmSetup() {
  const hasDpkg = spawnSync('dpkg-query', ['--version'], { stdio: 'ignore' }).status === 0;
  const how = `apt-get update && apt-get install -y --no-install-recommends ${SLURM_PACKAGES.join(' ')}`;
  if (!hasDpkg) {
    const missing = SLURM_PROGRAMS.filter((p) => !onPath(p));
    if (missing.length) throw new SetupError(`not a Debian-like machine (no dpkg-query) and ${missing.join(', ')} not on PATH: install Slurm and munge by other means`);
    return;
  }
  const missing = SLURM_PACKAGES.filter((p) => !dpkgInstalled(p));
  if (missing.length) {
    if (process.getuid?.() !== 0) throw new SetupError(`missing Debian packages: ${missing.join(', ')}. Install them as root: \`${how}\``);
    log(`installing Debian packages: ${missing.join(' ')}`);
    const env = childEnv({ DEBIAN_FRONTEND: 'noninteractive' });
    for (const args of [['update'], ['install', '-y', '--no-install-recommends', ...missing]]) {
      log(`$ apt-get ${args.join(' ')}`);
      const r = spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env });
      if (r.status !== 0) throw new SetupError(`apt-get ${args[0]} exited with ${r.status ?? r.signal}. Missing: ${missing.join(', ')}; install them with \`${how}\``);
    }
  }
  const absent = SLURM_PROGRAMS.filter((p) => !onPath(p));
  if (absent.length) throw new SetupError(`${absent.join(', ')} not on PATH although ${SLURM_PACKAGES.join(' and ')} are installed`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    slurmSetup();
    log('ready: slurm-wlm and munge installed');
  } catch (e) {
    log(`FAILED: ${e instanceof SetupError ? e.message : e.stack}`);
    log('The Slurm tests cannot run without these; they are not skipped.');
    process.exit(1);
  }
}
