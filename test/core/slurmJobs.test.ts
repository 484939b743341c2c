import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSqueue, parseScontrol, parseSacct, parseScontrolPairs, describeJob, baseState } from '../../src/core/slurm/jobs';
import { parseParsable, slurmClient, SlurmError, type Exec } from '../../src/core/slurm/client';
import { reconcileSlurm, type JobView } from '../../src/core/slurm/reconcile';
import { JobTracker } from '../../src/core/slurm/tracker';
import type { RunStatus } from '../../src/core/generated/status';
import type { SlurmRecord } from '../../src/core/generated/slurm';

// Output of Slurm 22.05 (Debian's slurm-wlm) on the test cluster, as printed.
const SQUEUE = `2|CANCELLED||JobHeldUser
1|COMPLETED|vm|None
5|FAILED|vm|NonZeroExitCode
4_1|PENDING||JobArrayTaskLimit
4_0|RUNNING|vm|None
`;
const SCONTROL_FAILED = 'JobId=5 JobName=f.sh UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901756 Nice=0 Account=(null) QOS=(null) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0 RunTime=00:00:00 NodeList=vm BatchHost=vm Command=/tmp/f.sh WorkDir=/tmp StdOut=/dev/null Power= ';
const SCONTROL_NAMED = 'JobId=1 JobName=a b UserId=root(0) JobState=CANCELLED Reason=None Comment=x y \'z\' # not  ExitCode=0:15 NodeList=(null) StdOut=/tmp/my runs/train.log Power= ';
const SCONTROL_ARRAY = 'JobId=7 ArrayJobId=4 ArrayTaskId=2 ArrayTaskThrottle=1 JobName=a.sh JobState=TIMEOUT Reason=TimeLimit ExitCode=0:0 NodeList=vm';

test('squeue lines: id, base state, nodes, reason (None is null)', () => {
  const jobs = parseSqueue(SQUEUE);
  assert.deepEqual(jobs.map((j) => [j.jobId, j.state, j.nodes, j.reason]), [
    ['2', 'CANCELLED', null, 'JobHeldUser'], ['1', 'COMPLETED', 'vm', null], ['5', 'FAILED', 'vm', 'NonZeroExitCode'],
    ['4_1', 'PENDING', null, 'JobArrayTaskLimit'], ['4_0', 'RUNNING', 'vm', null],
  ]);
  assert.deepEqual(parseSqueue('slurm_load_jobs error: Invalid job id specified\n\n'), []);
  assert.equal(baseState('CANCELLED by 0'), 'CANCELLED');
  assert.equal(baseState('COMPLETED+'), 'COMPLETED');
});

test('scontrol show job -o: values with spaces, (null), array tasks as <array>_<task>', () => {
  const [failed] = parseScontrol(SCONTROL_FAILED);
  assert.deepEqual(failed, { jobId: '5', state: 'FAILED', reason: 'NonZeroExitCode', nodes: 'vm', exitCode: '3:0', source: 'scontrol' });
  const kv = parseScontrolPairs(SCONTROL_NAMED);
  assert.equal(kv.JobName, 'a b');
  assert.equal(kv.Comment, "x y 'z' # not");
  assert.equal(kv.StdOut, '/tmp/my runs/train.log');
  assert.equal(parseScontrol(SCONTROL_NAMED)[0].nodes, null);
  assert.deepEqual(parseScontrol(SCONTROL_ARRAY).map((j) => [j.jobId, j.state, j.reason]), [['4_2', 'TIMEOUT', 'TimeLimit']]);
});

test('sacct -P lines and sbatch --parsable output', () => {
  const jobs = parseSacct('12|TIMEOUT|0:0|gpu[01-02]|None\n13|CANCELLED by 1000|0:15|None assigned|None\n13.batch|CANCELLED|0:15||\n');
  assert.deepEqual(jobs.map((j) => [j.jobId, j.state, j.exitCode, j.nodes]), [['12', 'TIMEOUT', '0:0', 'gpu[01-02]'], ['13', 'CANCELLED', '0:15', 'None assigned']]);
  assert.equal(parseParsable('4242\n'), '4242');
  assert.equal(parseParsable('4242;cluster-a\n'), '4242');
  assert.equal(parseParsable('Submitted batch job 3'), undefined);
});

test('describeJob reads as a user would say it', () => {
  assert.equal(describeJob({ jobId: '12', state: 'PENDING', reason: 'Priority', exitCode: null }), 'job 12 pending (Priority)');
  assert.equal(describeJob({ jobId: '12', state: 'TIMEOUT', reason: 'TimeLimit', exitCode: '0:0' }), 'job 12 ended by Slurm: TIMEOUT (time limit reached)');
  assert.equal(describeJob({ jobId: '12', state: 'NODE_FAIL', reason: null, exitCode: '0:0' }), 'job 12 ended by Slurm: NODE_FAIL (node failure)');
  assert.equal(describeJob({ jobId: '12', state: 'FAILED', reason: 'NonZeroExitCode', exitCode: '3:0' }), 'job 12 failed (NonZeroExitCode), exit 3:0');
  assert.equal(describeJob({ jobId: '12', state: 'RUNNING', reason: null, exitCode: null, nodes: 'gpu[01-02]' }), 'job 12 on gpu[01-02]');
  assert.equal(describeJob({ jobId: '12', state: 'SUSPENDED', reason: null, exitCode: null }), 'job 12 suspended');
});

