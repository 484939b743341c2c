// The playground panel's vscode-free part (src/playground/job.ts): which exports become columns,
// and the messages one generation job posts, with a fake model in place of onnxruntime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pickColumns, runJob, toModel } from '../../src/playground/job';
import type { ExportInfo } from '../../src/core/exports';
import type { LogitsFn } from '../../src/core/generate';
import { DEFAULT_SETTINGS, isHostToPlayground, type HostToPlayground } from '../../src/core/playgroundProtocol';
import { tmpDir } from '../core/helpers';

function exportAt(runDir: string, label: string, over: Record<string, unknown>): void {
  const dir = path.join(runDir, 'exports', label);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.onnx'), 'x');
  fs.writeFileSync(path.join(dir, 'export.json'), JSON.stringify({
    v: 1, label, kind: 'base', run: path.basename(runDir), checkpoint: null, step: 0, base: 'builtin:tiny', lora: null,
    onnx: 'model.onnx', input_name: 'input_ids', output_name: 'logits', vocab_size: 259, max_positions: 64,
    tokenizer: { kind: 'bytes', bos_token_id: 256, eos_token_id: 257, pad_token_id: 258 }, created: '2025-01-01T00:00:00Z', ...over,
  }));
}

function runs(): { id: string; dir: string }[] {
  const root = tmpDir('ftl-pg-');
  const lora = path.join(root, 'lora'), full = path.join(root, 'full'), none = path.join(root, 'none'), broken = path.join(root, 'broken');
  exportAt(lora, 'base', { run: 'lora' });
  exportAt(lora, 'step-000010', { kind: 'lora', step: 10, checkpoint: 'step-000010', lora: { rank: 4 }, prompt_format: { format: 'instruction', template: 'Q: {prompt}\nA:' } });
  exportAt(lora, 'step-000020', { kind: 'lora', step: 20, checkpoint: 'step-000020', lora: { rank: 4 } });
  exportAt(full, 'base', { run: 'full' });
  exportAt(full, 'step-000020', { kind: 'full', step: 20, checkpoint: 'step-000020' });
  fs.mkdirSync(none, { recursive: true });
  exportAt(broken, 'step-000005', { kind: 'full', vocab_size: 'many' });
  return [full, lora, none, broken].map((dir) => ({ id: path.basename(dir), dir }));
}

test('columns: one base per base model, then each run\'s newest checkpoint; problems named', () => {
  const { exports, problems } = pickColumns(runs());
  assert.deepEqual(exports.map((e) => `${e.manifest.run}:${e.manifest.label}`), ['full:base', 'lora:step-000020', 'full:step-000020']);
  assert.deepEqual(exports.map((e) => toModel(e).kindLabel), ['base', 'LoRA r4', 'full']);
  assert.equal(problems.length, 2);
  assert.match(problems[0], /none has no exported checkpoint yet/);
  assert.match(problems[1], /broken.*export\.json: vocab_size must be integer/);
});

test('a job posts started, every sample, each column\'s diversity, done; all valid protocol', async () => {
  const { exports } = pickColumns(runs());
  // A model that always says byte 'a' (97) for the LoRA column and 'b' for the others, then eos at 3 tokens.
  const fake = { logitsFn: async (exp: ExportInfo): Promise<LogitsFn> => async (_ids, [b, s]) => {
    const out = new Float32Array(b * 259);
    for (let r = 0; r < b; r++) out[r * 259 + (s >= 4 ? 257 : exp.manifest.kind === 'lora' ? 97 : 98)] = 10;
    return out;
  } };
  const posted: HostToPlayground[] = [];
  await runJob(7, exports, 'x', { ...DEFAULT_SETTINGS, temperature: 0, samples: 2 }, fake, (m) => posted.push(m), new AbortController().signal);
  assert.ok(posted.every((m) => isHostToPlayground(m)), 'every message passes the webview\'s check');
  assert.deepEqual(posted.map((m) => m.type), ['started', 'sample', 'sample', 'modelDone', 'sample', 'sample', 'modelDone', 'sample', 'sample', 'modelDone', 'done']);
  const samples = posted.filter((m): m is Extract<HostToPlayground, { type: 'sample' }> => m.type === 'sample');
  assert.deepEqual(samples.map((m) => m.text), ['bb', 'bb', 'aa', 'aa', 'bb', 'bb'], 'bos + "x" is 2 tokens; eos once the window holds 4');
  assert.ok(samples.every((m) => m.stop === 'eos' && m.job === 7));
  const done = posted.filter((m): m is Extract<HostToPlayground, { type: 'modelDone' }> => m.type === 'modelDone');
  assert.deepEqual(done.map((m) => m.diversity.unique), [1, 1, 1]);
  assert.deepEqual(posted[posted.length - 1], { type: 'done', job: 7, cancelled: false });
});

test('a job reports a failing column and goes on; Cancel ends it as cancelled', async () => {
  const { exports } = pickColumns(runs());
  const posted: HostToPlayground[] = [];
  const failing = { logitsFn: async (exp: ExportInfo): Promise<LogitsFn> => {
    if (exp.manifest.kind === 'base') throw new Error('cannot open model.onnx');
    return async (_ids, [b]) => new Float32Array(b * 259).fill(0);
  } };
  await runJob(1, exports, 'x', { ...DEFAULT_SETTINGS, samples: 1, maxNewTokens: 3 }, failing, (m) => posted.push(m), new AbortController().signal);
  assert.deepEqual(posted.filter((m) => m.type === 'error').map((m) => m.type === 'error' && m.message), ['cannot open model.onnx']);
  assert.equal(posted.filter((m) => m.type === 'modelDone').length, 2);
  const ac = new AbortController();
  const slow = { logitsFn: async (): Promise<LogitsFn> => async (_ids, [b]) => { ac.abort(); return new Float32Array(b * 259); } };
  const cancelled: HostToPlayground[] = [];
  await runJob(2, exports, 'x', DEFAULT_SETTINGS, slow, (m) => cancelled.push(m), ac.signal);
  assert.deepEqual(cancelled.map((m) => m.type), ['started', 'done']);
  assert.deepEqual(cancelled[1], { type: 'done', job: 2, cancelled: true });
});
