import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunFeed, type RunStateSource } from '../../src/panels/runFeed';
import { VIEW_FILTERS, toAppend } from '../../src/panels/wire';
import { RunSeries } from '../../src/core/runSeries';
import type { RunAppend, RunHeader } from '../../src/core/messages';
import type { ReconciledState } from '../../src/panels/wire';
import { tmpDir, waitFor } from '../core/helpers';

/** A stand-in for the RunManager: states set by the test, listeners told on change. */
class FakeStates implements RunStateSource {
  private readonly states = new Map<string, ReconciledState>();
  private readonly listeners = new Set<() => void>();
  set(id: string, s: ReconciledState): void { this.states.set(id, s); for (const l of this.listeners) l(); }
  stateOf(id: string): ReconciledState | undefined { return this.states.get(id); }
  onDidChangeStates(l: () => void) { this.listeners.add(l); return { dispose: () => this.listeners.delete(l) }; }
}

const line = (e: Record<string, unknown>) => `${JSON.stringify({ v: 1, time: 1, ...e })}\n`;
const train = (step: number) => ({ type: 'train', step, loss: 3 - step / 100, lr: 1e-3, grad_norm: 1, tokens_per_s: 100, tokens: step * 64, memory_mb: 10 });

test('a killed trainer: the panel says failed as soon as the reconciler does, although events say running', async () => {
  const dir = path.join(tmpDir(), 'run-a');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'events.jsonl'), line({ type: 'run_started', method: 'full', total_steps: 10, config: { name: 'x', train: { lr: 1e-3 } }, device: 'cpu', params: { total: 1, trainable: 1 } }) + line(train(1)) + line(train(2)));
  const states = new FakeStates();
  states.set('run-a', { state: 'running', error: null, stale: false });
  const feed = new RunFeed([{ id: 'run-a', dir }], VIEW_FILTERS.dashboard, states);
  const headers: RunHeader[] = [];
  const batches: RunAppend[] = [];
  feed.attach({ batches: (b) => batches.push(...b), header: (h) => headers.push(h) });
  await waitFor(() => batches.length > 0);
  assert.equal(feed.headers[0].state, 'running');
  assert.equal(feed.headers[0].method, 'full');
  states.set('run-a', { state: 'failed', error: 'process disappeared', stale: false });
  assert.deepEqual([headers.at(-1)?.state, headers.at(-1)?.error, headers.at(-1)?.method], ['failed', 'process disappeared', 'full']);
  const n = headers.length;
  states.set('run-a', { state: 'failed', error: 'process disappeared', stale: false });
  assert.equal(headers.length, n, 'an unchanged header is not posted again');
  // A reopened webview gets everything so far in one batch per run.
  const replay = feed.attach({ batches: () => {}, header: () => {} });
  assert.deepEqual(Array.from(replay[0].train!.step), [1, 2]);
  feed.dispose();
});

test('replay holds every live chunk in order, one copy, however many chunks came', () => {
  const s = new RunSeries();
  for (let i = 1; i <= 30_000; i++) s.add(toAppend('r', [train(i)])!);
  s.add(toAppend('r', [{ type: 'eval', step: 0, tasks: [], learning: null, forgetting: null }, { type: 'run_finished', status: 'failed', error: 'x', diverged: { step: 30_001, value: 'Infinity' } }])!);
  const snap = s.snapshot('r')!;
  assert.equal(snap.train!.step.length, 30_000);
  assert.equal(snap.train!.step[29_999], 30_000);
  assert.equal(snap.train!.tokens[9], 640);
  assert.equal(snap.evals!.length, 1);
  assert.deepEqual(snap.diverged, { step: 30_001, value: 'Infinity' });
  // The snapshot is a copy: later appends do not change what was posted.
  s.add(toAppend('r', [train(30_001)])!);
  assert.equal(snap.train!.step.length, 30_000);
  assert.equal(snap.train!.step.byteOffset, 0);
});
