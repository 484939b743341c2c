/**
 * Replay benchmark of the host's feed (src/panels/runFeed.ts): a run of 1,000,000 events is read
 * and kept by a real RunFeed, then replayed to a "reopened webview" (attach → one batch per run).
 * Reference, measured in the same process: a plain read of the file and JSON.parse of every line
 * (what no reader can beat by much). Goals: read ≥ 0.5× the reference's speed; replay < 100 ms.
 * It also replays many small live chunks (10,000 and 30,000 one-point batches, as a live run
 * delivers them) with the fold the feed used before (mergeAppend over all chunks: quadratic) and
 * with RunSeries (linear), to show why it changed.
 *
 *   node bench/feed/run.mjs      (npm run bench -- feed)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RunFeed } from '../../src/panels/runFeed';
import { VIEW_FILTERS, readyMessages, toAppend } from '../../src/panels/wire';
import { RunSeries } from '../../src/core/runSeries';
import { TRAIN_FIELDS } from '../../src/core/generated/trainFields';
import type { RunAppend, TrainColumns } from '../../src/core/messages';

const N = 1_000_000;
const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

function writeRun(dir: string): { file: string; bytes: number; counts: Record<string, number> } {
  const file = path.join(dir, 'events.jsonl');
  const counts: Record<string, number> = { run_started: 1, train: 0, eval: 0, spectrum: 0 };
  const out: string[] = [JSON.stringify({ v: 1, type: 'run_started', time: 0, config: { name: 'bench', train: { lr: 3e-4 } }, device: 'cpu', method: 'full', params: { total: 1, trainable: 1 }, total_steps: N })];
  let step = 0;
  while (out.length < N) {
    step++;
    out.push(JSON.stringify({ v: 1, type: 'train', time: step, step, loss: 2 + Math.sin(step) * 0.1, lr: 3e-4, grad_norm: 0.5, tokens_per_s: 6500.5, tokens: step * 2048, memory_mb: 742.1 }));
    counts.train++;
    if (step % 1000 === 0) {
      out.push(JSON.stringify({ v: 1, type: 'eval', time: step, step, tasks: [{ name: 'code', role: 'learning', type: 'loss', metric: 'loss', value: 2, higher_is_better: false }, { name: 'english', role: 'forgetting', type: 'loss', metric: 'loss', value: 2.2, higher_is_better: false }], learning: { value: 2, higher_is_better: false, delta: -0.1 }, forgetting: { value: 2.2, higher_is_better: false, delta: 0.1 } }));
      counts.eval++;
    }
    if (step % 20_000 === 0) {
      for (let m = 0; m < 24; m++) out.push(JSON.stringify({ v: 1, type: 'spectrum', time: step, step, module: `model.layers.${m >> 3}.mlp.up_proj`, layer: m >> 3, kind: 'mlp', shape: [512, 128], singular_values: Array.from({ length: 64 }, (_, i) => 1 / (i + 1)), rank90: 12 }));
      counts.spectrum += 24;
    }
  }
  out.length = N;
  fs.writeFileSync(file, out.join('\n') + '\n');
  return { file, bytes: fs.statSync(file).size, counts };
}

function reference(file: string): number {
  const t0 = process.hrtime.bigint();
  const text = fs.readFileSync(file, 'utf8');
  let n = 0;
  for (const line of text.split('\n')) if (line) { JSON.parse(line); n++; }
  if (n !== N) throw new Error(`reference parsed ${n} lines`);
  return ms(t0);
}

async function feedRead(dir: string): Promise<{ readMs: number; replayMs: number; points: number; feed: RunFeed }> {
  const t0 = process.hrtime.bigint();
  const feed = new RunFeed([{ id: 'bench', dir }], VIEW_FILTERS.dashboard);
  await feed.caughtUp();
  const readMs = ms(t0);
  const t1 = process.hrtime.bigint();
  const all = feed.attach({ batches: () => {}, header: () => {} });
  const msgs = readyMessages('dashboard', feed.headers, { runs: feed.refs }, all);
  const replayMs = ms(t1);
  const points = all[0]?.train?.step.length ?? 0;
  if (msgs.length !== 2) throw new Error('replay did not produce init + append');
  return { readMs, replayMs, points, feed };
}

/** The fold the feed used before: every chunk merged into a fresh copy of everything so far. */
function oldMergeAppend(a: RunAppend, b: RunAppend): RunAppend {
  const out: RunAppend = { runId: a.runId };
  const n = (a.train?.step.length ?? 0) + (b.train?.step.length ?? 0);
  const t = {} as TrainColumns;
  for (const f of TRAIN_FIELDS) {
    t[f.key] = new Float64Array(n);
    if (a.train) t[f.key].set(a.train[f.key]);
    if (b.train) t[f.key].set(b.train[f.key], a.train?.step.length ?? 0);
  }
  out.train = t;
  return out;
}

function chunkReplay(chunks: number): { before: number; after: number } {
  const list = Array.from({ length: chunks }, (_, i) => toAppend('r', [{ type: 'train', step: i + 1, loss: 2, lr: 1e-3 }])!);
  let t0 = process.hrtime.bigint();
  const folded = list.reduce(oldMergeAppend);
  const before = ms(t0);
  t0 = process.hrtime.bigint();
  const s = new RunSeries();
  for (const c of list) s.add(c);
  const snap = s.snapshot('r')!;
  const after = ms(t0);
  if (snap.train!.step.length !== folded.train!.step.length) throw new Error('folds disagree');
  return { before, after };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ftl-feed-bench-'));
  try {
    const run = writeRun(dir);
    console.log(`events.jsonl: ${N.toLocaleString()} events (${Object.entries(run.counts).map(([k, v]) => `${v.toLocaleString()} ${k}`).join(', ')}), ${(run.bytes / 2 ** 20).toFixed(0)} MiB`);
    const refs: number[] = [], reads: number[] = [], replays: number[] = [];
    for (let i = 0; i < 3; i++) {
      refs.push(reference(run.file));
      const r = await feedRead(dir);
      reads.push(r.readMs); replays.push(r.replayMs);
      if (r.points !== run.counts.train) throw new Error(`feed kept ${r.points} train points, expected ${run.counts.train}`);
      r.feed.dispose();
    }
    const best = (a: number[]) => Math.min(...a);
    const ratio = best(refs) / best(reads);
    console.log(`reference (readFileSync + JSON.parse per line): ${refs.map((x) => x.toFixed(0)).join(' / ')} ms`);
    console.log(`RunFeed read (EventTail + toAppend + RunSeries): ${reads.map((x) => x.toFixed(0)).join(' / ')} ms`);
    console.log(`speed vs reference (best of 3): ${ratio.toFixed(2)}x (goal >= 0.5x) ${ratio >= 0.5 ? 'MET' : 'NOT MET'}`);
    console.log(`replay to a reopened webview (attach + ready messages, ${run.counts.train.toLocaleString()} points): ${replays.map((x) => x.toFixed(1)).join(' / ')} ms (goal < 100 ms) ${best(replays) < 100 ? 'MET' : 'NOT MET'}`);
    for (const chunks of [10_000, 30_000]) {
      const c = chunkReplay(chunks);
      console.log(`replay of ${chunks.toLocaleString()} one-point live chunks: before (mergeAppend fold) ${c.before.toFixed(0)} ms, now (RunSeries) ${c.after.toFixed(1)} ms`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main().catch((e) => { console.error(e); process.exit(1); });
