import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseEvents } from '../../src/core/events';
import { ScoreFold, scoreEvents } from '../../src/core/runScores';
import { ScoreCache } from '../../src/core/scoreCache';
import { repoRoot, tmpDir } from './helpers';

const sample = (): unknown[] => parseEvents(fs.readFileSync(path.join(repoRoot(), 'test', 'fixtures', 'events.sample.jsonl'), 'utf8')).events;

const evalEv = (step: number, code: number, english: number, extra: object[] = [], time = 100 + step) => ({
  v: 1, type: 'eval', time, step,
  tasks: [
    { name: 'code', role: 'learning', type: 'loss', metric: 'loss', value: code, higher_is_better: false },
    { name: 'english', role: 'forgetting', type: 'loss', metric: 'loss', value: english, higher_is_better: false },
    ...extra,
  ],
  learning: { value: code, higher_is_better: false, delta: code - 5 },
  forgetting: { value: english, higher_is_better: false, delta: english - 2 },
});
const train = (step: number, loss: number, tps: number | null, mem: number | null, time = 100 + step) => ({ v: 1, type: 'train', time, step, loss, lr: 1e-3, grad_norm: 1, tokens_per_s: tps, tokens: step * 10, memory_mb: mem });
const spectrum = (step: number, kind: 'attention' | 'mlp', rank90: number, intruders: number | null) => ({ v: 1, type: 'spectrum', time: 200 + step, step, module: `m.${kind}.${rank90}`, layer: 0, kind, shape: [8, 8], singular_values: [1], rank90, intruders });

test('the sample events: last train loss, both tasks base/last, spectra medians and intruders, wall time, peak memory', () => {
  const s = scoreEvents(sample());
  assert.equal(s.method, 'lora');
  assert.equal(s.totalSteps, 100);
  assert.equal(s.finished, 'completed');
  const code = s.tasks.find((t) => t.key === 'learning:code')!;
  assert.equal(code.base, 5.07);
  assert.ok(code.last !== null && code.lastStep === 100);
  assert.equal(s.peakMemoryMb, 312.5, 'a null memory_mb is skipped, the max of the rest kept');
  assert.equal(s.tokensPerS, 6500, 'a null tokens_per_s is not averaged in as 0');
  assert.ok(s.wallSeconds !== null && s.wallSeconds > 0);
  assert.ok(s.rank90Mlp !== null);
});

test('best is after step 0 and follows each direction; deltas are from the base; KL comes from tasks of type kl_to_base', () => {
  const kl = (v: number) => ({ name: 'kl', role: 'forgetting', type: 'kl_to_base', metric: 'kl', value: v, higher_is_better: false });
  const acc = (v: number) => ({ name: 'hellaswag', role: 'forgetting', type: 'lm_eval', metric: 'accuracy', value: v, higher_is_better: true });
  const s = scoreEvents([
    { v: 1, type: 'run_started', time: 100, method: 'full', total_steps: 30, config: {} },
    evalEv(0, 5, 2, [kl(0), acc(0.5)]),
    train(10, 3, 1000, 100), evalEv(10, 3.5, 2.2, [kl(0.2), acc(0.48)]),
    train(20, 2.5, 3000, 300), evalEv(20, 3.0, 2.6, [kl(0.5), acc(0.45)]),
    train(30, 2.4, 2000, 200), evalEv(30, 3.2, 2.4, [kl(0.4), acc(0.46)]),
    { v: 1, type: 'run_finished', time: 140, status: 'completed', error: null },
  ]);
  assert.deepEqual([s.learning!.last, s.learning!.best, s.learning!.lastDelta], [3.2, 3.0, 3.2 - 5]);
  assert.equal(s.forgetting!.best, 2.2, 'least forgetting after the base, not the base itself');
  assert.ok(Math.abs(s.forgetting!.bestDelta! - 0.2) < 1e-12);
  const hs = s.tasks.find((t) => t.name === 'hellaswag')!;
  assert.deepEqual([hs.type, hs.base, hs.last, hs.best, hs.bestStep], ['lm_eval', 0.5, 0.46, 0.48, 10], 'higher is better: the best accuracy');
  assert.equal(s.klToBase, 0.4);
  assert.equal(s.tokensPerS, 2000);
  assert.equal(s.peakMemoryMb, 300);
  assert.equal(s.lastTrainLoss, 2.4);
  assert.equal(s.wallSeconds, 40);
});

