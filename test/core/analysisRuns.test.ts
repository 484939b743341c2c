// Analysis runs (issue 14) on the extension's side: the run store reads them (config.yaml against
// analysis.schema.json), the views' header says what they are, their Runs view line, the folder a
// user points "Analyse Adapter or Checkpoint…" at, and the Spectra view's message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { RunStore } from '../../src/core/runStore';
import { validateAnalysis } from '../../src/core/schemas';
import { isWebviewToHost, isHostToWebview } from '../../src/core/messages';
import { runHeaderFrom } from '../../src/panels/wire';
import { builtinCacheSize, declaredBase, finetuneFolderProblem, finetuneKind, modelFolders } from '../../src/core/finetuneFolder';
import { analysisDescription, analysisSourceMarkdown } from '../../src/views/runFormat';
import { tmpDir } from './helpers';

const ANALYSIS = {
  kind: 'analysis', name: 'their-lora', model: { base: 'hf:Qwen/Qwen2.5-0.5B' }, method: 'lora',
  source: { adapter: '/w/out/checkpoint-120', step: 120 }, lora: { rank: 16, alpha: 32, variant: 'rslora', target_modules: ['q_proj', 'v_proj'] },
  experiment_file: null, data: { seq_len: 128 },
  evals: { learning: [{ name: 'code', type: 'loss', data: 'builtin:python-stdlib#heldout' }], forgetting: [] },
  spectra: { modules: 'all', top_k: 64, intruder_k: 10, intruder_epsilon: 0.5 },
};

function writeRun(runs: string, id: string, config: unknown, kind: string | undefined): string {
  const dir = path.join(runs, id);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ v: 1, run_id: id, experiment_name: 'their-lora', created: 1, ...(kind ? { kind } : {}) }));
  fs.writeFileSync(path.join(dir, 'config.yaml'), YAML.stringify(config));
  fs.writeFileSync(path.join(dir, 'status.json'), JSON.stringify({ v: 1, state: 'completed', step: 120, total_steps: 120 }));
  return dir;
}

test('the run store reads an analysis run by its own schema, and reports one that breaks it', async () => {
  const runs = tmpDir();
  writeRun(runs, 'a', ANALYSIS, 'analysis');
  writeRun(runs, 'b', { ...ANALYSIS, source: { step: 3 } }, 'analysis');  // neither adapter nor model
  writeRun(runs, 'c', ANALYSIS, undefined);  // an analysis config under a training run's meta: not an experiment
  const store = new RunStore(runs, { pidAlive: () => false });
  const a = await store.get('a');
  assert.equal(a?.error, undefined);
  assert.equal(a?.config, undefined);
  assert.deepEqual(a?.analysis?.source, { adapter: '/w/out/checkpoint-120', step: 120 });
  assert.match((await store.get('b'))?.error ?? '', /config\.yaml: \/source must have required property 'adapter'; .*must match exactly one schema in oneOf/);
  assert.match((await store.get('c'))?.error ?? '', /config\.yaml:/);
  assert.ok(validateAnalysis()({ ...ANALYSIS, reduce_intruders: { source_run: 'a', lambda: 0.5, top_k: 10, epsilon: 0.5 } }));
  assert.equal(validateAnalysis()({ ...ANALYSIS, evals: { learning: [{ name: 'x', type: 'perplexity', data: 'builtin:brown' }] } }), false,
    'evals are the experiment schema\'s own definition');
});

