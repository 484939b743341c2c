// Paper lints: settings that "LoRA Learns Less and Forgets Less" (Biderman et al., TMLR 2024,
// arXiv 2405.09673) found to matter, flagged as warnings with the reason and the source. Each lint
// has a stable code. With a sweep, a lint fires only if every applicable run of the grid trips it:
// a sweep that includes a recommended point is fine.
import type { ExperimentConfig } from './generated/experiment';
import type { Diagnostic, DiagnosticFix, Severity } from './diagnostics';
import { expandSweep, formatValue } from './sweep';
import { locate, rangeOf, type YamlSource } from './yamlPositions';

export const PAPER = 'Biderman et al., "LoRA Learns Less and Forgets Less", TMLR 2024 (arXiv 2405.09673)';

const ATTENTION_NAMES = /^(q|k|v|o|qkv|c_attn|query|key|value|out|attn|self_attn|q_proj|k_proj|v_proj|o_proj|out_proj|query_key_value|dense)$/;

interface Lint {
  code: string;
  severity: Severity;
  /** The settings the lint reads; the first one that is swept or written locates the diagnostic. */
  paths: string[];
  applies: (c: ExperimentConfig) => boolean;
  trips: (c: ExperimentConfig) => boolean;
  message: (c: ExperimentConfig) => string;
  cite: string;
  fix?: (c: ExperimentConfig) => DiagnosticFix | undefined;
}

const lr = (c: ExperimentConfig): number => c.train?.lr ?? 0;

export const LINTS: Lint[] = [
  {
    code: 'lint-lora-lr-low', severity: 'warning', paths: ['train.lr', 'method'],
    applies: (c) => c.method === 'lora', trips: (c) => lr(c) < 5e-5,
    message: (c) => `LoRA learning rate ${formatValue(lr(c))} is low: LoRA needs about 10x the learning rate of full finetuning; the paper's best LoRA rates were 1e-4 to 5e-4 (sweep and take the highest stable one)`,
    cite: `${PAPER}, learning-rate sensitivity and best practices`,
    fix: () => ({ path: 'train.lr', value: 2e-4, title: 'Set train.lr to 2e-4' }),
  },
  {
    code: 'lint-full-lr-high', severity: 'warning', paths: ['train.lr', 'method'],
    applies: (c) => c.method === 'full', trips: (c) => lr(c) > 1e-4,
    message: (c) => `full-finetuning learning rate ${formatValue(lr(c))} is high for a pretrained model: the paper's best full-finetuning rates were 1e-5 to 5e-5 (small built-in models tolerate more)`,
    cite: `${PAPER}, learning-rate sensitivity`,
    fix: () => ({ path: 'train.lr', value: 2e-5, title: 'Set train.lr to 2e-5' }),
  },
  {
    code: 'lint-alpha-not-2r', severity: 'warning', paths: ['lora.alpha', 'lora.rank'],
    applies: (c) => c.method === 'lora', trips: (c) => c.lora?.alpha !== 2 * (c.lora?.rank ?? 16),
    message: (c) => `lora.alpha is ${c.lora?.alpha} but rank is ${c.lora?.rank}: the paper's best practice is alpha = 2·rank`,
    cite: `${PAPER}, best practices`,
    fix: (c) => ({ path: 'lora.alpha', value: 2 * (c.lora?.rank ?? 16), title: `Set lora.alpha to ${2 * (c.lora?.rank ?? 16)}` }),
  },
  {
    code: 'lint-attention-only', severity: 'warning', paths: ['lora.target_modules', 'method'],
    applies: (c) => c.method === 'lora',
    trips: (c) => {
      const t = c.lora?.target_modules ?? 'all';
      return t === 'attention' || (Array.isArray(t) && t.every((n) => ATTENTION_NAMES.test(n.split('.').pop() ?? n)));
    },
    message: () => 'LoRA on attention only: the paper found target modules the second most important setting, with MLP mattering most (all ≥ mlp > attention)',
    cite: `${PAPER}, target modules`,
    fix: () => ({ path: 'lora.target_modules', value: 'all', title: "Set lora.target_modules to 'all'" }),
  },
  {
    code: 'lint-low-rank-code', severity: 'warning', paths: ['lora.rank', 'data.train', 'method'],
    applies: (c) => c.method === 'lora' && /python-stdlib/.test(c.data.train), trips: (c) => (c.lora?.rank ?? 16) < 64,
    message: (c) => `rank ${c.lora?.rank} for code: the paper found ranks 16–64 often not enough for code and used 256 where memory allows`,
    cite: `${PAPER}, rank and best practices`,
  },
  {
    code: 'lint-lora-continued-pretraining', severity: 'info', paths: ['data.format', 'method'],
    applies: (c) => c.method === 'lora', trips: (c) => (c.data.format ?? 'text') === 'text',
    message: () => 'LoRA for continued pretraining (data.format text): the paper found LoRA closer to full finetuning for instruction finetuning than for continued pretraining',
    cite: `${PAPER}, continued pretraining vs instruction finetuning`,
  },
  {
    code: 'lint-no-forgetting-eval', severity: 'warning', paths: ['evals.forgetting', 'evals'],
    applies: () => true, trips: (c) => !(c.evals?.forgetting?.length),
    message: () => 'no forgetting eval: without a source-domain score (e.g. builtin:brown#heldout) nothing can show the learning-vs-forgetting trade-off',
    cite: `${PAPER}, forgetting is measured on the source domain`,
    fix: () => ({ path: 'evals.forgetting', value: [{ name: 'english', type: 'loss', data: 'builtin:brown#heldout' }], title: 'Add an English (builtin:brown) forgetting eval' }),
  },
];

/** Lints a defaults-filled config (every point of its sweep); diagnostics point into `src`. */
export function lintExperiment(cfg: ExperimentConfig, src: YamlSource): Diagnostic[] {
  let runs: ExperimentConfig[];
  try { runs = expandSweep(cfg).map((r) => r.config); } catch { runs = [cfg]; }
  const sweep = (cfg.sweep ?? {}) as Record<string, unknown>;
  const out: Diagnostic[] = [];
  for (const lint of LINTS) {
    const applicable = runs.filter(lint.applies);
    if (!applicable.length || !applicable.every(lint.trips)) continue;
    const first = applicable[0];
    // The first of the lint's settings that the file sets (in the sweep or directly) locates it.
    let anchor = lint.paths[lint.paths.length - 1].split('.');
    let swept = false;
    for (const p of lint.paths) {
      if (p in sweep) { anchor = ['sweep', p]; swept = true; break; }
      if (locate(src.doc, p.split('.')).depth === p.split('.').length) { anchor = p.split('.'); break; }
    }
    const range = rangeOf(src, anchor, swept ? 'key' : 'value');
    const fix = !swept ? lint.fix?.(first) : undefined;
    const d: Diagnostic = { severity: lint.severity, message: lint.message(first), ...range, path: anchor.join('.'), code: lint.code, cite: lint.cite };
    if (fix) d.fix = fix;
    out.push(d);
  }
  return out;
}