/** An Exec that answers from a table of argv → result, recording the calls. */
function fakeExec(answers: Record<string, { code?: number; stdout?: string; stderr?: string } | 'ENOENT'>): { exec: Exec; calls: string[] } {
  const calls: string[] = [];
  const exec: Exec = async (cmd, args) => {
    const key = [cmd, ...args].join(' ');
    calls.push(key);
    const hit = Object.entries(answers).find(([k]) => key.startsWith(k))?.[1];
    if (hit === 'ENOENT' || (!hit && !Object.keys(answers).some((k) => k.startsWith(cmd)))) {
      // as execCommand does for a missing program
      throw new SlurmError(`${cmd} not found on PATH: launcher.kind slurm needs Slurm's commands`, 'not-found');
    }
    return { code: hit?.code ?? 0, stdout: hit?.stdout ?? '', stderr: hit?.stderr ?? '' };
  };
  return { exec, calls };
}

test('client.jobs: one squeue for all, scontrol for ended jobs, sacct for the ones the controller forgot', async () => {
  const { exec, calls } = fakeExec({
    'squeue -h -r -t all -j 5,4,30': { stdout: '5|FAILED|vm|NonZeroExitCode\n4_0|RUNNING|vm|None\n' },
    'scontrol show job -o 5': { stdout: SCONTROL_FAILED },
    'sacct -n -P -X -j 30': { code: 1, stderr: 'Slurm accounting storage is disabled' },
  });
  const r = await slurmClient(exec).jobs(['5', '4_0', '30']);
  assert.equal(r.jobs.get('5')?.exitCode, '3:0');
  assert.equal(r.jobs.get('4_0')?.state, 'RUNNING');
  assert.deepEqual(r.missing, ['30']);
  assert.deepEqual(calls.map((c) => c.split(' ')[0]), ['squeue', 'scontrol', 'sacct']);
  const withAcct = fakeExec({ 'squeue': { code: 1, stderr: 'slurm_load_jobs error: Invalid job id specified' }, 'sacct': { stdout: '30|TIMEOUT|0:0|gpu01|None\n' }, 'scontrol': {} });
  assert.equal((await slurmClient(withAcct.exec).jobs(['30'])).jobs.get('30')?.state, 'TIMEOUT');
  const down = fakeExec({ 'squeue': { code: 1, stderr: 'squeue: error: Unable to contact slurm controller (connect failure)' } });
  await assert.rejects(slurmClient(down.exec).jobs(['1']), /Unable to contact slurm controller/);
});

test('client.submit: the job id, or sbatch\'s own message; no sbatch is a clear error', async () => {
  const ok = fakeExec({ 'sbatch --parsable /r/slurm.sbatch': { stdout: '77\n' } });
  assert.equal(await slurmClient(ok.exec).submit('/r/slurm.sbatch'), '77');
  const rejected = fakeExec({ sbatch: { code: 1, stderr: 'sbatch: error: invalid partition specified: nope\nsbatch: error: Batch job submission failed: Invalid partition name specified\n' } });
  await assert.rejects(slurmClient(rejected.exec).submit('/r/s'), (e: SlurmError) => e.kind === 'rejected' && /invalid partition specified: nope; sbatch: error: Batch job submission failed: Invalid partition name specified/.test(e.message));
  const none = fakeExec({ squeue: {} });
  await assert.rejects(slurmClient(none.exec).submit('/r/s'), /sbatch not found on PATH/);
});

test('JobTracker: lookups made together are one query; answers are reused a few seconds; errors are not cached', async () => {
  let queries = 0;
  let now = 0;
  const client = { submit: async () => '1', cancel: async () => ({ ok: true, message: '' }), jobs: async (ids: string[]) => {
    queries++;
    if (ids.includes('bad')) throw new SlurmError('squeue: down', 'failed');
    return { jobs: new Map(ids.filter((i) => i !== '9').map((i) => [i, { jobId: i, state: 'RUNNING', reason: null, nodes: 'n', exitCode: null, source: 'squeue' as const }])), missing: ids.filter((i) => i === '9') };
  } };
  const t = new JobTracker(client, 3000, () => now);
  const [a, b, c] = await Promise.all([t.view('1'), t.view('2'), t.view('9')]);
  assert.equal(queries, 1);
  assert.equal(a.kind, 'job'); assert.equal(b.kind, 'job'); assert.equal(c.kind, 'missing');
  now = 2000; await t.view('1'); assert.equal(queries, 1);
  now = 4000; await t.view('1'); assert.equal(queries, 2);
  assert.deepEqual(await t.view('bad'), { kind: 'unknown', error: 'squeue: down' });
  await t.view('bad'); assert.equal(queries, 4);
});

