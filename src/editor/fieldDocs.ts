// Hover text for each experiment key: the schema's own description (the contract) plus a short
// note from the paper where it gives guidance. Pure (no vscode import).
import { experimentSubschema } from '../core/defaults';

/** Guidance from Biderman et al. 2024 ("LoRA Learns Less and Forgets Less", arXiv 2405.09673). */
const PAPER_NOTES: Record<string, string> = {
  method: 'LoRA learns less on a new domain and forgets less of the source domain than full finetuning; which is better depends on where on the learning-vs-forgetting curve you want to be. Compare both on the Pareto plot.',
  'lora.rank': 'Full finetuning\'s weight change is high rank (10-100x typical LoRA ranks), so low ranks cap how much LoRA can learn, most visibly on code. Use 256 where memory allows.',
  'lora.alpha': 'Best practice: alpha = 2·rank. With a fixed alpha, raising the rank shrinks the update scale alpha/r.',
  'lora.target_modules': 'Target all modules: "all" ≥ "mlp" > "attention". The MLP modules matter most; attention-only LoRA learns least.',
  'lora.variant': 'rslora scales by alpha/√r, which keeps the update size stable at high ranks.',
  'lora.dropout': 'A small dropout (0.05-0.1) on the adapter input regularises LoRA.',
  'train.lr': 'LoRA is more sensitive to the learning rate than full finetuning, and its best LR is about 10x higher (paper: 5e-4 vs 5e-5 for code, 2e-4 vs 1e-5 for math). Sweep [1e-5, 5e-4] and take the highest stable one.',
  'train.steps': 'The gap between LoRA and full finetuning grows with training: full finetuning\'s weight change keeps gaining rank.',
  'data.format': 'The paper found LoRA closer to full finetuning for instruction finetuning than for continued pretraining; prefer LoRA for instruction data.',
  'data.train': 'The target domain: what the run should learn (paper: code and math).',
  evals: 'Every run is evaluated at step 0 too, so forgetting is always relative to the base model.',
  'evals.learning': 'Learning: a target-domain score (paper: HumanEval pass@1 for code, GSM8K for math).',
  'evals.forgetting': 'Forgetting: a source-domain score relative to the base (paper: mean of HellaSwag, WinoGrande, ARC-Challenge). Without a forgetting task there is no trade-off to see.',
  spectra: 'Full finetuning\'s ΔW needs a rank of 10-100x typical LoRA ranks to explain 90% of its variance, and more in MLP modules than attention. LoRA also adds "intruder dimensions" (Shuttleworth et al., arXiv 2410.21228).',
  'spectra.intruder_k': 'Intruders: among the top k singular vectors of the tuned weight, those whose max |cos| with every base singular vector is below ε (Shuttleworth et al. 2024).',
  sweep: 'Every combination becomes a run; duplicates that differ only in settings the method ignores are dropped. Sweep method × rank to see both ends of the curve, and the learning rate for each method separately.',
  'model.base': 'The built-in models are pretrained once on English prose (builtin:brown), so finetuning on code has something to forget.',
};

/** Markdown for a path like ['lora', 'rank'] or ['evals', 'learning', 0, 'type'] (array indices skipped). */
export function fieldDoc(path: readonly (string | number)[]): string | undefined {
  const keys = path.filter((p): p is string => typeof p === 'string');
  if (!keys.length) return undefined;
  const dotted = keys.join('.');
  // Sweep axes are dotted keys into the experiment itself: explain the key they sweep.
  if (keys[0] === 'sweep' && keys.length === 2) {
    const swept = fieldDoc(keys[1].split('.'));
    return [`**sweep axis \`${keys[1]}\`**: one run per listed value.`, swept].filter(Boolean).join('\n\n');
  }
  const schema = experimentSubschema(keys) ?? evalTaskSchema(keys);
  const parts: string[] = [`**\`${dotted}\`**`];
  const desc = schema && typeof schema.description === 'string' ? schema.description : undefined;
  if (desc) parts.push(desc);
  if (schema && Array.isArray(schema.enum)) parts.push(`Values: ${schema.enum.map((v) => `\`${String(v)}\``).join(', ')}.`);
  if (schema && 'default' in schema) parts.push(`Default: \`${JSON.stringify(schema.default)}\`.`);
  const note = PAPER_NOTES[dotted];
  if (note) parts.push(`*Paper:* ${note}`);
  return parts.length > 1 ? parts.join('\n\n') : undefined;
}

function evalTaskSchema(keys: string[]): Record<string, unknown> | undefined {
  // evals.learning[i].<key>: a property of one of the eval task shapes (chosen by `type`; the first
  // that has the key; `type` itself lists every type).
  if (keys.length !== 3 || keys[0] !== 'evals' || (keys[1] !== 'learning' && keys[1] !== 'forgetting')) return undefined;
  type Def = { properties?: Record<string, Record<string, unknown>> };
  const defs = (experimentSubschema([]) as { definitions?: Record<string, Def> } | undefined)?.definitions ?? {};
  const shapes = ['evalTaskBuiltin', 'evalTaskLmEval', 'evalTaskKl'].map((n) => defs[n]?.properties ?? {});
  if (keys[2] === 'type') {
    const values = shapes.flatMap((p) => (Array.isArray(p.type?.enum) ? p.type.enum : p.type?.const !== undefined ? [p.type.const] : []));
    return { ...shapes[0].type, enum: values };
  }
  const found = shapes.find((p) => keys[2] in p)?.[keys[2]];
  return found && typeof found.$ref === 'string' ? { ...(defs[found.$ref.split('/').pop()!] as Record<string, unknown>), ...found } : found;
}
