import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteTokenizer } from '../../src/core/byteTokenizer';
import { argmax, candidates, mulberry32, sampleNext } from '../../src/core/sampler';
import { generate, GenerationCancelled, promptIds, startTokenId, wrapPrompt, type LogitsFn } from '../../src/core/generate';
import { distinctN, diversity, jaccard, words } from '../../src/core/diversity';

test('byte tokenizer: UTF-8 round trip, special ids dropped, invalid bytes replaced as Python does', () => {
  const tok = new ByteTokenizer();
  for (const s of ['', 'def f(x):\n    return x', 'naïve café — 日本語 🙂']) assert.equal(tok.decode(tok.encode(s)), s);
  assert.deepEqual(tok.encode('é'), [0xc3, 0xa9]);
  assert.equal(tok.decode([256, 104, 105, 257, 258]), 'hi');
  // b'a\xff\xe2\x82b\xf0\x9f\x98'.decode('utf-8', 'replace') == 'a\ufffd\ufffdb\ufffd' in CPython.
  assert.equal(tok.decode([0x61, 0xff, 0xe2, 0x82, 0x62, 0xf0, 0x9f, 0x98]), 'a\ufffd\ufffdb\ufffd');
  assert.deepEqual([tok.bosId, tok.eosId, tok.padId], [256, 257, 258]);
});

test('sampler: greedy at temperature 0, deterministic per seed', () => {
  const logits = Float32Array.from([0.1, 2.0, 2.0, -1]);
  assert.equal(argmax(logits), 1, 'the first of equal maxima, as torch.argmax');
  assert.equal(sampleNext(logits, { temperature: 0, topK: 0, topP: 1 }, () => { throw new Error('greedy draws nothing'); }), 1);
  const s = { temperature: 1, topK: 0, topP: 1 };
  const draw = (seed: number) => { const r = mulberry32(seed); return Array.from({ length: 50 }, () => sampleNext(logits, s, r)); };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
  const r = mulberry32(1);
  for (let i = 0; i < 1000; i++) { const u = r(); assert.ok(u >= 0 && u < 1); }
});

test('sampler: top-k and top-p keep the right ids on hand-made logits', () => {
  // probs at T=1: ln(0.5), ln(0.3), ln(0.15), ln(0.05)
  const logits = Float32Array.from([Math.log(0.15), Math.log(0.5), Math.log(0.05), Math.log(0.3)]);
  const all = candidates(logits, { temperature: 1, topK: 0, topP: 1 });
  assert.deepEqual(all.ids, [1, 3, 0, 2]);
  all.probs.forEach((p, i) => assert.ok(Math.abs(p - [0.5, 0.3, 0.15, 0.05][i]) < 1e-6));
  assert.deepEqual(candidates(logits, { temperature: 1, topK: 2, topP: 1 }).ids, [1, 3]);
  const k2 = candidates(logits, { temperature: 1, topK: 2, topP: 1 }).probs;
  assert.ok(Math.abs(k2[0] - 0.625) < 1e-6 && Math.abs(k2[1] - 0.375) < 1e-6, 'renormalised over the kept ids');
  assert.deepEqual(candidates(logits, { temperature: 1, topK: 0, topP: 0.8 }).ids, [1, 3], '0.5 + 0.3 reaches 0.8');
  assert.deepEqual(candidates(logits, { temperature: 1, topK: 0, topP: 0.81 }).ids, [1, 3, 0]);
  assert.deepEqual(candidates(logits, { temperature: 1, topK: 0, topP: 0.01 }).ids, [1], 'always at least one id');
  // Higher temperature flattens; -inf is never drawn.
  assert.ok(candidates(logits, { temperature: 10, topK: 0, topP: 1 }).probs[0] < 0.3);
  const masked = Float32Array.from([0, -Infinity, 0]);
  const r = mulberry32(3);
  for (let i = 0; i < 200; i++) assert.notEqual(sampleNext(masked, { temperature: 1, topK: 0, topP: 1 }, r), 1);
  // With top-p 0.8 a draw never leaves {1, 3}.
  const r2 = mulberry32(5);
  for (let i = 0; i < 300; i++) assert.ok([1, 3].includes(sampleNext(logits, { temperature: 1, topK: 0, topP: 0.8 }, r2)));
});

