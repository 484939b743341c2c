// Experiment templates for "New Experiment". Pure (no vscode import) so tests parse every
// combination with the core's parseExperiment. The defaults and the why-comments follow
// "LoRA Learns Less and Forgets Less" (Biderman et al., TMLR 2024, arXiv 2405.09673).
import type { ExperimentConfig } from './core/generated/experiment';

export type TemplateKind = 'lora' | 'full' | 'lora-vs-full' | 'lr-sweep';

export interface TemplateChoice {
  kind: TemplateKind;
  label: string;
  detail: string;
}

export const TEMPLATES: readonly TemplateChoice[] = [
  { kind: 'lora', label: 'LoRA', detail: 'Low-rank adapters on all modules, alpha = 2·rank, LR 2e-4: learns less, forgets less.' },
  { kind: 'full', label: 'Full finetuning', detail: 'Every weight trains, LR 2e-5: learns more on the target domain, forgets more.' },
  { kind: 'lora-vs-full', label: 'LoRA vs full (sweep)', detail: 'A sweep over method and rank: see both ends of the learning-vs-forgetting curve.' },
  { kind: 'lr-sweep', label: 'Learning-rate sweep (LoRA)', detail: 'LoRA is more sensitive to LR than full finetuning: sweep [1e-5, 5e-4], take the highest stable one.' },
];

export const BUILTIN_MODELS = [
  { base: 'builtin:tiny', detail: '~1M parameters: for quick checks and tests (CPU, seconds)' },
  { base: 'builtin:small', detail: 'the demo model (CPU, a few minutes a run)' },
  { base: 'builtin:125m', detail: '125M parameters (GPU)' },
  { base: 'builtin:350m', detail: '350M parameters (GPU)' },
] as const;

export const BUILTIN_DATA = [
  { train: 'builtin:python-stdlib', format: 'text' as const, detail: 'Python code (continued pretraining on a new domain, like the paper\'s code CPT)' },
  { train: 'builtin:arithmetic', format: 'instruction' as const, detail: 'arithmetic word problems (instruction finetuning, like the paper\'s math IFT)' },
];

/**
 * The evaluations New Experiment offers. The paper's benchmarks by name, run by lm-evaluation-harness
 * on the live model (eval type lm_eval; datasets from the Hugging Face cache or hub as lm-eval loads
 * them): HellaSwag, WinoGrande and ARC-Challenge measure forgetting (their mean, the forgetting
 * aggregate, is the paper's forgetting score), GSM8K and HumanEval learning. Limits keep an
 * evaluation to a few hundred documents; the dashboard shows the share of wall time it took.
 */
export type EvalChoice = 'losses' | 'kl' | 'hellaswag' | 'winogrande' | 'arc_challenge' | 'gsm8k' | 'humaneval';

export const EVAL_CHOICES: readonly { id: EvalChoice; label: string; detail: string; picked: boolean; role?: 'learning' | 'forgetting'; line?: string }[] = [
  { id: 'losses', label: 'Held-out losses', detail: 'target-domain loss (learning) and English loss (forgetting): seconds, no download', picked: true },
  { id: 'kl', label: 'KL to the base', detail: 'forgetting without labels: mean per-token KL from the base on held-out English (RL\'s Razor, 2025)', picked: true },
  { id: 'hellaswag', role: 'forgetting', label: 'HellaSwag (lm-eval)', detail: 'forgetting, paper: commonsense sentence completion; 200 documents, acc_norm', picked: false,
    line: '{name: hellaswag, type: lm_eval, task: hellaswag, limit: 200, metric: acc_norm}' },
  { id: 'winogrande', role: 'forgetting', label: 'WinoGrande (lm-eval)', detail: 'forgetting, paper: pronoun resolution; 200 documents, acc', picked: false,
    line: '{name: winogrande, type: lm_eval, task: winogrande, limit: 200}' },
  { id: 'arc_challenge', role: 'forgetting', label: 'ARC-Challenge (lm-eval)', detail: 'forgetting, paper: grade-school science questions; 200 documents, acc_norm', picked: false,
    line: '{name: arc_challenge, type: lm_eval, task: arc_challenge, limit: 200, metric: acc_norm}' },
  { id: 'gsm8k', role: 'learning', label: 'GSM8K (lm-eval)', detail: 'learning, paper (math): grade-school word problems, 5-shot; 50 documents, exact match', picked: false,
    line: '{name: gsm8k, type: lm_eval, task: gsm8k, limit: 50}' },
  { id: 'humaneval', role: 'learning', label: 'HumanEval (lm-eval, runs generated code)', detail: 'learning, paper (code): pass@1 on 20 problems; runs model-generated code: needs finetuneLab.allowCodeExecution', picked: false,
    line: '{name: humaneval, type: lm_eval, task: humaneval, limit: 20, max_gen_toks: 512}' },
];

