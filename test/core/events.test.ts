import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseEvents, EventTail, readEventsFrom, lastEvents } from '../../src/core/events';
import { validateEvent, errorsText } from '../../src/core/schemas';
import { RUN_EVENT_TYPES, type RunEvent } from '../../src/core/generated/events';
import { repoRoot, tmpDir, waitFor } from './helpers';

const line = (o: object) => JSON.stringify(o) + '\n';
const train = (step: number) => ({ v: 1, type: 'train', time: 1 + step, step, loss: 2 - step / 1000, lr: 1e-4 });

test('parseEvents keeps a partial last line and counts malformed lines', () => {
  const text = line(train(1)) + 'not json\n' + '\n' + line({ v: 1, no: 'type' }) + line(train(2)) + '{"v":1,"type":"tra';
  const r = parseEvents(text);
  assert.deepEqual(r.events.map((e) => (e as { step: number }).step), [1, 2]);
  assert.equal(r.malformed, 2);
  assert.equal(r.partial, '{"v":1,"type":"tra');
  const next = parseEvents(r.partial + 'in","time":3,"step":3,"loss":1,"lr":1}\n');
  assert.equal(next.events.length, 1);
  assert.equal(parseEvents('a\r\n' + line(train(4)).replace('\n', '\r\n')).events.length, 1);
});

test('the shared fixture covers every event type and validates against events.schema.json', () => {
  const text = fs.readFileSync(path.join(repoRoot(), 'test', 'fixtures', 'events.sample.jsonl'), 'utf8');
  const { events, malformed, partial } = parseEvents(text);
  assert.equal(malformed, 0);
  assert.equal(partial, '');
  const v = validateEvent();
  for (const e of events) assert.ok(v(e), `${e.type}: ${errorsText(v.errors)}`);
  assert.deepEqual([...new Set(events.map((e) => e.type))].sort(), [...RUN_EVENT_TYPES].sort());
  assert.equal(v({ v: 1, type: 'train', time: 1, step: 1, loss: 1 }), false, 'missing lr fails');
  assert.equal(v({ v: 2, type: 'log', time: 1, message: 'x' }), false, 'wrong protocol version fails');
});

// About 1.5 s on an idle core; the bound is loose because CI machines are shared (it catches O(n²)).
test('1M lines parse in a few seconds', (t) => {
  const one = JSON.stringify({ v: 1, type: 'train', time: 1732300000.123, step: 123456, loss: 2.3456789, lr: 0.0002, grad_norm: 1.234, tokens_per_s: 6543.2, tokens: 123456789, memory_mb: 312.5 }) + '\n';
  const text = one.repeat(1_000_000);
  const t0 = Date.now();
  const r = parseEvents(text);
  const ms = Date.now() - t0;
  assert.equal(r.events.length, 1_000_000);
  t.diagnostic(`parsed 1M lines in ${ms} ms`);
  assert.ok(ms < 20000, `took ${ms} ms`);
});

test('readEventsFrom works in chunks and stops before a partial line', async () => {
  const dir = tmpDir();
  const f = path.join(dir, 'events.jsonl');
  fs.writeFileSync(f, line(train(1)) + line({ v: 1, type: 'log', time: 1, message: 'héllo ✓' }) + '{"partial');
  const r = await readEventsFrom(f, 0);
  assert.equal(r.events.length, 2);
  assert.equal(r.offset, Buffer.byteLength(line(train(1)) + line({ v: 1, type: 'log', time: 1, message: 'héllo ✓' })));
  assert.equal((await lastEvents(f)).length, 2);
});

test('EventTail: file created later, appends, partial lines, truncation', async () => {
  const dir = tmpDir();
  const f = path.join(dir, 'run', 'events.jsonl');
  const tail = new EventTail(f, { pollMs: 50 });
  const got: RunEvent[] = [];
  let resets = 0;
  tail.onEvents((es) => got.push(...es));
  tail.onReset(() => { resets++; got.length = 0; });
  try {
    await new Promise((r) => setTimeout(r, 60));
    fs.mkdirSync(path.dirname(f));
    fs.writeFileSync(f, line(train(1)));
    await waitFor(() => got.length === 1);
    fs.appendFileSync(f, line(train(2)) + '{"v":1,"type":"train","time":3,');
    await waitFor(() => got.length === 2);
    fs.appendFileSync(f, '"step":3,"loss":1,"lr":1}\nbad\n');
    await waitFor(() => got.length === 3);
    assert.deepEqual(got.map((e) => (e as { step: number }).step), [1, 2, 3]);
    assert.equal(tail.malformed, 1);
    assert.equal((await tail.readAll()).length, 3);
    fs.writeFileSync(f, line(train(9)));
    await waitFor(() => resets === 1 && got.length === 1);
    assert.equal((got[0] as { step: number }).step, 9);
  } finally {
    tail.dispose();
  }
});
