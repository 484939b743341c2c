// Slurm's own commands, run as argv arrays (never a shell): sbatch --parsable to submit, squeue /
// scontrol show job / sacct to read jobs, scancel to stop. A missing command is a clear error that
// says where Slurm is expected (the login node, e.g. through Remote-SSH).
import { execFile } from 'node:child_process';
import { isTerminal, parseSacct, parseScontrol, parseSqueue, SACCT_FIELDS, SQUEUE_FORMAT, type JobInfo } from './jobs';

export class SlurmError extends Error {
  constructor(message: string, readonly kind: 'not-found' | 'rejected' | 'failed') { super(message); }
}

export interface ExecResult { code: number; stdout: string; stderr: string }
export type Exec = (cmd: string, args: string[], opts?: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }) => Promise<ExecResult>;

/** execFile that resolves with the exit code; rejects only when the program cannot start (ENOENT...). */
export const execCommand: Exec = (cmd, args, opts = {}) => new Promise((resolve, reject) => {
  execFile(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) => {
    const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
    if (e && typeof e.code === 'string') {
      reject(e.code === 'ENOENT'
        ? new SlurmError(`${cmd} not found on PATH: launcher.kind slurm needs Slurm's commands (sbatch, squeue, scontrol, scancel) where the extension or the CLI runs, e.g. on the cluster's login node (over Remote-SSH)`, 'not-found')
        : new SlurmError(`${cmd}: ${e.message}`, 'failed'));
      return;
    }
    resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
  });
});

/** The last meaningful lines of a command's stderr ("sbatch: error: ..."), as Slurm wrote them. */
export function slurmMessage(stderr: string, fallback: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.length ? lines.slice(-3).join('; ') : fallback;
}

/** The job id in `sbatch --parsable` output: "123" or "123;cluster". */
export function parseParsable(stdout: string): string | undefined {
  const first = stdout.trim().split('\n').pop()?.trim() ?? '';
  const id = first.split(';')[0];
  return /^[0-9]+$/.test(id) ? id : undefined;
}

export interface JobLookup {
  /** Every job Slurm still knows, by id. */
  jobs: Map<string, JobInfo>;
  /** Asked for, known to none of squeue, scontrol and sacct. */
  missing: string[];
}

export interface SlurmClient {
  /** sbatch --parsable SCRIPT; resolves to the job id, or throws SlurmError 'rejected' with sbatch's message. */
  submit(script: string, opts?: { cwd?: string; env?: NodeJS.ProcessEnv; args?: string[] }): Promise<string>;
  /** What Slurm says about these jobs; throws SlurmError when it cannot be asked (no squeue, no controller). */
  jobs(ids: string[]): Promise<JobLookup>;
  /** scancel [--signal=SIG] ID; resolves false (with Slurm's message) when scancel refused. */
  cancel(jobId: string, signal?: string): Promise<{ ok: boolean; message: string }>;
}

export function slurmClient(exec: Exec = execCommand): SlurmClient {
  return {
    async submit(script, opts = {}) {
      const r = await exec('sbatch', ['--parsable', ...(opts.args ?? []), script], { cwd: opts.cwd, env: opts.env, timeoutMs: 120_000 });
      const id = r.code === 0 ? parseParsable(r.stdout) : undefined;
      if (!id) throw new SlurmError(slurmMessage(r.stderr, `sbatch exited with ${r.code} and printed no job id`), 'rejected');
      return id;
    },

    async jobs(ids) {
      const jobs = new Map<string, JobInfo>();
      const want = [...new Set(ids)];
      if (!want.length) return { jobs, missing: [] };
      // squeue takes the array job's id for its tasks (123 for 123_4); -r lists each task.
      const ask = [...new Set(want.map((id) => id.split('_')[0]))];
      const q = await exec('squeue', ['-h', '-r', '-t', 'all', '-j', ask.join(','), '-o', SQUEUE_FORMAT]);
      if (q.code !== 0 && !/Invalid job id/i.test(q.stderr)) throw new SlurmError(`squeue: ${slurmMessage(q.stderr, `exit ${q.code}`)}`, 'failed');
      for (const j of parseSqueue(q.stdout)) jobs.set(j.jobId, j);
      // Ended jobs: scontrol has the exit code squeue lacks.
      for (const id of want.filter((i) => jobs.has(i) && isTerminal(jobs.get(i)!.state))) {
        const s = await exec('scontrol', ['show', 'job', '-o', id]);
        const hit = s.code === 0 ? parseScontrol(s.stdout).find((j) => j.jobId === id) : undefined;
        if (hit) jobs.set(id, hit);
      }
      let missing = want.filter((i) => !jobs.has(i));
      if (missing.length) {
        // Gone from the controller: accounting, where the cluster has it ("accounting storage is disabled" otherwise).
        const a = await exec('sacct', ['-n', '-P', '-X', '-j', missing.join(','), '-o', SACCT_FIELDS]).catch(() => undefined);
        if (a && a.code === 0) for (const j of parseSacct(a.stdout)) if (missing.includes(j.jobId)) jobs.set(j.jobId, j);
        missing = missing.filter((i) => !jobs.has(i));
      }
      return { jobs, missing };
    },

    async cancel(jobId, signal) {
      const r = await exec('scancel', [...(signal ? [`--signal=${signal}`] : []), jobId]);
      return { ok: r.code === 0, message: slurmMessage(r.stderr, r.code === 0 ? '' : `scancel exited with ${r.code}`) };
    },
  };
}
