/**
 * The learning-vs-forgetting Pareto frontier (Biderman et al. 2024, Fig. 1/§4.3): over all
 * (run, eval step) points, those that no other point beats on both axes — less forgetting AND
 * more learning. Scores carry their direction (`higher_is_better` in eval events): a loss is
 * better low, an accuracy high. We turn both into "bigger is better"-free quantities:
 *   cost = forgetting, to minimise (value for a loss; -value for an accuracy)
 *   gain = learning, to maximise (value for an accuracy; -value for a loss)
 */
export interface ScorePoint {
  /** Source-domain score (or its change from the base). */
  forgetting: number;
  /** Target-domain score (or its change from the base). */
  learning: number;
}

export interface Directions {
  forgettingHigherIsBetter: boolean;
  learningHigherIsBetter: boolean;
}

export function cost(p: ScorePoint, d: Directions): number {
  return d.forgettingHigherIsBetter ? -p.forgetting : p.forgetting;
}

export function gain(p: ScorePoint, d: Directions): number {
  return d.learningHigherIsBetter ? p.learning : -p.learning;
}

/** True when a is at least as good as b on both axes and strictly better on one. */
export function dominates(a: ScorePoint, b: ScorePoint, d: Directions): boolean {
  const ca = cost(a, d), cb = cost(b, d), ga = gain(a, d), gb = gain(b, d);
  return ca <= cb && ga >= gb && (ca < cb || ga > gb);
}

/**
 * Indices of the non-dominated points, ordered from least forgetting to most (and so from
 * least learning to most). Exact duplicates are kept once. O(n log n): sort by cost, sweep.
 * Non-finite points are ignored.
 */
export function paretoFrontier(points: readonly ScorePoint[], d: Directions): number[] {
  const ids = points
    .map((_, i) => i)
    .filter((i) => Number.isFinite(points[i].forgetting) && Number.isFinite(points[i].learning))
    .sort((i, j) => cost(points[i], d) - cost(points[j], d) || gain(points[j], d) - gain(points[i], d));
  const out: number[] = [];
  let best = -Infinity;
  for (const i of ids) {
    const g = gain(points[i], d);
    if (g > best) { out.push(i); best = g; }
  }
  return out;
}
