import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../../src/cli/commands';
import { resultsTable, formatTable } from '../../src/cli/table';
import { Progress } from '../../src/cli/follow';
import { formatDuration } from '../../src/core/duration';
import { summarizeRun } from '../../src/core/runSummary';
import { parseEvents } from '../../src/core/events';
import { repoRoot, tmpDir } from './helpers';

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try { return { code: await fn(), out: out.join('\n'), err: err.join('\n') }; } finally { console.log = log; console.error = error; }
}

test('run: an invalid experiment prints file:line:col errors, exits 2, starts nothing', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'bad.finetune.yaml');
  fs.writeFileSync(file, 'name: bad\nmodel: {base: builtin:tiny}\ndata: {train: builtin:brown}\nmethod: lora\nlora: {rank: 0}\n');
  const runs = path.join(dir, 'runs');
  const r = await capture(() => main(['run', file, '--runs-dir', runs]));
  assert.equal(r.code, 2);
  assert.match(r.err, /bad\.finetune\.yaml:5:14: error: lora\.rank must be an integer ≥ 1/);
  assert.equal(fs.existsSync(runs), false);
});

test('run --dry-run lists the planned runs and writes nothing', async () => {
  const dir = tmpDir();
  const runs = path.join(dir, 'runs');
  const r = await capture(() => main(['run', path.join(repoRoot(), 'examples', 'demo.finetune.yaml'), '--dry-run', '--runs-dir', runs]));
  assert.equal(r.code, 0);
  assert.match(r.out, /full/);
  assert.match(r.out, /lora-r16/);
  assert.equal(fs.existsSync(runs), false);
  assert.equal((await capture(() => main(['list', '--runs-dir', runs]))).code, 0);
});

test('results table and progress line from the events fixture', () => {
  const { events } = parseEvents(fs.readFileSync(path.join(repoRoot(), 'test', 'fixtures', 'events.sample.jsonl'), 'utf8'));
  const s = summarizeRun(events);
  assert.equal(s.finalTrainLoss, 4.71);
  assert.equal(s.finished?.status, 'completed');
  const code = s.tasks.find((t) => t.name === 'code')!;
  assert.deepEqual([code.base, code.final, code.finalStep], [5.07, 2.4, 100]);
  const table = resultsTable([{ label: 'lora-r16', summary: s }]);
  assert.match(table, /lora-r16\s+completed\s+2\s+4\.710\s+2\.400 \(-2\.670\)\s+2\.110 \(\+0\.000\)/);
  assert.equal(formatTable(['a', '>b'], [['x', '1'], ['yy', '22']]), 'a    b\n--  --\nx    1\nyy  22');
  const p = new Progress();
  for (const e of events) p.add(e);
  assert.match(p.line(), /^step 2\/100  loss 4\.710  eta 1m38s$/);
  assert.equal(formatDuration(3725), '1h02m');
});
