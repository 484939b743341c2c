import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExportManifestError, exportCommand, findExports, kindLabel, latestTuned, readExport } from '../../src/core/exports';
import type { ExportManifest } from '../../src/core/generated/export';
import { tmpDir } from './helpers';

const manifest = (over: Partial<ExportManifest> = {}): ExportManifest => ({
  v: 1, label: 'base', kind: 'base', run: 'r1', checkpoint: null, step: 0, base: 'builtin:tiny', lora: null,
  onnx: 'model.onnx', input_name: 'input_ids', output_name: 'logits', vocab_size: 259, max_positions: 128,
  tokenizer: { kind: 'bytes', bos_token_id: 256, eos_token_id: 257, pad_token_id: 258 },
  prompt_format: { format: 'text' }, created: '2025-01-01T00:00:00Z', ...over,
});

function write(runDir: string, label: string, m: unknown, onnx = true): string {
  const dir = path.join(runDir, 'exports', label);
  fs.mkdirSync(dir, { recursive: true });
  if (onnx) fs.writeFileSync(path.join(dir, 'model.onnx'), 'x');
  const file = path.join(dir, 'export.json');
  fs.writeFileSync(file, typeof m === 'string' ? m : JSON.stringify(m));
  return file;
}

test('exports: found, validated, base first then by step', () => {
  const run = path.join(tmpDir(), 'r1');
  write(run, 'step-000020', manifest({ label: 'step-000020', kind: 'lora', checkpoint: 'step-000020', step: 20, lora: { rank: 8, alpha: 16, target_modules: ['q_proj'] } }));
  write(run, 'base', manifest());
  write(run, 'step-000010', manifest({ label: 'step-000010', kind: 'lora', checkpoint: 'step-000010', step: 10, lora: { rank: 8 } }));
  fs.mkdirSync(path.join(run, 'exports', 'in-progress'));
  const { exports, errors } = findExports(run);
  assert.deepEqual(errors, []);
  assert.deepEqual(exports.map((e) => e.manifest.label), ['base', 'step-000010', 'step-000020']);
  assert.equal(exports[0].onnx, path.join(run, 'exports', 'base', 'model.onnx'));
  assert.equal(exports[0].runDir, run);
  assert.equal(latestTuned(exports)?.manifest.step, 20);
  assert.equal(kindLabel(exports[2].manifest), 'LoRA r8');
  assert.equal(kindLabel(manifest({ kind: 'full' })), 'full');
  assert.deepEqual(findExports(path.join(run, 'nope')), { exports: [], errors: [] });
});

test('exports: a broken manifest is an error naming the file and the field', () => {
  const run = path.join(tmpDir(), 'r2');
  const cases: [unknown, string, RegExp][] = [
    [manifest({ tokenizer: { kind: 'bytes', bos_token_id: 256, eos_token_id: 'x' as unknown as number } }), 'tokenizer.eos_token_id', /integer,null/],
    [(() => { const m: Record<string, unknown> = { ...manifest() }; delete m.vocab_size; return m; })(), 'vocab_size', /is missing/],
    [{ ...manifest(), extra: 1 }, 'extra', /not a known field/],
    [manifest({ kind: 'qlora' as 'lora' }), 'kind', /one of "base", "lora", "full"/],
    [manifest({ input_name: 'tokens' as 'input_ids' }), 'input_name', /must be "input_ids"/],
    [manifest({ max_positions: 0 }), 'max_positions', />= 1/],
    ['{ not json', '', /is not JSON/],
  ];
  for (const [i, [m, field, problem]] of cases.entries()) {
    const file = write(run, `e${i}`, m);
    assert.throws(() => readExport(file), (e: unknown) => {
      assert.ok(e instanceof ExportManifestError);
      assert.equal(e.file, file);
      assert.equal(e.field, field);
      assert.match(e.problem, problem);
      assert.ok(e.message.startsWith(`${file}: ${field}`), e.message);
      return true;
    });
  }
  const noOnnx = write(run, 'no-onnx', manifest(), false);
  assert.throws(() => readExport(noOnnx), /onnx names model.onnx, which does not exist/);
  const escape = write(run, 'escape', manifest({ onnx: '../../../../etc/passwd' }));
  assert.throws(() => readExport(escape), /onnx must name a file inside the export folder/);
  const hf = write(run, 'hf', manifest({ tokenizer: { kind: 'hf', bos_token_id: 1, eos_token_id: 2, file: 'tokenizer.json' } }));
  assert.throws(() => readExport(hf), /tokenizer.kind is hf/);
  const { exports, errors } = findExports(run);
  assert.equal(exports.length, 0);
  assert.equal(errors.length, cases.length + 3);
});

test('export-onnx command line: argv, PYTHONPATH, optional checkpoint', () => {
  const c = exportCommand('/py', '/ext/trainer', '/w/runs/r1', 'base', { PATH: '/bin', PYTHONPATH: '/x' });
  assert.equal(c.command, '/py');
  assert.deepEqual(c.args, ['-m', 'finetune_lab', 'export-onnx', '--run-dir', path.resolve('/w/runs/r1'), '--checkpoint', 'base']);
  assert.equal(c.env.PYTHONPATH, `/ext/trainer${path.delimiter}/x`);
  assert.deepEqual(exportCommand('/py', '/t', '/r', undefined, {}).args.slice(-2), ['--run-dir', path.resolve('/r')]);
});
