// Is this pid a trainer of this run folder? status.json is a file in the workspace: its pid may be
// stale (the number reused by another program after a reboot) or planted. Before Stop or Kill
// signals a process group that this process did not start itself, it checks that the process is a
// trainer working in that run folder: every launcher starts the trainer with cwd = the run folder
// and `--run-dir <folder>` in its arguments (trainerLaunch.ts, the CLI, the fault script).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pidAlive } from './reconcile';

const realpath = (p: string): string => { try { return fs.realpathSync(p); } catch { return path.resolve(p); } };

/** The command line of a process: /proc on Linux, `ps` elsewhere; undefined when unreadable. */
function commandLine(pid: number): string[] | undefined {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean); } catch { /* not Linux, or gone */ }
  if (process.platform === 'linux') return undefined;
  // ps prints the arguments joined by spaces: one string, matched as a whole below.
  try { return [execFileSync('ps', ['-p', String(pid), '-o', 'command='], { encoding: 'utf8', timeout: 5000 }).trim()]; } catch { return undefined; }
}

/**
 * True when `pid` is alive and is a Finetune Lab trainer of `runDir`: its arguments hold
 * `finetune_lab` and `--run-dir <runDir>` (or its working folder is `runDir`, on Linux).
 */
export function isTrainerOf(pid: number, runDir: string): boolean {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || !pidAlive(pid)) return false;
  const argv = commandLine(pid);
  if (!argv || !argv.some((a) => a.includes('finetune_lab'))) return false;
  const want = realpath(runDir);
  const i = argv.indexOf('--run-dir');
  if (i >= 0 && argv[i + 1] && realpath(argv[i + 1]) === want) return true;
  if (argv.length === 1 && (argv[0].includes(`--run-dir ${want}`) || argv[0].includes(`--run-dir ${path.resolve(runDir)}`))) return true;
  try { return realpath(fs.readlinkSync(`/proc/${pid}/cwd`)) === want; } catch { return false; }
}