test('the views\' header: an analysis run, and a reduce-intruders run with its λ', () => {
  const started = (config: unknown) => [{ type: 'run_started', kind: 'analysis', method: 'lora', total_steps: 120, config }];
  const h = runHeaderFrom('a', '/r/a', started(ANALYSIS));
  assert.deepEqual([h.kind, h.method, h.rank, h.lr, h.totalSteps, h.reduceIntruders], ['analysis', 'lora', 16, null, 120, null]);
  const r = runHeaderFrom('b', '/r/b', started({ ...ANALYSIS, reduce_intruders: { source_run: 'a', lambda: 0.25, top_k: 10, epsilon: 0.5 } }));
  assert.deepEqual(r.reduceIntruders, { sourceRun: 'a', lambda: 0.25, topK: 10, epsilon: 0.5 });
  assert.equal(runHeaderFrom('t', '/r/t', [{ type: 'run_started', method: 'full', total_steps: 5, config: {} }]).kind, 'training');
  assert.ok(isHostToWebview({ type: 'header', run: r }));
  assert.equal(isHostToWebview({ type: 'header', run: { ...r, kind: 'other' } }), false);
  assert.equal(isHostToWebview({ type: 'header', run: { ...r, reduceIntruders: { sourceRun: 'a' } } }), false);
  assert.ok(isWebviewToHost({ type: 'reduceIntruders', runIds: ['a'] }));
  for (const bad of [{ type: 'reduceIntruders', runIds: [] }, { type: 'reduceIntruders', runIds: [''] }, { type: 'reduceIntruders', runIds: 'a' }, { type: 'reduceIntruders' }]) {
    assert.equal(isWebviewToHost(bad), false, JSON.stringify(bad));
  }
});

test('the Runs view line and tooltip of an analysis run', () => {
  assert.equal(analysisDescription({ state: 'completed', step: 120, total_steps: 120 }), 'completed · analysis at step 120');
  assert.equal(analysisDescription({ state: 'completed', step: 120, total_steps: 120 }, 0.5), 'completed · λ 0.5 at step 120');
  assert.equal(analysisDescription({ state: 'running', step: 0, total_steps: 120, phase: 'spectra' }), 'running · spectra');
  assert.equal(analysisDescription({ state: 'failed', step: 0, total_steps: 120, error: 'OSError: no tokenizer\nmore' }), 'failed · analysis · OSError: no tokenizer');
  const md = analysisSourceMarkdown({ ...ANALYSIS, reduce_intruders: { source_run: 'a', lambda: 0.5, top_k: 10, epsilon: 0.5 } });
  assert.match(md, /\*\*Analysis\*\* of the LoRA adapter `\/w\/out\/checkpoint-120` \(step 120\) against `hf:Qwen\/Qwen2\.5-0\.5B`/);
  assert.match(md, /reduce_intruder_dimension of run `a`: λ 0\.5, top-k 10, ε 0\.5/);
});

test('a folder to analyse: adapter, checkpoint or neither; the base it names; model folders of the workspace', () => {
  const w = tmpDir();
  const mk = (rel: string, files: Record<string, string>) => {
    const d = path.join(w, rel);
    fs.mkdirSync(d, { recursive: true });
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(d, f), text);
    return d;
  };
  const base = mk('models/base', { 'config.json': '{}', 'model.safetensors': '' });
  const adapter = mk('out/checkpoint-120', { 'adapter_config.json': JSON.stringify({ base_model_name_or_path: base }), 'adapter_model.safetensors': '' });
  const hub = mk('out/hub', { 'adapter_config.json': JSON.stringify({ base_model_name_or_path: 'meta-llama/Llama-3.1-8B' }) });
  const sharded = mk('out/full', { 'config.json': '{}', 'model.safetensors.index.json': '{}' });
  const notes = mk('notes', { 'readme.md': 'hi', 'config.json': '{}' });
  const cached = mk('cache/bases/tiny-0123456789abcdef', { 'config.json': '{}', 'model.safetensors': '', 'pretrain.json': '{"steps": 10}' });
  assert.deepEqual([finetuneKind(adapter), finetuneKind(sharded), finetuneKind(notes)], ['adapter', 'checkpoint', undefined]);
  assert.equal(finetuneFolderProblem(adapter), undefined);
  assert.match(finetuneFolderProblem(notes)!, /neither a PEFT adapter nor a model checkpoint: expected adapter_config\.json .*; it has config\.json but no model weights/);
  assert.match(finetuneFolderProblem(path.join(w, 'nope'))!, /is not a folder/);
  assert.equal(declaredBase(adapter), `hf:${base}`);
  assert.equal(declaredBase(hub), 'hf:meta-llama/Llama-3.1-8B');
  assert.equal(declaredBase(sharded), undefined);
  assert.deepEqual(modelFolders([base, sharded, notes, adapter].map((d) => path.join(d, 'config.json')), sharded), [base]);
  assert.equal(builtinCacheSize(`hf:${cached}`), 'tiny');
  assert.equal(builtinCacheSize(`hf:${base}`), undefined);
});