test('spectra: medians and intruders of the latest analysed step only', () => {
  const s = scoreEvents([
    spectrum(50, 'attention', 9, 1), spectrum(50, 'mlp', 20, 2),
    spectrum(100, 'attention', 2, 0), spectrum(100, 'attention', 4, 1), spectrum(100, 'attention', 30, null), spectrum(100, 'mlp', 7, 3),
  ]);
  assert.equal(s.spectraStep, 100);
  assert.equal(s.rank90Attention, 4);
  assert.equal(s.rank90Mlp, 7);
  assert.equal(s.intruders, 4);
  assert.equal(scoreEvents([spectrum(10, 'mlp', 3, null)]).intruders, null, 'no intruder analysis: null, not 0');
});

test('a resumed run: wall time sums the segments, not the pause between them', () => {
  const s = scoreEvents([
    { v: 1, type: 'run_started', time: 0, method: 'lora', total_steps: 20, config: {} }, train(1, 3, 10, 1, 10),
    { v: 1, type: 'run_finished', time: 20, status: 'stopped', error: null },
    { v: 1, type: 'run_started', time: 1000, method: 'lora', total_steps: 20, config: {} }, train(2, 2, 10, 1, 1030),
  ]);
  assert.equal(s.wallSeconds, 50);
  assert.equal(s.finished, null, 'running again after the resume');
});

test('folding in chunks gives what folding at once gives', () => {
  const all = sample();
  const f = new ScoreFold();
  for (let i = 0; i < all.length; i += 3) f.add(all.slice(i, i + 3));
  assert.deepEqual(f.result(), scoreEvents(all));
});

test('ScoreCache: an unchanged file is not read again; an appended one is read from where it stopped; a replaced one from the start', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'events.jsonl');
  const line = (e: unknown): string => `${JSON.stringify(e)}\n`;
  const cache = new ScoreCache();
  assert.deepEqual(await cache.get(dir), { scores: null, changed: false }, 'no events yet');
  fs.writeFileSync(file, line(evalEv(0, 5, 2)) + line(train(1, 4, 100, 10)));
  let r = await cache.get(dir);
  assert.ok(r.changed);
  assert.equal(r.scores!.lastStep, 1);
  const read1 = cache.bytesRead;
  r = await cache.get(dir);
  assert.equal(r.changed, false);
  assert.equal(cache.bytesRead, read1, 'a stat, no read');
  // The trainer appends a line and half of the next.
  const more = line(train(2, 3, 300, 30));
  const partial = line(evalEv(2, 4, 2.5));
  fs.appendFileSync(file, more + partial.slice(0, 20));
  r = await cache.get(dir);
  assert.equal(r.scores!.lastStep, 2);
  assert.equal(r.scores!.tokensPerS, 200);
  assert.equal(cache.bytesRead - read1, more.length + 20, 'only the new bytes');
  fs.appendFileSync(file, partial.slice(20));
  r = await cache.get(dir);
  assert.equal(r.scores!.learning!.last, 4, 'the completed line is folded once');
  assert.equal(r.scores!.events, 4);
  // Replaced by a shorter file (a run folder re-created): read again from the start.
  fs.rmSync(file);
  fs.writeFileSync(file, line(train(1, 9, 1, 1)));
  r = await cache.get(dir);
  assert.equal(r.scores!.lastTrainLoss, 9);
  assert.equal(r.scores!.events, 1);
  fs.rmSync(file);
  assert.deepEqual(await cache.get(dir), { scores: null, changed: true });
});

test('ScoreCache: two callers at once share one read', async () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'events.jsonl'), `${JSON.stringify(train(1, 2, 3, 4))}\n`);
  const cache = new ScoreCache();
  const [a, b] = await Promise.all([cache.get(dir), cache.get(dir)]);
  assert.equal(a.scores!.events, 1);
  assert.equal(b.scores!.events, 1);
});
