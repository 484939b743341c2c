/**
 * Rank advice from a full-finetuning pilot run's spectra. Full finetuning's ΔW is the change
 * LoRA would have to express; its rank90 (smallest k with Σ_{i≤k} σ_i² ≥ 0.9 Σ σ_i²) says how
 * many directions that takes. The paper (Biderman et al. 2024, §5–6) found MLP changes need
 * more rank than attention, and recommends targeting all modules, alpha = 2·rank, and rank
 * 256 where memory allows. We take the median rank90 per kind at the latest step and pick the
 * smallest affordable rank that covers it.
 */
export interface SpectrumSummary {
  step: number;
  kind: 'attention' | 'mlp';
  rank90: number;
  shape: readonly number[];
  random_rank90?: number | null;
}

export type TargetModules = 'all' | 'mlp' | 'attention';

export interface RankAdvice {
  ok: boolean;
  text: string;
  step?: number;
  medianRank90?: { attention: number | null; mlp: number | null };
  suggested?: { rank: number; alpha: number; target_modules: TargetModules };
}

export const DEFAULT_AFFORDABLE_RANKS: readonly number[] = [4, 8, 16, 32, 64, 128, 256];

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * @param method the run's method: advice needs a full-finetuning run (a LoRA run's ΔW is
 *   bounded by its own rank, so it cannot say how much rank the task wants).
 * @param affordable ranks the user can afford (memory), ascending.
 */
export function adviseRank(
  spectra: readonly SpectrumSummary[],
  method: 'full' | 'lora' | string,
  affordable: readonly number[] = DEFAULT_AFFORDABLE_RANKS,
): RankAdvice {
  if (method !== 'full') return { ok: false, text: 'Rank advice needs a full-finetuning pilot run: a LoRA run\'s change is capped by its own rank.' };
  if (spectra.length === 0) return { ok: false, text: 'No spectra yet: rank advice appears after the first spectrum analysis.' };
  const step = Math.max(...spectra.map((s) => s.step));
  const at = spectra.filter((s) => s.step === step);
  const att = median(at.filter((s) => s.kind === 'attention').map((s) => s.rank90));
  const mlp = median(at.filter((s) => s.kind === 'mlp').map((s) => s.rank90));
  const need = Math.max(att ?? 0, mlp ?? 0);
  const ranks = [...affordable].sort((a, b) => a - b);
  const covering = ranks.find((r) => r >= need);
  const rank = covering ?? ranks[ranks.length - 1];
  // Attention changes far lower rank than MLP: MLP carries the change; all is still safest.
  const target: TargetModules = att === null ? 'mlp' : mlp === null ? 'attention'
    : att * 4 <= mlp ? 'mlp' : 'all';
  const randoms = at.map((s) => s.random_rank90).filter((v): v is number => typeof v === 'number');
  const randomMed = median(randoms);
  const fmt = (v: number | null): string => (v === null ? 'n/a' : String(Math.round(v * 10) / 10));
  const parts = [
    `At step ${step}, full finetuning's ΔW has median rank90 ${fmt(mlp)} in MLP and ${fmt(att)} in attention matrices` +
      (randomMed !== null ? ` (a random matrix of the same shape: ${fmt(randomMed)}).` : '.'),
    covering !== undefined
      ? `LoRA rank ${rank} covers it: use r=${rank}, alpha=${2 * rank}, target_modules: ${target}.`
      : `Even r=${rank} is below it: LoRA will learn less than full finetuning here; use r=${rank}, alpha=${2 * rank}, target_modules: ${target}, or full finetuning if you need the learning.`,
    target === 'mlp' ? 'Attention changes are much lower rank than MLP ones; "all" remains the paper\'s safest choice if memory allows.'
      : 'The paper found targeting all modules best (all ≥ mlp > attention).',
    'rank90 grows with training: advice from a short pilot is a lower bound.',
  ];
  return { ok: true, text: parts.join(' '), step, medianRank90: { attention: att, mlp }, suggested: { rank, alpha: 2 * rank, target_modules: target } };
}

/**
 * A y scale for rank90 charts that keeps the bars readable. A LoRA run's rank90 (≤ its rank,
 * often 1–4) next to the random-matrix reference (≈ 65–98 for 128×128 / 512×128) would be a
 * few pixels tall if the axis went up to the reference, so the axis is set by the data and
 * the LoRA rank; a reference is inside the scale only when it is at most `fit`× that (bars
 * then still fill ≥ 1/fit of the height), otherwise it is reported as off scale (drawn as a
 * labelled marker at the top edge, webview/common/charts.ts).
 */
export interface RankScale { max: number; offScale: number[] }

export function rank90Scale(dataMax: number, loraRank: number | null, references: readonly number[], fit = 2, headroom = 1.15): RankScale {
  const base = Math.max(1, Number.isFinite(dataMax) ? dataMax : 0, loraRank ?? 0);
  const inside = references.filter((r) => r <= base * fit);
  const offScale = references.filter((r) => r > base * fit);
  return { max: Math.ceil(Math.max(base, ...inside) * headroom), offScale };
}

/**
 * Side-by-side runs share a y scale only when it keeps each readable: the shared maximum may
 * be at most `ratio`× a run's own. Returns the maximum to use for each run, in order.
 */
export function sharedScale(own: readonly number[], ratio = 2.5): number[] {
  const top = Math.max(...own);
  return own.map((m) => (top <= m * ratio ? top : m));
}
