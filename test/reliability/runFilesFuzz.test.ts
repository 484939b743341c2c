// Fuzzing run-folder files (issue 17): 10,000 seeded mutations of events.jsonl (torn lines, binary
// garbage, lines of many megabytes, wrong types, unknown event types, a future protocol version) go
// through every reader the views use — readEventsFrom, lastEvents, the dashboard's fold (toAppend),
// the runs table's (ScoreFold), run headers — and 10,000 mutated status.json / meta.json /
// config.yaml through RunStore. Nothing throws, and every line is accounted for: each one reaches
// a view or is counted as skipped (RunHeader.skipped, shown on the dashboard).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EVENTS_PROTOCOL, lastEvents, readEventsFrom } from '../../src/core/events';
import { ScoreFold } from '../../src/core/runScores';
import { RunStore } from '../../src/core/runStore';
import { runHeaderFrom, toAppend, type FoldStats } from '../../src/panels/wire';
import { RunFeed } from '../../src/panels/runFeed';
import { repoRoot, tmpDir } from '../core/helpers';
import { int, pick, randomValue, rng, type Rand } from './mutate';

const SEED = 17;
const CASES = Number(process.env.FINETUNE_LAB_FUZZ_CASES ?? 10_000);
const SAMPLE = fs.readFileSync(path.join(repoRoot(), 'test', 'fixtures', 'events.sample.jsonl'), 'utf8').trim().split('\n');
const NOT_DRAWN = new Set(['run_started', 'pretrain', 'checkpoint', 'log', 'run_finished']);