/** A fake model over a 6-token vocab: after token t it prefers (t + 1) % 5, and says eos (5) after `eosAfter` tokens. */
function fakeModel(vocab = 6, eosAfter = Infinity): { fn: LogitsFn; calls: [number, number][] } {
  const calls: [number, number][] = [];
  const fn: LogitsFn = async (ids, [b, s]) => {
    calls.push([b, s]);
    const out = new Float32Array(b * s * vocab);
    for (let r = 0; r < b; r++) for (let t = 0; t < s; t++) {
      const last = Number(ids[r * s + t]);
      const row = out.subarray((r * s + t) * vocab, (r * s + t + 1) * vocab);
      row.fill(-5);
      row[(last + 1) % 5] = 5;
      if (s >= eosAfter) row[5] = 10;
    }
    return out;
  };
  return { fn, calls };
}

test('generation: greedy continues the pattern, stops at max tokens, keeps the last max_positions tokens', async () => {
  const { fn, calls } = fakeModel();
  const base = { prompt: [0, 1], samples: 2, maxNewTokens: 6, maxPositions: 4, vocabSize: 6, eosId: 5, seed: 0, sampler: { temperature: 0, topK: 0, topP: 1 } };
  const out = await generate(fn, base);
  assert.deepEqual(out.map((s) => s.tokens), [[2, 3, 4, 0, 1, 2], [2, 3, 4, 0, 1, 2]]);
  assert.ok(out.every((s) => s.stop === 'length'));
  assert.deepEqual(calls.map(([, s]) => s), [2, 3, 4, 4, 4, 4], 'the window never exceeds max_positions');
  assert.ok(calls.every(([b]) => b === 2), 'samples go through as one batch');
});

test('generation: banned ids (bos, pad) are never sampled, greedy or not; the next best wins', async () => {
  const { fn } = fakeModel(); // prefers (last + 1) % 5, i.e. 2 after the prompt [0, 1]
  const opts = { prompt: [0, 1], samples: 3, maxNewTokens: 5, maxPositions: 8, vocabSize: 6, eosId: 5, seed: 0, banned: [2] };
  for (const sampler of [{ temperature: 0, topK: 0, topP: 1 }, { temperature: 2, topK: 0, topP: 1 }]) {
    const out = await generate(fn, { ...opts, sampler });
    assert.ok(out.every((s) => !s.tokens.includes(2)), `id 2 was sampled: ${JSON.stringify(out.map((s) => s.tokens))}`);
  }
});

test('generation: eos ends a sample (without the eos), each reported once as it ends; cancel stops', async () => {
  const { fn } = fakeModel(6, 4);
  const seen: number[] = [];
  const out = await generate(fn, { prompt: [0], samples: 3, maxNewTokens: 50, maxPositions: 64, vocabSize: 6, eosId: 5, seed: 1, sampler: { temperature: 0, topK: 0, topP: 1 }, onSample: (s) => seen.push(s.index) });
  assert.deepEqual(out.map((s) => [s.tokens, s.stop]), [[[1, 2, 3], 'eos'], [[1, 2, 3], 'eos'], [[1, 2, 3], 'eos']]);
  assert.deepEqual(seen.sort(), [0, 1, 2]);
  const ac = new AbortController();
  let n = 0;
  const slow: LogitsFn = async (ids, dims) => { if (++n === 3) ac.abort(); return fakeModel().fn(ids, dims); };
  await assert.rejects(generate(slow, { prompt: [0], samples: 2, maxNewTokens: 50, maxPositions: 64, vocabSize: 6, eosId: 5, seed: 0, sampler: { temperature: 1, topK: 0, topP: 1 }, signal: ac.signal }), GenerationCancelled);
  await assert.rejects(generate(fn, { prompt: [], samples: 1, maxNewTokens: 2, maxPositions: 4, vocabSize: 6, eosId: 5, seed: 0, sampler: { temperature: 0, topK: 0, topP: 1 } }), /empty prompt/);
});

