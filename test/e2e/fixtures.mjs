// Experiment files written into the test workspace before code-server opens it. They are what a
// user would type into the editor, only small: builtin:tiny and a handful of steps, so a CPU run
// takes seconds. The New Experiment scenario still creates its own file through the UI.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const evals = (every) => [
  'evals:',
  `  every_steps: ${every}`,
  '  learning: [{name: code, type: loss, data: builtin:python-stdlib#heldout, max_examples: 4}]',
  '  forgetting: [{name: english, type: loss, data: builtin:brown#heldout, max_examples: 4}]',
];

function experiment({ name, method, steps, every, rank = 4, lr }) {
  return [
    `name: ${name}`,
    'model: {base: builtin:tiny}',
    'data: {train: builtin:python-stdlib, format: text, seq_len: 64}',
    ...evals(every),
    `method: ${method}`,
    ...(method === 'lora' ? [`lora: {rank: ${rank}, alpha: ${2 * rank}, target_modules: all}`] : []),
    `train: {steps: ${steps}, batch_size: 4, lr: ${lr}, warmup_steps: 2, log_every_steps: 1}`,
    `spectra: {every_steps: ${every}, top_k: 16}`,
    `checkpoint: {every_steps: ${every}, keep_last: 2}`,
    '',
  ].join('\n');
}

export const FORM_FILE = [
  '# Edited by the Experiment Form scenario: every comment and the key order must survive.',
  'name: e2e-form',
  'model: {base: builtin:tiny}',
  'data: {train: builtin:python-stdlib, format: text, seq_len: 64}',
  ...evals(150),
  'method: lora',
  'lora:',
  '  rank: 8  # the paper: 256 where memory allows',
  '  alpha: 16',
  '  target_modules: all',
  'train:',
  '  steps: 300',
  '  batch_size: 4',
  '  lr: 1.0e-3  # LoRA: about 10x full finetuning',
  '  warmup_steps: 2',
  '',
].join('\n');

export const FILES = {
  // 300 steps: on a quiet machine builtin:tiny trains ~20 steps/s, and 80 steps were over before
  // code-server's file watcher brought a status.json change to the status bar; 300 (evals at 0,
  // 150, 300) train for 10-15 s, still short next to a user's runs.
  'quick-lora.finetune.yaml': experiment({ name: 'e2e-lora', method: 'lora', steps: 300, every: 150, lr: '1.0e-3' }),
  'quick-full.finetune.yaml': experiment({ name: 'e2e-full', method: 'full', steps: 300, every: 150, lr: '1.0e-4' }),
  // Long enough to be caught running (reload, stop); it is stopped by the tests.
  'long-lora.finetune.yaml': experiment({ name: 'e2e-long', method: 'lora', steps: 5000, every: 25, lr: '1.0e-3' }),
  // A sweep of two long runs: with one run at a time the second waits in the queue, which must
  // survive a window reload (the reloaded window carries on with it).
  'queue-sweep.finetune.yaml': experiment({ name: 'e2e-queue', method: 'lora', steps: 5000, every: 25, lr: '1.0e-3' })
    + 'sweep:\n  lora.rank: [4, 8]\n',
  // The runs table scenario: a short sweep of three tiny runs (full, LoRA r4, LoRA r8) that finishes
  // in about a minute, one run at a time.
  'table-sweep.finetune.yaml': experiment({ name: 'e2e-table', method: 'lora', steps: 60, every: 30, lr: '1.0e-3' })
    + 'sweep:\n  method: [full, lora]\n  lora.rank: [4, 8]\n',
  // Slurm (the single-node cluster run.mjs starts): a short run, and one held in the queue so
  // its pending reason (JobHeldUser) shows until it is stopped.
  'slurm-quick.finetune.yaml': experiment({ name: 'e2e-squick', method: 'lora', steps: 40, every: 20, lr: '1.0e-3' })
    + 'launcher: {kind: slurm, partition: debug, cpus_per_task: 1, time: "00:10:00"}\n',
  'slurm-held.finetune.yaml': experiment({ name: 'e2e-sheld', method: 'lora', steps: 40, every: 20, lr: '1.0e-3' })
    + 'launcher: {kind: slurm, partition: debug, extra_sbatch: [--hold]}\n',
  // The Experiment Form scenario edits this one through the form and the text: block style with
  // comments, as people write them, so a form edit that re-formats the file or drops a comment shows.
  'form-lora.finetune.yaml': FORM_FILE,
  // The memory estimate scenario: full finetuning of the 350M built-in at batch 16 × 1024 tokens, which
  // does not fit a 24 GiB GPU (finetuneLab.memoryLimitGiB) without gradient checkpointing. Only estimated:
  // never started.
  'memory-full.finetune.yaml': [
    '# Full finetuning of builtin:350m: will it fit a 24 GiB GPU?',
    'name: e2e-memory',
    'model: {base: builtin:350m}',
    'data: {train: builtin:python-stdlib, format: text, seq_len: 1024}',
    ...evals(50),
    'method: full',
    'train:',
    '  steps: 100',
    '  batch_size: 16',
    '  lr: 2.0e-5',
    '',
  ].join('\n'),
  // Issue 17's scenarios (reliabilityScenarios.mjs). A long run: it must still be training after an
  // extension-host restart, a second window and a resume from both.
  'rel-long.finetune.yaml': [
    'name: e2e-rel',
    'model: {base: builtin:tiny}',
    'data: {train: builtin:python-stdlib, format: text, seq_len: 64}',
    'method: lora',
    'lora: {rank: 4, alpha: 8}',
    'train: {steps: 20000, batch_size: 4, lr: 1.0e-3, warmup_steps: 2}',
    'spectra: {every_steps: 0}',
    'checkpoint: {every_steps: 10, keep_last: 2}',
    '',
  ].join('\n'),
  // Checkpoints every 2 steps and all kept: a 1 MiB runs folder fills up within seconds.
  'rel-diskfull.finetune.yaml': [
    'name: e2e-full-disk',
    'model: {base: builtin:tiny}',
    'data: {train: builtin:python-stdlib, format: text, seq_len: 64}',
    'method: lora',
    'lora: {rank: 4, alpha: 8}',
    'train: {steps: 20000, batch_size: 4, lr: 1.0e-3, warmup_steps: 2}',
    'spectra: {every_steps: 0}',
    'checkpoint: {every_steps: 2, keep_last: 1000}',
    '',
  ].join('\n'),
  // Two mistakes a user makes: an unknown method and a negative step count.
  'broken.finetune.yaml': [
    'name: e2e-broken',
    'model: {base: builtin:tiny}',
    'data: {train: builtin:python-stdlib}',
    'method: lora-ish',
    'train: {steps: -5}',
    '',
  ].join('\n'),
  // matched against a module name this pattern backtracks for hours: the lint must refuse it unrun
  'backtracking.finetune.yaml': [
    'name: e2e-backtracking',
    'model: {base: builtin:tiny}',
    'data: {train: builtin:python-stdlib}',
    'method: lora',
    "lora: {target_modules: [q_proj, '([\\w.]+)+Z']}",
    '',
  ].join('\n'),
};

export function writeWorkspace(dir, names = Object.keys(FILES)) {
  mkdirSync(dir, { recursive: true });
  for (const n of names) writeFileSync(join(dir, n), FILES[n]);
  return dir;
}