/** One damaged line (bytes): what a crash, a disk error or another program could leave. */
function damage(r: Rand, line: string): Buffer {
  const e = JSON.parse(line) as Record<string, unknown>;
  switch (int(r, 0, 11)) {
    case 0: return Buffer.from(line.slice(0, int(r, 0, line.length - 1))); // torn (a newline follows it: a complete, broken line)
    case 1: return Buffer.from(Array.from({ length: int(r, 1, 200) }, () => int(r, 0, 255)).filter((b) => b !== 10)); // binary garbage
    case 2: return Buffer.from(JSON.stringify({ ...e, v: EVENTS_PROTOCOL + int(r, 1, 5) })); // a newer trainer
    case 3: return Buffer.from(JSON.stringify({ ...e, type: pick(r, ['train_v2', 'metrics', '', 'TRAIN', 'constructor', '__proto__']) })); // unknown type
    case 4: return Buffer.from(JSON.stringify({ ...e, [pick(r, Object.keys(e))]: randomValue(r) })); // a field of the wrong type
    case 5: return Buffer.from(JSON.stringify({ ...e, type: randomValue(r) })); // type not a string
    case 6: return Buffer.from(JSON.stringify(pick(r, [[1, 2], 3, 'train', null, true, []]))); // JSON, not an object
    case 7: return Buffer.from(`${'['.repeat(int(r, 1000, 20_000))}${']'.repeat(int(r, 0, 20_000))}`); // nesting
    case 8: return Buffer.from(`${line.slice(0, -1)},"pad":"${'x'.repeat(int(r, 10_000, 2_000_000))}"}`); // long but valid
    case 9: return Buffer.from(JSON.stringify({ ...e, step: pick(r, [-1, 1e308, 'NaN', null, 1.5]), loss: pick(r, [null, 'x', -1e308, {}]) }));
    case 10: return Buffer.from(`${line}\r`); // CRLF
    default: return Buffer.from(line.replace(/"/g, pick(r, ["'", '', '\\"'])));
  }
}

/** events.jsonl of case `i`: the sample's lines, some damaged, shuffled in, sometimes a huge line and a torn tail. */
function mutatedEvents(i: number): Buffer {
  const r = rng(SEED, 1_000_000 + i);
  const parts: Buffer[] = [];
  for (let k = int(r, 1, 40); k > 0; k--) {
    const line = pick(r, SAMPLE);
    parts.push(r() < 0.35 ? damage(r, line) : Buffer.from(line), Buffer.from(r() < 0.03 ? '\n\n' : '\n'));
  }
  if (i % 500 === 7) parts.push(Buffer.alloc(int(r, 8, 24) * 1024 * 1024, 0x61), Buffer.from('\n')); // a line of many MB (> the 8 MB chunk)
  if (r() < 0.3) parts.push(Buffer.from(pick(r, SAMPLE).slice(0, int(r, 1, 50)))); // a torn last line, no newline: the trainer mid-write
  return Buffer.concat(parts);
}

/** The complete non-empty lines of a file (what a reader must account for), ignoring a last line without newline. */
function completeLines(buf: Buffer): number {
  let n = 0, start = 0;
  for (let j = buf.indexOf(10); j >= 0; j = buf.indexOf(10, start)) {
    const line = buf.subarray(start, j);
    if (line.length && !(line.length === 1 && line[0] === 13) && line.toString('utf8').trim()) n++;
    start = j + 1;
  }
  return n;
}

test(`${CASES} mutated events.jsonl files: every reader and view fold survives, every line is shown or counted as skipped`, { timeout: 900_000 }, async (t) => {
  const dir = tmpDir('ftl-fuzz-events-');
  const file = path.join(dir, 'events.jsonl');
  const totals = { lines: 0, delivered: 0, malformed: 0, newer: 0, foldSkipped: 0, trainPoints: 0, evalPoints: 0, spectra: 0, feedChecks: 0, hugeLines: 0 };
  const t0 = Date.now();
  for (let i = 0; i < CASES; i++) {
    const bytes = mutatedEvents(i);
    fs.writeFileSync(file, bytes);
    const lines = completeLines(bytes);
    let read;
    try { read = await readEventsFrom(file, 0); } catch (e) { assert.fail(`case ${i}: readEventsFrom threw ${(e as Error).stack}`); }
    assert.equal(read.events.length + read.malformed + read.newer, lines, `case ${i}: ${lines} complete lines, but ${read.events.length} events + ${read.malformed} malformed + ${read.newer} newer`);
    for (const e of read.events) assert.ok(typeof e === 'object' && e !== null && typeof e.type === 'string', `case ${i}: a reader returned a non-event`);
    const stats: FoldStats = { skipped: 0 };
    let a;
    try {
      a = toAppend('run', read.events, stats);
      new ScoreFold().add(read.events);
      runHeaderFrom('run', dir, read.events);
      await lastEvents(file);
    } catch (e) { assert.fail(`case ${i}: a view's fold threw ${(e as Error).stack}`); }
    const drawn = (a?.train?.step.length ?? 0) + (a?.evals?.length ?? 0) + (a?.spectra?.length ?? 0);
    const notDrawn = read.events.filter((e) => NOT_DRAWN.has(e.type as string)).length;
    assert.equal(drawn + stats.skipped + notDrawn, read.events.length, `case ${i}: events neither drawn nor counted as skipped`);
    totals.lines += lines; totals.delivered += read.events.length; totals.malformed += read.malformed; totals.newer += read.newer;
    totals.foldSkipped += stats.skipped; totals.trainPoints += a?.train?.step.length ?? 0; totals.evalPoints += a?.evals?.length ?? 0; totals.spectra += a?.spectra?.length ?? 0;
    if (i % 500 === 7) totals.hugeLines++;
    // Every 50th case through the dashboard's own feed (EventTail + fold): its header carries the count.
    if (i % 50 === 0) {
      const feed = new RunFeed([{ id: 'run', dir }], { train: true, evals: true, spectra: true });
      try {
        await feed.caughtUp();
        assert.equal(feed.headers[0].skipped, read.malformed + read.newer + stats.skipped, `case ${i}: the dashboard's header counts ${feed.headers[0].skipped} skipped lines`);
        assert.equal(feed.headers[0].skippedNewer, read.newer);
      } finally { feed.dispose(); }
      totals.feedChecks++;
    }
  }
  const line = `events fuzz (seed ${SEED}): ${CASES} files, ${totals.lines} complete lines in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${totals.delivered} events read `
    + `(${totals.trainPoints} train points, ${totals.evalPoints} evals, ${totals.spectra} spectra drawn; ${totals.foldSkipped} events skipped by the views), `
    + `${totals.malformed} malformed and ${totals.newer} newer-protocol lines skipped; ${totals.hugeLines} lines of 8-24 MB; ${totals.feedChecks} dashboard feeds checked; 0 exceptions, 0 lines unaccounted for`;
  t.diagnostic(line);
  console.log(line);
});

test(`${CASES} mutated status.json, meta.json and config.yaml files: RunStore lists every run folder and says what is wrong`, { timeout: 900_000 }, async (t) => {
  const runsDir = path.join(tmpDir('ftl-fuzz-status-'), 'runs');
  const id = 'fuzz-20240101-000000-lora-r4';
  const runDir = path.join(runsDir, id);
  fs.mkdirSync(runDir, { recursive: true });
  const good = {
    status: { v: 1, state: 'running', pid: 999_999_99, heartbeat: 1, started: 1, finished: null, step: 3, total_steps: 10, loss: 1.5, error: null, phase: 'training' },
    meta: { v: 1, run_id: id, experiment_name: 'fuzz', created: 1 },
  };
  const counts = { withError: 0, failedReconciled: 0, clean: 0 };
  const t0 = Date.now();
  const store = new RunStore(runsDir, { now: () => 1000 });
  for (let i = 0; i < CASES; i++) {
    const r = rng(SEED, 2_000_000 + i);
    const which = pick(r, ['status', 'meta', 'config', 'all'] as const);
    const status = { ...good.status } as Record<string, unknown>;
    const meta = { ...good.meta } as Record<string, unknown>;
    if (which === 'status' || which === 'all') status[pick(r, Object.keys(status))] = randomValue(r);
    if (which === 'meta' || which === 'all') meta[pick(r, Object.keys(meta))] = randomValue(r);
    const text = (o: object): Buffer => (r() < 0.2 ? damage(r, JSON.stringify(o)) : Buffer.from(JSON.stringify(o)));
    fs.writeFileSync(path.join(runDir, 'status.json'), text(status));
    fs.writeFileSync(path.join(runDir, 'meta.json'), text(meta));
    fs.writeFileSync(path.join(runDir, 'config.yaml'), which === 'config' || which === 'all' ? `name: [${String(randomValue(r)).slice(0, 5000)}\n${'  x'.repeat(int(r, 0, 50))}` : 'name: fuzz\nmodel: {base: builtin:tiny}\ndata: {train: builtin:brown}\nmethod: lora\n');
    let runs;
    try { runs = await store.list(); } catch (e) { assert.fail(`case ${i}: RunStore.list threw ${(e as Error).stack}`); }
    assert.equal(runs.length, 1, `case ${i}: the run folder was not listed`);
    const run = runs[0];
    assert.ok(['queued', 'running', 'completed', 'failed', 'stopped'].includes(run.status.state), `case ${i}: state ${String(run.status.state)}`);
    if (run.error) counts.withError++; else counts.clean++;
    if (run.status.reconciled) counts.failedReconciled++;
  }
  const line = `status fuzz (seed ${SEED}): ${CASES} run folders in ${((Date.now() - t0) / 1000).toFixed(1)} s: every one listed; ${counts.withError} with the broken file named in the run's error, `
    + `${counts.clean} read as valid (${counts.failedReconciled} reconciled: pid gone → failed); 0 exceptions`;
  t.diagnostic(line);
  console.log(line);
});

test('a line longer than MAX_LINE (64 MB) is skipped without being held, and reading goes on after it', async () => {
  const file = path.join(tmpDir('ftl-long-line-'), 'events.jsonl');
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, `${SAMPLE[0]}\n`);
  const block = Buffer.alloc(8 * 1024 * 1024, 0x7b); // '{' x 8 MB, nine times: one 72 MB line
  for (let k = 0; k < 9; k++) fs.writeSync(fd, block);
  fs.writeSync(fd, `\n${SAMPLE[3]}\n${SAMPLE[4].slice(0, 20)}`);
  fs.closeSync(fd);
  const r = await readEventsFrom(file, 0);
  assert.deepEqual(r.events.map((e) => e.type), ['run_started', 'train']);
  assert.equal(r.malformed, 1);
  assert.equal(r.offset, fs.statSync(file).size - 20, 'the torn last line is left for the next read');
});
