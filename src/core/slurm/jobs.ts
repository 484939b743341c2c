// What Slurm says about a job, parsed from its own commands' output: squeue (pending and running
// jobs, and finished ones while slurmctld keeps them: MinJobAge), scontrol show job (exit code,
// restarts), sacct (finished jobs, where accounting exists). Pure: text in, JobInfo out.

export interface JobInfo {
  /** 123, or 123_4 for a task of a job array. */
  jobId: string;
  /** The base JobState word: PENDING, RUNNING, COMPLETED, CANCELLED (without "by <uid>"), ... */
  state: string;
  /** Why it is pending, or how it ended; null for None. */
  reason: string | null;
  nodes: string | null;
  /** <code>:<signal>, once known. */
  exitCode: string | null;
  /** Where this came from. */
  source: 'squeue' | 'scontrol' | 'sacct';
}

/** States in which the job has not started yet. */
export const PENDING_STATES = new Set(['PENDING', 'CONFIGURING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESV_DEL_HOLD']);
/** States in which the job holds nodes (its trainer may run). */
export const ACTIVE_STATES = new Set(['RUNNING', 'COMPLETING', 'SUSPENDED', 'STOPPED', 'SIGNALING', 'STAGE_OUT', 'RESIZING']);
/** Ended by the scheduler, not by the run: the run can be resumed from its checkpoint. */
export const SCHEDULER_ENDED: Record<string, string> = {
  TIMEOUT: 'time limit reached',
  PREEMPTED: 'preempted',
  NODE_FAIL: 'node failure',
  BOOT_FAIL: 'node boot failure',
  DEADLINE: 'deadline reached',
  OUT_OF_MEMORY: 'out of memory',
};

export const isTerminal = (state: string): boolean => !PENDING_STATES.has(state) && !ACTIVE_STATES.has(state);

/** "CANCELLED by 0" → CANCELLED; "COMPLETED+" → COMPLETED. */
export function baseState(s: string): string {
  return s.trim().split(/\s+/)[0].replace(/\+$/, '').toUpperCase();
}

const nullish = (s: string | undefined): string | null => {
  const t = (s ?? '').trim();
  return t === '' || t === 'None' || t === '(null)' || t === 'n/a' || t === 'N/A' ? null : t;
};

/** The squeue format these parsers read: `squeue -h -r -t all -j IDS -o SQUEUE_FORMAT`. */
export const SQUEUE_FORMAT = '%i|%T|%N|%r';

/** Lines of `squeue -o '%i|%T|%N|%r'` (the reason last: it is free text). */
export function parseSqueue(text: string): JobInfo[] {
  const out: JobInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [id, state, nodes, ...reason] = line.split('|');
    if (!id || !state || !/^[0-9]+(_[0-9]+)?$/.test(id.trim())) continue;
    out.push({ jobId: id.trim(), state: baseState(state), nodes: nullish(nodes), reason: nullish(reason.join('|')), exitCode: null, source: 'squeue' });
  }
  return out;
}

/**
 * `scontrol show job -o ID`: one line of Key=Value pairs per job (a job array's tasks each get one).
 * A value may hold spaces (JobName, Comment, Command); a new pair starts at ` Key=` where Key is a
 * word of letters, digits, / : _ — the way scontrol writes its keys.
 */
export function parseScontrolPairs(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /(?:^|\s)([A-Za-z][A-Za-z0-9/:_]*)=/g;
  const marks: { key: string; start: number; valueStart: number }[] = [];
  for (let m = re.exec(line); m; m = re.exec(line)) marks.push({ key: m[1], start: m.index, valueStart: m.index + m[0].length });
  marks.forEach((mk, i) => {
    const end = i + 1 < marks.length ? marks[i + 1].start : line.length;
    if (!(mk.key in out)) out[mk.key] = line.slice(mk.valueStart, end).trim();
  });
  return out;
}

export function parseScontrol(text: string): JobInfo[] {
  const out: JobInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('JobId=')) continue;
    const kv = parseScontrolPairs(line);
    const id = kv.ArrayJobId && kv.ArrayTaskId && /^[0-9]+$/.test(kv.ArrayTaskId) ? `${kv.ArrayJobId}_${kv.ArrayTaskId}` : kv.JobId;
    if (!id || !kv.JobState) continue;
    out.push({ jobId: id, state: baseState(kv.JobState), reason: nullish(kv.Reason), nodes: nullish(kv.NodeList), exitCode: nullish(kv.ExitCode), source: 'scontrol' });
  }
  return out;
}

/** The sacct fields these parsers read: `sacct -n -P -X -j IDS -o SACCT_FIELDS`. */
export const SACCT_FIELDS = 'JobID,State,ExitCode,NodeList,Reason';

export function parseSacct(text: string): JobInfo[] {
  const out: JobInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [id, state, exit, nodes, ...reason] = line.split('|');
    if (!id || !state || !/^[0-9]+(_[0-9]+)?$/.test(id.trim())) continue;
    out.push({ jobId: id.trim(), state: baseState(state), exitCode: nullish(exit), nodes: nullish(nodes), reason: nullish(reason.join('|')), source: 'sacct' });
  }
  return out;
}

/** "job 12 is pending (Priority)", "job 12 ran out of time (TIMEOUT)": how a state reads to a user. */
export function describeJob(job: Pick<JobInfo, 'jobId' | 'state' | 'reason' | 'exitCode'> & { nodes?: string | null }): string {
  const why = SCHEDULER_ENDED[job.state];
  const reason = job.reason && job.reason !== job.state ? ` (${job.reason})` : '';
  if (PENDING_STATES.has(job.state)) return `job ${job.jobId} ${job.state.toLowerCase()}${reason}`;
  if (why) return `job ${job.jobId} ended by Slurm: ${job.state} (${why})`;
  if (ACTIVE_STATES.has(job.state)) return `job ${job.jobId}${job.state === 'RUNNING' ? '' : ` ${job.state.toLowerCase()}`}${job.nodes ? ` on ${job.nodes}` : ''}`;
  const exit = job.exitCode && job.exitCode !== '0:0' && isTerminal(job.state) ? `, exit ${job.exitCode}` : '';
  return `job ${job.jobId} ${job.state.toLowerCase()}${reason}${exit}`;
}
