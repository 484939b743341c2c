import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunStore, type StoredRun } from '../../src/core/runStore';
import { expandSweep } from '../../src/core/sweep';
import type { ExperimentConfig } from '../../src/core/generated/experiment';
import type { HostToTable, TableRow } from '../../src/core/tableProtocol';
import { isHostToTable } from '../../src/core/tableProtocol';
import { TableFeed, type TableRunSource } from '../../src/table/tableFeed';
import { scopeKey, scopeOf, scopeTitle } from '../../src/table/scope';
import { tmpDir, waitFor } from '../core/helpers';

/** The RunManager's part the feed uses: the store's reconciled runs, re-listed when the test says. */
class StoreSource implements TableRunSource {
  runs: StoredRun[] = [];
  private readonly listeners = new Set<() => void>();
  constructor(readonly store: RunStore) {}
  async refresh(): Promise<void> { this.runs = await this.store.list(); for (const l of this.listeners) l(); }
  onDidChangeRuns(l: () => void) { this.listeners.add(l); return { dispose: () => this.listeners.delete(l) }; }
}

const line = (e: Record<string, unknown>) => `${JSON.stringify({ v: 1, time: 1, ...e })}\n`;
const evalLine = (step: number, code: number) => line({
  type: 'eval', step, tasks: [{ name: 'code', role: 'learning', type: 'loss', metric: 'loss', value: code, higher_is_better: false }, { name: 'en', role: 'forgetting', type: 'loss', metric: 'loss', value: 2 + step / 100, higher_is_better: false }],
  learning: { value: code, higher_is_better: false, delta: code - 4 }, forgetting: { value: 2 + step / 100, higher_is_better: false, delta: step / 100 },
});
const trainLine = (step: number) => line({ type: 'train', step, loss: 3 - step / 100, lr: 1e-3, grad_norm: 1, tokens_per_s: 1000, tokens: step * 64, memory_mb: 50 + step });

const cfg = { name: 'exp', model: { base: 'builtin:tiny' }, data: { train: 'builtin:brown' }, method: 'lora', sweep: { 'lora.rank': [4, 16] } } as unknown as ExperimentConfig;

test('the table feed: a sweep\'s rows with scores; live updates of only what changed; runs that go are removed', async () => {
  const store = new RunStore(path.join(tmpDir(), 'runs'), { pidAlive: (pid) => pid === process.pid });
  const [a, b] = await Promise.all(expandSweep(cfg).map((p, i) => store.create(p, { experimentName: 'exp', sweepId: 'sw', sweepIndex: i, sweepSize: 2 })));
  const other = await store.create(expandSweep({ ...cfg, name: 'other', sweep: undefined } as ExperimentConfig)[0], { experimentName: 'other' });
  fs.writeFileSync(path.join(a.dir, 'events.jsonl'), evalLine(0, 4) + trainLine(1) + trainLine(2) + evalLine(2, 3.5) + line({ type: 'run_finished', status: 'completed', error: null }));
  await store.writeStatus(a.id, { ...a.status, state: 'completed', step: 2 });
  fs.writeFileSync(path.join(b.dir, 'events.jsonl'), evalLine(0, 4) + trainLine(1));
  await store.writeStatus(b.id, { ...b.status, state: 'running', pid: process.pid, heartbeat: Date.now() / 1000, step: 1 });
  const source = new StoreSource(store);
  await source.refresh();

  const feed = new TableFeed(source, { sweepId: 'sw' }, undefined, { pollMs: 50, flushMs: 20 });
  await feed.ready();
  const got: HostToTable[] = [];
  feed.attach((m) => { assert.ok(isHostToTable(m), `valid message: ${JSON.stringify(m).slice(0, 200)}`); got.push(m); }, 'Runs', true);
  const init = got[0];
  assert.equal(init.type, 'init');
  if (init.type !== 'init') return;
  assert.deepEqual(init.rows.map((r) => r.id).sort(), [a.id, b.id].sort(), 'only the sweep\'s runs, not the other experiment\'s');
  assert.equal(init.loading, false);
  const rowA = init.rows.find((r) => r.id === a.id)!;
  assert.equal(rowA.cells.learning, 3.5);
  assert.equal(rowA.cells['cfg:lora.rank'], 4);
  assert.equal(rowA.sweepId, 'sw');
  assert.ok(init.columns.some((c) => c.id === 'cfg:lora.rank') && init.columns.some((c) => c.id === 'memory'));
  assert.ok(!init.rows.some((r) => r.id === other.id));

  // The running run trains on: the poll finds the new lines (no status.json change needed).
  fs.appendFileSync(path.join(b.dir, 'events.jsonl'), trainLine(2) + trainLine(3) + evalLine(3, 3.2));
  const upserted = (): TableRow[] => got.flatMap((m) => (m.type === 'update' ? m.upsert : []));
  await waitFor(() => upserted().some((r) => r.id === b.id && r.cells.learning === 3.2), 5000);
  assert.ok(!upserted().some((r) => r.id === a.id), 'the finished run\'s row is not posted again');
  assert.equal(upserted().filter((r) => r.id === b.id).at(-1)!.cells.step, 3);
  assert.ok(!got.some((m) => m.type === 'update' && m.columns), 'new score values of the same tasks: the columns are not sent again');

  // It finishes: the RunManager reports the state; the row says completed.
  fs.appendFileSync(path.join(b.dir, 'events.jsonl'), line({ type: 'run_finished', status: 'completed', error: null }));
  await store.writeStatus(b.id, { ...b.status, state: 'completed', step: 3 });
  await source.refresh();
  await waitFor(() => upserted().some((r) => r.id === b.id && r.state === 'completed'));

  // Deleted: the row goes.
  await store.delete(a.id);
  await source.refresh();
  await waitFor(() => got.some((m) => m.type === 'update' && m.remove.includes(a.id)));

  // A reopened webview gets everything again in one init.
  const again: HostToTable[] = [];
  feed.attach((m) => again.push(m), 'Runs', true);
  assert.equal(again[0].type === 'init' && again[0].rows.map((r) => r.id).join(), b.id);
  feed.dispose();
});

