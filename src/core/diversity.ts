// How diverse N samples of one prompt are (paper §4.5: LoRA keeps generations more diverse than
// full finetuning; it counted unique outputs among 50 samples). The playground shows, per model:
// - unique: how many samples are distinct strings (the paper's measure; exact match after trimming);
// - distinct-1/2/3: unique n-grams / total n-grams pooled over all samples (Li et al. 2016,
//   arXiv 1510.03055), the usual lexical-diversity numbers for sampled text;
// - mean pairwise Jaccard similarity of the samples' word sets (lower = more diverse), the overlap
//   between any two samples, which distinct-n pooled over samples does not show directly.
// n-grams are over words (runs of letters/digits/_ and single punctuation marks), not model tokens:
// the same unit for every column whatever its tokenizer, and meaningful for code as for prose.

export interface Diversity {
  samples: number;
  unique: number;
  /** null where the samples hold no n-gram of that order. */
  distinct1: number | null;
  distinct2: number | null;
  distinct3: number | null;
  /** null with fewer than two samples. */
  meanJaccard: number | null;
  /** Mean words per sample. */
  meanWords: number;
}

/** Words and single punctuation marks; whitespace separates and is dropped. */
export function words(text: string): string[] {
  return text.match(/[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu) ?? [];
}

/** unique n-grams / total n-grams over all samples; null when there are none. */
export function distinctN(tokenized: readonly (readonly string[])[], n: number): number | null {
  const seen = new Set<string>();
  let total = 0;
  for (const ws of tokenized) {
    for (let i = 0; i + n <= ws.length; i++) { seen.add(ws.slice(i, i + n).join('\u0000')); total++; }
  }
  return total ? seen.size / total : null;
}

/** |A ∩ B| / |A ∪ B| of two word sets; 1 for two empty samples (they are the same). */
export function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let inter = 0;
  for (const x of a) if (b.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}

export function diversity(texts: readonly string[]): Diversity {
  const tokenized = texts.map(words);
  const sets = tokenized.map((ws) => new Set(ws));
  let pairs = 0, sum = 0;
  for (let i = 0; i < sets.length; i++) for (let j = i + 1; j < sets.length; j++) { sum += jaccard(sets[i], sets[j]); pairs++; }
  return {
    samples: texts.length,
    unique: new Set(texts.map((t) => t.trim())).size,
    distinct1: distinctN(tokenized, 1),
    distinct2: distinctN(tokenized, 2),
    distinct3: distinctN(tokenized, 3),
    meanJaccard: pairs ? sum / pairs : null,
    meanWords: texts.length ? tokenized.reduce((a, ws) => a + ws.length, 0) / texts.length : 0,
  };
}
