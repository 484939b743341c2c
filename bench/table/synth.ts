// Synthetic runs for the runs table's benchmark and live-update check: experiments of sweeps over
// method, rank, lr and seed, each run's scores folded from its events by the core's ScoreFold.
import { scoreEvents } from '../../src/core/runScores';
import type { RunInput } from '../../src/core/tableRows';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 4294967296; };
}

/** n runs: experiments of sweeps over method, rank, lr and seed, each with evals, spectra and throughput. */
export function synthRuns(n: number): RunInput[] {
  const r = rng(7);
  const out: RunInput[] = [];
  for (let i = 0; i < n; i++) {
    const exp = `exp-${i % 20}`;
    const method = i % 5 === 0 ? 'full' : 'lora';
    const rank = [4, 8, 16, 32, 64, 128][i % 6];
    const lr = [1e-4, 3e-4, 1e-3, 3e-3][(i >> 3) % 4];
    const code = 2.4 - 0.5 * r() - (method === 'full' ? 0.2 : 0.02 * Math.log2(rank));
    const english = 2.1 + 0.4 * r() + (method === 'full' ? 0.1 : 0);
    const ev = (step: number, c: number, e: number) => ({ v: 1, type: 'eval', time: 1000 + step, step,
      tasks: [{ name: 'code', role: 'learning', type: 'loss', metric: 'loss', value: c, higher_is_better: false }, { name: 'english', role: 'forgetting', type: 'loss', metric: 'loss', value: e, higher_is_better: false }],
      learning: { value: c, higher_is_better: false, delta: c - 2.4 }, forgetting: { value: e, higher_is_better: false, delta: e - 2.1 } });
    const events = [
      { v: 1, type: 'run_started', time: 1000, method, total_steps: 300, config: {} },
      ev(0, 2.4, 2.1),
      { v: 1, type: 'train', time: 1100, step: 150, loss: code + 0.1, lr, grad_norm: 1, tokens_per_s: 5000 + 3000 * r(), tokens: 1e5, memory_mb: 400 + 300 * r() },
      ev(150, (code + 2.4) / 2, (english + 2.1) / 2),
      { v: 1, type: 'train', time: 1200, step: 300, loss: code, lr, grad_norm: 1, tokens_per_s: 5000 + 3000 * r(), tokens: 2e5, memory_mb: 400 + 300 * r() },
      ev(300, code, english),
      ...['attention', 'mlp'].map((kind) => ({ v: 1, type: 'spectrum', time: 1200, step: 300, module: `m.${kind}`, layer: 0, kind, shape: [128, 128], singular_values: [1], rank90: Math.round(3 + 20 * r()), intruders: Math.round(5 * r()) })),
      { v: 1, type: 'run_finished', time: 1210, status: 'completed', error: null },
    ];
    const config = {
      name: exp, model: { base: 'builtin:small' }, data: { train: 'builtin:python-stdlib', format: 'text', seq_len: 128 }, method,
      train: { steps: 300, lr, seed: i % 3, batch_size: 16 },
      ...(method === 'lora' ? { lora: { rank, alpha: 2 * rank, target_modules: 'all', variant: 'lora' } } : {}),
    };
    out.push({
      id: `${exp}-20250301-101500-${method === 'full' ? 'full' : `lora-r${rank}`}-lr${lr}-${i}`,
      meta: { experiment_name: exp, sweep_id: `${exp}-sweep`, sweep_size: n / 20, label: `${method === 'full' ? 'full' : `lora-r${rank}`}-lr${lr}-s${i % 3}`, created: 1_700_000_000 + i },
      state: i % 97 === 0 ? 'running' : 'completed', stale: false, error: null, step: 300, totalSteps: 300, config, scores: scoreEvents(events),
    });
  }
  return out;
}

