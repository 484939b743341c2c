// Next-token sampling for the playground: temperature, top-k, top-p (nucleus, Holtzman et al. 2020,
// arXiv 1904.09751), greedy at temperature 0. Deterministic given a seed: each sample owns a
// Mulberry32 stream, so sample i of every model draws the same uniform numbers (same prompt, same
// seeds: differences between columns come from the models, not the dice).

export interface SamplerSettings {
  /** 0 = greedy (argmax). */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
}

/** Mulberry32: a 32-bit-state PRNG, uniform in [0, 1); tiny, fast and good enough for sampling. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The index of the largest logit (the first one on ties, as torch.argmax). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/**
 * The distribution actually sampled from: ids and probabilities, most likely first, after
 * temperature, top-k and top-p. Top-p keeps the smallest prefix whose mass reaches p (at least one
 * id), as Hugging Face's TopPLogitsWarper does. Exported so tests check it on hand-made logits.
 */
export function candidates(logits: ArrayLike<number>, s: SamplerSettings): { ids: number[]; probs: number[] } {
  const n = logits.length;
  let ids = Array.from({ length: n }, (_, i) => i).filter((i) => logits[i] > -Infinity); // -inf (masked) and NaN never win
  if (!ids.length) return { ids: [0], probs: [1] };
  ids.sort((a, b) => logits[b] - logits[a] || a - b);
  if (s.topK > 0 && s.topK < ids.length) ids = ids.slice(0, s.topK);
  const max = logits[ids[0]];
  // Softmax of logits / T, shifted by the max for stability.
  let probs = ids.map((i) => Math.exp((logits[i] - max) / s.temperature));
  let sum = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / sum);
  if (s.topP > 0 && s.topP < 1) {
    let cum = 0, keep = 0;
    while (keep < probs.length) { cum += probs[keep++]; if (cum >= s.topP - 1e-12) break; }
    ids = ids.slice(0, keep);
    probs = probs.slice(0, keep);
    sum = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / sum);
  }
  return { ids, probs };
}

/** One next-token id from `logits` (vocab_size floats), drawing from `rand` unless greedy. */
export function sampleNext(logits: ArrayLike<number>, s: SamplerSettings, rand: () => number): number {
  if (!(s.temperature > 0)) return argmax(logits);
  const { ids, probs } = candidates(logits, s);
  const u = rand();
  let cum = 0;
  for (let k = 0; k < ids.length; k++) { cum += probs[k]; if (u < cum) return ids[k]; }
  return ids[ids.length - 1]; // rounding left u above the last cumulative sum
}