const record = (over: Partial<SlurmRecord> = {}): SlurmRecord => ({ v: 1, job_id: '12', jobs: [{ job_id: '12', submitted: 1000, resume: false }], script: '/r/slurm.sbatch', ...over });
const status = (over: Partial<RunStatus> = {}): RunStatus => ({ v: 1, state: 'queued', step: 0, total_steps: 10, pid: null, heartbeat: null, error: null, ...over });
const job = (state: string, reason: string | null = null, exitCode: string | null = null): JobView => ({ kind: 'job', job: { jobId: '12', state, reason, nodes: 'gpu01', exitCode, source: 'squeue' } });
const finished = (st: 'completed' | 'stopped' | 'failed', time = 2000) => ({ v: 1 as const, time, type: 'run_finished' as const, status: st, step: 4, error: null });

test('reconcileSlurm: pending → queued with the reason; running; the trainer\'s pid is never checked', () => {
  const p = reconcileSlurm(status(), { record: record(), view: job('PENDING', 'Priority'), now: 1100 });
  assert.equal(p.state, 'queued');
  assert.deepEqual(p.slurm, { jobId: '12', state: 'PENDING', reason: 'Priority', nodes: 'gpu01', text: 'job 12 pending (Priority)' });
  const r = reconcileSlurm(status(), { record: record(), view: job('RUNNING'), now: 1100 });
  assert.equal(r.state, 'running'); assert.equal(r.phase, 'starting');
  const alive = reconcileSlurm(status({ state: 'running', pid: 999999999, heartbeat: 1090 }), { record: record(), view: job('RUNNING'), now: 1100 });
  assert.equal(alive.state, 'running'); assert.equal(alive.stale, undefined);
  const quiet = reconcileSlurm(status({ state: 'running', pid: 1, heartbeat: 1000 }), { record: record(), view: job('RUNNING'), now: 1100 });
  assert.equal(quiet.stale, true);
});

test('reconcileSlurm: the trainer\'s run_finished wins; a scheduler end is named; an older run_finished is not this job\'s', () => {
  const done = reconcileSlurm(status({ state: 'running' }), { record: record(), view: job('COMPLETED'), finished: finished('completed'), now: 3000 });
  assert.equal(done.state, 'completed');
  const timeout = reconcileSlurm(status({ state: 'running' }), { record: record(), view: job('TIMEOUT', 'TimeLimit'), finished: finished('stopped'), now: 3000 });
  assert.equal(timeout.state, 'stopped');
  assert.equal(timeout.error, 'job 12 ended by Slurm: TIMEOUT (time limit reached)');
  // resumed: status queued again, the run_finished in events is from the job before (time 900 < submitted 1000)
  const resumed = reconcileSlurm(status(), { record: record(), view: job('PENDING', 'Resources'), finished: finished('stopped', 900), now: 1100 });
  assert.equal(resumed.state, 'queued');
  // requeued by Slurm after the trainer stopped on its SIGTERM: waiting to run again, not stopped
  const requeued = reconcileSlurm(status({ state: 'stopped' }), { record: record(), view: job('PENDING', 'BeginTime'), finished: finished('stopped'), now: 3000 });
  assert.equal(requeued.state, 'queued');
  assert.match(requeued.slurm?.text ?? '', /requeued: resumes from its checkpoint/);
});

test('reconcileSlurm: ended without a result → failed with Slurm\'s word, cancelled → stopped, forgotten → last state seen', () => {
  const nf = reconcileSlurm(status({ state: 'running' }), { record: record(), view: job('NODE_FAIL'), now: 3000 });
  assert.equal(nf.state, 'failed');
  assert.match(nf.error ?? '', /^job 12 ended by Slurm: NODE_FAIL \(node failure\); the trainer wrote no result/);
  const f = reconcileSlurm(status({ state: 'running' }), { record: record(), view: job('FAILED', 'NonZeroExitCode', '1:0'), now: 3000 });
  assert.match(f.error ?? '', /^Slurm job 12 failed \(NonZeroExitCode\), exit 1:0; the trainer wrote no result \(see train.log\)$/);
  const c = reconcileSlurm(status(), { record: record(), view: job('CANCELLED'), now: 3000 });
  assert.equal(c.state, 'stopped'); assert.equal(c.error, 'Slurm job 12 was cancelled before it started');
  const gone = reconcileSlurm(status({ state: 'running' }), { record: record({ state: 'TIMEOUT', reason: 'TimeLimit' }), view: { kind: 'missing' }, now: 9000 });
  assert.equal(gone.state, 'failed'); assert.match(gone.error ?? '', /TIMEOUT/);
  const never = reconcileSlurm(status({ state: 'running' }), { record: record(), view: { kind: 'missing' }, now: 9000 });
  assert.match(never.error ?? '', /Slurm no longer knows job 12/);
});

test('reconcileSlurm: Slurm unreachable (laptop, controller down) leaves the state as it is and says why', () => {
  const u = reconcileSlurm(status({ state: 'running', pid: 5 }), { record: record(), view: { kind: 'unknown', error: 'squeue not found on PATH' }, now: 3000 });
  assert.equal(u.state, 'running');
  assert.equal(u.slurm?.unknown, 'squeue not found on PATH');
});
