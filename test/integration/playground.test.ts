// The playground end to end below the editor: the trainer's fixture script trains a builtin:tiny
// LoRA run and exports base + checkpoint (python -m finetune_lab export-onnx); the manifests are
// validated against export.schema.json, the graphs run in onnxruntime-node through the panel's own
// SessionCache, and generation goes through the core loop. Needs the repo's .venv (or $FINETUNE_LAB_PYTHON).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cliPythonCandidates, findPython, trainerDir } from '../../src/core/trainerLaunch';
import { readExport, type ExportInfo } from '../../src/core/exports';
import { ByteTokenizer } from '../../src/core/byteTokenizer';
import { generate, promptIds, wrapPrompt } from '../../src/core/generate';
import { diversity } from '../../src/core/diversity';
import { SessionCache } from '../../src/playground/ort';
import { repoRoot, tmpDir } from '../core/helpers';

const FIXTURE = path.join(repoRoot(), 'trainer', 'scripts', 'make_export_fixture.py');

/** Every string ending in export.json in the script's JSON output, wherever it sits. */
function manifestPaths(stdout: string): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string' && v.endsWith('export.json')) out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  const start = stdout.search(/[[{]/);
  walk(JSON.parse(stdout.slice(start)));
  return out;
}

test('ONNX exports of base and LoRA run in onnxruntime-node; greedy is deterministic; LoRA differs from base', { timeout: 600_000 }, async (t) => {
  if (!fs.existsSync(FIXTURE)) { t.skip(`${path.relative(repoRoot(), FIXTURE)} is not in this checkout yet`); return; }
  const found = await findPython(cliPythonCandidates(repoRoot()));
  assert.ok(found.python, found.message);
  const tmp = tmpDir('ftl-onnx-');
  const r = spawnSync(found.python, [FIXTURE, tmp], {
    encoding: 'utf8', timeout: 540_000, maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, PYTHONPATH: trainerDir(), FINETUNE_LAB_CACHE: process.env.FINETUNE_LAB_CACHE ?? path.join(tmp, 'cache') },
  });
  assert.equal(r.status, 0, `fixture script failed (${r.status ?? r.signal}):\n${(r.stderr ?? '').slice(-3000)}`);
  const exports: ExportInfo[] = manifestPaths(r.stdout).map((p) => readExport(path.resolve(tmp, p)));
  const base = exports.find((e) => e.manifest.kind === 'base');
  const lora = exports.find((e) => e.manifest.kind === 'lora');
  assert.ok(base && lora, `expected a base and a LoRA export, got ${exports.map((e) => e.manifest.kind).join(', ')}`);

  const cache = new SessionCache();
  try {
    const tok = new ByteTokenizer(base.manifest.tokenizer.bos_token_id, base.manifest.tokenizer.eos_token_id, base.manifest.tokenizer.pad_token_id ?? null);
    const ids = promptIds(tok.encode('def add(a, b):\n'), tok.bosId);
    const V = base.manifest.vocab_size;

    // Logits of a fixed input: [1, T, vocab], all finite.
    const baseLogits = await cache.logitsFn(base);
    const out = await baseLogits(BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
    assert.equal(out.length, ids.length * V, `logits of [1, ${ids.length}, ${V}]`);
    assert.ok(out.every(Number.isFinite), 'every logit is finite');
    // A batch of two equal rows gives the same logits twice.
    const two = await baseLogits(BigInt64Array.from([...ids, ...ids].map(BigInt)), [2, ids.length]);
    assert.ok(two.subarray(0, out.length).every((x, i) => Math.abs(x - out[i]) < 1e-4));

    const opts = (sampler: { temperature: number; topK: number; topP: number }) => ({
      prompt: ids, samples: 3, maxNewTokens: 24, maxPositions: base.manifest.max_positions, vocabSize: V, eosId: tok.eosId, seed: 0, sampler,
    });
    const greedy = { temperature: 0, topK: 0, topP: 1 };
    const g1 = await generate(baseLogits, opts(greedy));
    const g2 = await generate(baseLogits, opts(greedy));
    assert.deepEqual(g1, g2, 'greedy generation is deterministic');
    assert.equal(new Set(g1.map((s) => s.tokens.join())).size, 1, 'greedy samples are all the same');
    assert.equal(diversity(g1.map((s) => tok.decode(s.tokens))).unique, 1);

    const sampled = { temperature: 1, topK: 0, topP: 1 };
    assert.deepEqual(await generate(baseLogits, opts(sampled)), await generate(baseLogits, opts(sampled)), 'sampling is deterministic given the seed');

    const loraLogits = await cache.logitsFn(lora);
    const lOut = await loraLogits(BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
    const maxDiff = lOut.reduce((m, x, i) => Math.max(m, Math.abs(x - out[i])), 0);
    assert.ok(maxDiff > 1e-3, `LoRA logits differ from base (max |diff| ${maxDiff})`);
    // The fixture's models are barely trained (greedy may repeat one byte for both): compare what the
    // playground shows, N samples with the same seeds, on a prompt in the run's own format.
    const asked = promptIds(tok.encode(wrapPrompt('What is 12 + 7?', lora.manifest.prompt_format)), tok.bosId);
    const same = { ...opts(sampled), prompt: asked, samples: 8 };
    const baseTexts = (await generate(baseLogits, same)).map((s) => tok.decode(s.tokens));
    const loraTexts = (await generate(loraLogits, same)).map((s) => tok.decode(s.tokens));
    assert.notDeepEqual(loraTexts, baseTexts, `LoRA and base generations differ with the same seeds:\nbase: ${JSON.stringify(baseTexts)}\nlora: ${JSON.stringify(loraTexts)}`);
    const lGreedy = await generate(loraLogits, opts(greedy));
    console.log(`greedy base ${JSON.stringify(tok.decode(g1[0].tokens))} / LoRA ${JSON.stringify(tok.decode(lGreedy[0].tokens))}; max |logit diff| ${maxDiff.toFixed(4)}`);
  } finally {
    await cache.dispose();
  }
});