export interface TemplateOptions {
  kind: TemplateKind;
  name: string;
  /** builtin:<size> or hf:<name or folder>. */
  base: string;
  /** builtin:python-stdlib | builtin:arithmetic | a .jsonl path relative to the experiment file. */
  train: string;
  format: DataFormat;
  /** The evaluations (EVAL_CHOICES); default: the held-out losses. */
  evals?: readonly EvalChoice[];
}

/** data.format (text | instruction | chat), from the schema. */
export type DataFormat = NonNullable<ExperimentConfig['data']['format']>;

/** A valid experiment name from whatever the user typed. */
export function sanitizeName(input: string): string {
  const s = input.trim().replace(/\.finetune\.ya?ml$/, '').replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return s || 'experiment';
}

function yamlString(s: string): string {
  return /^[A-Za-z0-9_:./#@-]+$/.test(s) && !/^[-:#]/.test(s) ? s : JSON.stringify(s);
}

function learningEval(train: string): string {
  if (train === 'builtin:python-stdlib') return '{name: code, type: loss, data: builtin:python-stdlib#heldout}';
  if (train === 'builtin:arithmetic') return '{name: arithmetic, type: loss, data: builtin:arithmetic#heldout}';
  // A .jsonl has no built-in held-out split: point this at a file the run does not train on.
  return `{name: target, type: loss, data: ${yamlString(train)}}`;
}

function targetNote(train: string): string {
  if (train === 'builtin:python-stdlib') return 'target domain: Python code';
  if (train === 'builtin:arithmetic') return 'target domain: arithmetic word problems';
  return 'your data (relative to this file)';
}

/** The evals: section for the chosen evaluations (a role left empty gets its held-out loss). */
function evalLines(o: TemplateOptions, jsonl: boolean): string[] {
  const chosen = new Set<EvalChoice>(o.evals ?? ['losses']);
  const bench = EVAL_CHOICES.filter((c) => c.line && chosen.has(c.id));
  const learning = bench.filter((c) => c.role === 'learning').map((c) => `    - ${c.line}`);
  const forgetting = bench.filter((c) => c.role === 'forgetting').map((c) => `    - ${c.line}`);
  if (chosen.has('losses') || !learning.length) learning.unshift(`    - ${learningEval(o.train)}${jsonl ? '   # better: a held-out .jsonl' : ''}`);
  if (chosen.has('kl')) forgetting.unshift('    - {name: kl, type: kl_to_base, data: builtin:brown#heldout, n: 16}   # KL to the base: no labels needed');
  if (chosen.has('losses') || !forgetting.length) forgetting.unshift('    - {name: english, type: loss, data: builtin:brown#heldout}');
  const lines = [
    'evals:',
    bench.length
      ? '  every_steps: 200   # also at step 0; benchmarks cost more than losses: the dashboard shows the share of wall time'
      : '  every_steps: 50   # also at step 0, so forgetting is measured against the base',
    '  learning:   # how much the run learned on the target domain (paper: HumanEval, GSM8K)',
    ...learning,
    `  forgetting:   # how much it forgot of the source domain${bench.some((c) => c.role === 'forgetting') ? ' (paper: the mean of HellaSwag, WinoGrande, ARC-Challenge)' : '; without it there is no trade-off to see'}`,
    ...forgetting,
  ];
  if (bench.length) lines.splice(1, 0, '  # lm_eval tasks: lm-evaluation-harness on the live model; datasets from the Hugging Face cache or hub');
  return lines;
}

/** The experiment file's text, with the paper's defaults and short comments that say why. */
export function experimentTemplate(o: TemplateOptions): string {
  const method = o.kind === 'full' ? 'full' : 'lora';
  const jsonl = !o.train.startsWith('builtin:');
  const lines: string[] = [];
  const title = TEMPLATES.find((t) => t.kind === o.kind)?.label ?? o.kind;
  lines.push(
    `# Finetune Lab experiment: ${title}.`,
    '# Defaults from "LoRA Learns Less and Forgets Less" (Biderman et al., 2024, arXiv 2405.09673).',
    '# Hover a key for the paper\'s guidance; Start from the CodeLens above.',
    `name: ${o.name}`,
    'model:',
    `  base: ${yamlString(o.base)}${o.base.startsWith('builtin:') ? '   # pretrained once on English (builtin:brown) and cached: it has something to forget' : ''}`,
    'data:',
    `  train: ${yamlString(o.train)}   # ${targetNote(o.train)}`,
    `  format: ${o.format}   # text: continued pretraining; instruction: prompt/response, prompt masked out of the loss; chat: messages through the model's chat template, loss on the replies`,
    '  seq_len: 128',
    ...evalLines(o, jsonl),
    `method: ${method}   # lora | full`,
  );
  if (method === 'lora') {
    lines.push('lora:');
    if (o.kind === 'lora-vs-full') {
      lines.push('  # rank and alpha come from the sweep below; alpha defaults to 2·rank (paper\'s best practice)');
    } else {
      lines.push(
        '  rank: 16   # paper: 256 where memory allows; 16-64 is often not enough for code',
        '  alpha: 32   # alpha = 2·rank (paper\'s best practice)',
      );
    }
    lines.push(
      '  dropout: 0.05',
      '  target_modules: all   # all >= mlp > attention: the MLP modules matter most (paper §4)',
    );
  }
  lines.push('train:', '  steps: 200', '  batch_size: 16');
  if (o.kind === 'lora') lines.push('  lr: 2.0e-4   # LoRA\'s best LR is about 10x full finetuning\'s (paper: 5e-4 vs 5e-5 for code)');
  if (o.kind === 'full') lines.push('  lr: 2.0e-5   # full finetuning wants about 10x lower LR than LoRA');
  if (o.kind === 'lora-vs-full') lines.push('  # lr left out: 2e-4 for LoRA, 2e-5 for full (the paper\'s ~10x)');
  if (o.kind === 'lr-sweep') lines.push('  # lr comes from the sweep below');
  lines.push(
    '  schedule: cosine',
    '  warmup_steps: 10',
    'spectra:',
    '  every_steps: 100   # singular values of the weight change: full finetuning\'s is high rank, LoRA\'s cannot be',
    'checkpoint:',
    '  every_steps: 100',
  );
  if (o.kind === 'lora-vs-full') {
    lines.push(
      'sweep:   # every combination is a run; full runs ignore lora.rank, so duplicates are dropped',
      '  method: [full, lora]',
      '  lora.rank: [16, 64]',
    );
  }
  if (o.kind === 'lr-sweep') {
    lines.push(
      'sweep:   # LoRA is more sensitive to LR than full finetuning: take the highest stable one',
      '  train.lr: [1.0e-5, 5.0e-5, 2.0e-4, 5.0e-4]',
    );
  }
  return lines.join('\n') + '\n';
}