test('generation: sampled outputs depend only on the seed, also batched vs one at a time', async () => {
  // A flat model: every id but eos equally likely, so the tokens are the dice.
  const flat: LogitsFn = async (_ids, [b, s]) => { const o = new Float32Array(b * s * 6); for (let i = 5; i < o.length; i += 6) o[i] = -Infinity; return o; };
  const opts = { prompt: [0], maxNewTokens: 12, maxPositions: 8, vocabSize: 6, eosId: 5, sampler: { temperature: 1, topK: 0, topP: 1 } };
  const a = await generate(flat, { ...opts, samples: 4, seed: 10 });
  const b = await generate(flat, { ...opts, samples: 4, seed: 10 });
  assert.deepEqual(a, b);
  const third = await generate(flat, { ...opts, samples: 1, seed: 12 });
  assert.deepEqual(third[0].tokens, a[2].tokens, 'sample i uses seed + i, batched or not');
  assert.equal(new Set(a.map((s) => s.tokens.join())).size, 4);
});

test('prompt wrapping follows prompt_format', () => {
  assert.equal(wrapPrompt('2+2?', undefined), '2+2?');
  assert.equal(wrapPrompt('2+2?', { format: 'text', template: 'Q: {prompt}' }), '2+2?');
  assert.equal(wrapPrompt('2+2?', { format: 'instruction', template: 'Question: {prompt}\nAnswer:' }), 'Question: 2+2?\nAnswer:');
  assert.equal(wrapPrompt('x', { format: 'instruction', template: 'no slot' }), 'x');
  assert.deepEqual(promptIds([104, 105], 256), [256, 104, 105]);
  assert.deepEqual(promptIds([104], null), [104]);
  // as in training: instruction examples start with bos, text documents follow eos
  assert.equal(startTokenId({ format: 'instruction', template: 'Q: {prompt}\nA:' }, 256, 257), 256);
  assert.equal(startTokenId({ format: 'text' }, 256, 257), 257);
  assert.equal(startTokenId(undefined, 256, 257), 257);
});

test('diversity metrics on known inputs', () => {
  assert.deepEqual(words('def f(x): return x+1'), ['def', 'f', '(', 'x', ')', ':', 'return', 'x', '+', '1']);
  assert.equal(distinctN([['a', 'b', 'a'], ['a']], 1), 2 / 4);
  assert.equal(distinctN([['a', 'b', 'a', 'b']], 2), 2 / 3);
  assert.equal(distinctN([['a']], 2), null);
  assert.equal(jaccard(new Set(['a', 'b']), new Set(['b', 'c'])), 1 / 3);
  const same = diversity(['the cat', 'the cat', 'the cat ']);
  assert.equal(same.unique, 1);
  assert.equal(same.meanJaccard, 1);
  assert.equal(same.distinct1, 2 / 6);
  const varied = diversity(['the cat sat', 'a dog ran', 'the dog sat']);
  assert.equal(varied.unique, 3);
  assert.equal(varied.distinct1, 6 / 9);
  assert.equal(varied.distinct2, 1);
  assert.equal(varied.distinct3, 1);
  // pairs: {the,cat,sat}/{a,dog,ran} 0; {the,cat,sat}/{the,dog,sat} 2/4; {a,dog,ran}/{the,dog,sat} 1/5
  assert.ok(Math.abs(varied.meanJaccard! - (0 + 0.5 + 0.2) / 3) < 1e-12);
  assert.equal(varied.meanWords, 3);
  assert.equal(diversity(['only one']).meanJaccard, null);
});
