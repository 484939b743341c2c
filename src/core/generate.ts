// The playground's generation loop, with the model behind an abstract `logits` function so it runs
// (and is tested) without onnxruntime. The ONNX graphs have no KV cache (schemas/export.schema.json,
// docs/DECISIONS.md): every step runs the whole window again. The N samples of one model share a
// length at every step (same prompt, one token each per step), so they go through the model as one
// batch; a sample that reaches eos leaves the batch and is reported at once.
import { mulberry32, sampleNext, type SamplerSettings } from './sampler';

/**
 * ids: int64 [batch, seq], row-major. Returns float32 logits [batch, seq, vocab] (what the ONNX
 * graph gives) or only the last position's [batch, vocab].
 */
export type LogitsFn = (ids: BigInt64Array, dims: readonly [batch: number, seq: number]) => Promise<Float32Array>;

export interface GenerateOptions {
  /** bos (if any) + the encoded, wrapped prompt. */
  prompt: readonly number[];
  samples: number;
  maxNewTokens: number;
  /** The model's context; only the last maxPositions tokens are fed to it. */
  maxPositions: number;
  vocabSize: number;
  eosId: number | null;
  /**
   * Ids never sampled: tokens training never made a target (bos, pad). A little-trained model can
   * still put mass on them, and they decode to nothing, so a sample would look shorter than it is.
   */
  banned?: readonly number[];
  sampler: SamplerSettings;
  /** Sample i draws from the stream seeded with seed + i. */
  seed: number;
  signal?: AbortSignal;
  /** Called once per sample, as soon as it ends (eos or maxNewTokens). */
  onSample?: (s: GeneratedSample) => void;
}

export interface GeneratedSample {
  index: number;
  seed: number;
  /** The new tokens, without the eos. */
  tokens: number[];
  stop: 'eos' | 'length';
}

/** Thrown (by `generate`) when the signal aborts; the samples finished before it are in `done`. */
export class GenerationCancelled extends Error {
  constructor(readonly done: GeneratedSample[]) { super('generation cancelled'); this.name = 'GenerationCancelled'; }
}

/** `samples` continuations of one prompt, in index order. */
export async function generate(logits: LogitsFn, o: GenerateOptions): Promise<GeneratedSample[]> {
  if (o.prompt.length === 0) throw new Error('generate: an empty prompt (no bos and no text) gives the model nothing to continue');
  const done: GeneratedSample[] = [];
  const live = Array.from({ length: o.samples }, (_, index) => ({ index, seed: o.seed + index, rand: mulberry32(o.seed + index), tokens: [] as number[] }));
  const finish = (s: (typeof live)[number], stop: GeneratedSample['stop']): void => {
    const out: GeneratedSample = { index: s.index, seed: s.seed, tokens: s.tokens, stop };
    done.push(out);
    o.onSample?.(out);
  };
  if (o.maxNewTokens <= 0) for (const s of live.splice(0)) finish(s, 'length');
  while (live.length) {
    if (o.signal?.aborted) throw new GenerationCancelled(done);
    const full = o.prompt.length + live[0].tokens.length;
    const seq = Math.min(full, o.maxPositions);
    const ids = new BigInt64Array(live.length * seq);
    live.forEach((s, b) => {
      // The window: the last `seq` tokens of prompt + generated.
      for (let t = 0; t < seq; t++) {
        const pos = full - seq + t;
        ids[b * seq + t] = BigInt(pos < o.prompt.length ? o.prompt[pos] : s.tokens[pos - o.prompt.length]);
      }
    });
    const out = await logits(ids, [live.length, seq]);
    if (o.signal?.aborted) throw new GenerationCancelled(done);
    const perRow = out.length / live.length;
    if (perRow !== seq * o.vocabSize && perRow !== o.vocabSize) throw new Error(`logits: expected [${live.length}, ${seq}, ${o.vocabSize}] floats, got ${out.length}`);
    const still: typeof live = [];
    live.forEach((s, b) => {
      const end = (b + 1) * perRow;
      let row = out.subarray(end - o.vocabSize, end);
      if (o.banned?.length) {
        row = Float32Array.from(row);
        for (const t of o.banned) if (t >= 0 && t < row.length) row[t] = -Infinity;
      }
      const id = sampleNext(row, o.sampler, s.rand);
      if (id === o.eosId) return finish(s, 'eos');
      s.tokens.push(id);
      if (s.tokens.length >= o.maxNewTokens) return finish(s, 'length');
      still.push(s);
    });
    live.splice(0, live.length, ...still);
  }
  return done.sort((a, b) => a.index - b.index);
}

/** Settings of exports/<label>/export.json's prompt_format. */
export interface PromptFormat { format?: 'text' | 'instruction'; template?: string }

/**
 * The prompt as the run's data showed prompts: instruction runs put it into their template at
 * `{prompt}` (every occurrence); text runs (continued pretraining) see it as is.
 */
export function wrapPrompt(prompt: string, fmt: PromptFormat | undefined): string {
  if (fmt?.format !== 'instruction' || !fmt.template || !fmt.template.includes('{prompt}')) return prompt;
  return fmt.template.split('{prompt}').join(prompt);
}

/** The start token + the encoded prompt (see startTokenId). */
export function promptIds(encoded: readonly number[], startId: number | null): number[] {
  return startId === null ? [...encoded] : [startId, ...encoded];
}

/**
 * What the model saw before a prompt in training (trainer/finetune_lab/data.py): instruction
 * examples start with bos; text is one stream of documents joined by eos, so a document follows
 * eos (bos never occurs in text training: starting a text prompt with it would be unseen input).
 */
export function startTokenId(fmt: PromptFormat | undefined, bosId: number | null, eosId: number | null): number | null {
  return fmt?.format === 'instruction' ? bosId : eosId;
}
