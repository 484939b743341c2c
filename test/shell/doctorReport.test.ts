import { test } from 'node:test';
import assert from 'node:assert/strict';
import { doctorMarkdown, missingForTraining } from '../../src/commands/doctorReport';

test('a ready GPU machine', () => {
  const md = doctorMarkdown({
    python: { path: '/x/.venv/bin/python', source: 'the workspace .venv' }, tried: [],
    info: {
      python: '3.12.1', torch: '2.5.1', cuda: { available: true, version: '12.4', bf16: true },
      gpus: [{ index: 0, name: 'NVIDIA H100', memory_mb: 81559, capability: '9.0' }, { index: 1, name: 'NVIDIA H100', memory_mb: 81559 }],
      libraries: { transformers: '4.46.0', peft: '0.13.2', safetensors: '0.4.5', flash_attn: null },
    },
  });
  assert.match(md, /\*\*Ready to train\.\*\*/);
  assert.match(md, /NVIDIA H100 \| 79\.6 GiB/);
  assert.match(md, /CUDA 12\.4/);
  assert.match(md, /maxConcurrentRuns/);
  assert.doesNotMatch(md, /How to fix/);
});

test('no torch: says what is missing and how to fix it', () => {
  const report = { tried: [{ path: 'python3', source: 'python3 on PATH', problem: 'missing torch, transformers, peft' }], info: { python: '3.11', torch: null, error: 'torch not importable' } };
  assert.deepEqual(missingForTraining(report.info), ['torch', 'transformers', 'peft', 'safetensors']);
  const md = doctorMarkdown(report);
  assert.match(md, /Not ready to train/);
  assert.match(md, /How to fix/);
  assert.match(md, /finetuneLab\.pythonPath/);
});