test('the table feed reads 200 runs once each, then only stats them', async () => {
  const store = new RunStore(path.join(tmpDir(), 'runs'), { pidAlive: () => false });
  const base = expandSweep({ ...cfg, sweep: undefined } as ExperimentConfig)[0];
  const created: StoredRun[] = [];
  for (let i = 0; i < 200; i++) created.push(await store.create(base, { experimentName: `e${i % 10}` }));
  for (const r of created) {
    fs.writeFileSync(path.join(r.dir, 'events.jsonl'), evalLine(0, 4) + trainLine(1) + evalLine(1, 3 + Math.random()));
    await store.writeStatus(r.id, { ...r.status, state: 'completed', step: 1 });
  }
  const source = new StoreSource(store);
  await source.refresh();
  const feed = new TableFeed(source, {}, undefined, { pollMs: 60_000, flushMs: 10 });
  await feed.ready();
  const got: HostToTable[] = [];
  feed.attach((m) => got.push(m), 'Runs', true);
  assert.equal(got[0].type === 'init' && got[0].rows.filter((r) => typeof r.cells.learning === 'number').length, 200);
  await source.refresh();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(got.filter((m) => m.type === 'update' && m.upsert.length).length, 0, 'nothing changed: nothing posted');
  feed.dispose();
});

test('a Runs view node gives the table its scope and title; the palette gives every run', () => {
  const exp = { kind: 'experiment', name: 'lora-vs-full' };
  const sweep = { kind: 'sweep', sweepId: 'lora-vs-full-abc', parent: exp };
  assert.deepEqual(scopeOf(exp), { experiment: 'lora-vs-full' });
  assert.deepEqual(scopeOf(sweep), { experiment: 'lora-vs-full', sweepId: 'lora-vs-full-abc' });
  assert.deepEqual(scopeOf(undefined), {});
  assert.deepEqual(scopeOf({ kind: 'run', run: {} }), {}, 'a run node (or anything else): all runs');
  assert.equal(scopeTitle(scopeOf(sweep)), 'Runs: lora-vs-full sweep');
  assert.equal(scopeTitle({}), 'Runs');
  assert.notEqual(scopeKey(scopeOf(exp)), scopeKey(scopeOf(sweep)), 'one panel per scope');
});
