import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration } from '../../src/core/duration';
import { etaSeconds, lastLines, runDescription, runTooltipMarkdown, statusBarText, type StatusLike } from '../../src/views/runFormat';

const running: StatusLike = { state: 'running', step: 120, total_steps: 500, started: 1000, heartbeat: 1060, loss: 1.9345 };

test('description: state word, step/total, loss, ETA', () => {
  // 60 s for 120 steps → 0.5 s/step → 380 steps left = 190 s = 3m10s.
  assert.equal(runDescription(running), 'running · step 120/500 · loss 1.93 · ETA 3m10s');
  assert.equal(runDescription({ state: 'queued', step: 0, total_steps: 500 }), 'queued');
  assert.equal(runDescription({ state: 'completed', step: 500, total_steps: 500, loss: 1.7123 }), 'completed · 500 steps · loss 1.71');
  assert.equal(runDescription({ state: 'failed', step: 3, total_steps: 20, error: 'x' }), 'failed · at 3/20');
  assert.equal(runDescription({ state: 'running', step: 0, total_steps: 20, phase: 'pretraining', started: 5 }), 'running · pretraining · step 0/20');
  assert.equal(runDescription(undefined), 'no status');
});

test('a Slurm run: the job id, state and pending reason in the description and the tooltip', () => {
  const slurm = (state: string, reason: string | null, text: string) => ({ jobId: '4242', state, reason, text });
  assert.equal(runDescription({ state: 'queued', step: 0, total_steps: 500, slurm: slurm('PENDING', 'Priority', 'job 4242 pending (Priority)') }), 'queued · job 4242 pending (Priority)');
  assert.equal(runDescription({ ...running, slurm: slurm('RUNNING', null, 'job 4242 on gpu[01-02]') }), 'running · step 120/500 · loss 1.93 · ETA 3m10s · job 4242 on gpu[01-02]');
  assert.equal(runDescription({ state: 'stopped', step: 9, total_steps: 500, slurm: slurm('TIMEOUT', 'TimeLimit', 'job 4242 ended by Slurm: TIMEOUT (time limit reached)') }), 'stopped · at 9/500 · job 4242');
  assert.equal(runDescription({ state: 'running', step: 1, total_steps: 5, slurm: { ...slurm('RUNNING', null, 'job 4242'), unknown: 'squeue not found on PATH' } }), 'running · step 1/5 · job 4242 (Slurm unreachable)');
  const md = runTooltipMarkdown({ id: 'r1', status: { state: 'queued', step: 0, total_steps: 5, slurm: slurm('PENDING', 'QOSMaxJobsPerUserLimit', 'job 4242 pending (QOSMaxJobsPerUserLimit)') } });
  assert.match(md, /\*\*Slurm:\*\* job `4242` · PENDING · reason QOSMaxJobsPerUserLimit/);
});

test('ETA needs a step and timing', () => {
  assert.equal(etaSeconds({ ...running, step: 0 }), undefined);
  assert.equal(etaSeconds({ ...running, started: null }), undefined);
  assert.equal(etaSeconds({ ...running, state: 'stopped' }), undefined);
  assert.equal(etaSeconds(running), 190);
  assert.equal(etaSeconds({ ...running, heartbeat: null }, 1120), 380);
});

test('durations', () => {
  assert.equal(formatDuration(42), '42s');
  assert.equal(formatDuration(150), '2m30s');
  assert.equal(formatDuration(3900), '1h05m');
  assert.equal(formatDuration(-1), '?');
});

test('tooltip lists overrides, the error and the log tail', () => {
  const md = runTooltipMarkdown({
    id: 'exp-20250101-000000-lora-r16', label: 'lora-r16',
    status: { state: 'failed', step: 3, total_steps: 20, error: 'CUDA out of memory' },
    overrides: { 'lora.rank': 16, 'train.lr': 0.0005 }, logTail: ['Traceback', 'RuntimeError: boom'],
  });
  assert.match(md, /`lora\.rank`: `16`/);
  assert.match(md, /`train\.lr`: `5e-4`/);
  assert.match(md, /CUDA out of memory/);
  assert.match(md, /```text\nTraceback\nRuntimeError: boom\n```/);
});

test('status bar text and log tail', () => {
  assert.equal(statusBarText('lora-r16', running), '$(sync~spin) lora-r16 120/500');
  assert.equal(statusBarText('lora-r16', running, 2), '$(sync~spin) lora-r16 120/500 (+2)');
  assert.deepEqual(lastLines('a\n\nb\nc\n', 2), ['b', 'c']);
});
