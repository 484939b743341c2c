/**
 * Synthetic but realistic events.jsonl for the views' harness and benchmark, shaped like the
 * trainer's (schemas/events.schema.json) and scaled like the plain-PyTorch CPU reproduction made before this repo (bench/demo/RESULTS.md): base
 * code loss 2.40 / English 2.11; full lr 3e-3 reaches code 1.91 forgetting +0.44; LoRA r64
 * 2.11 / +0.31; r16 +0.33; r4 +0.36; ΔW rank90 full 11–17 growing, LoRA r4/16/64 → 3/7/12;
 * random rank90 66 (128×128) and 98 (128×512).
 */
export interface SynthRun { id: string; method: 'full' | 'lora'; rank: number | null; lr: number; finalCode: number; forget: number; r90: number; steps: number }

export const RUNS: SynthRun[] = [
  { id: 'code-cpt-20250301-101500-full-lr3e-3', method: 'full', rank: null, lr: 3e-3, finalCode: 1.91, forget: 0.44, r90: 17, steps: 300 },
  { id: 'code-cpt-20250301-101500-full-lr3e-4', method: 'full', rank: null, lr: 3e-4, finalCode: 2.17, forget: 0.34, r90: 11, steps: 300 },
  { id: 'code-cpt-20250301-101500-lora-r64-lr2e-3', method: 'lora', rank: 64, lr: 2e-3, finalCode: 2.11, forget: 0.31, r90: 12, steps: 300 },
  { id: 'code-cpt-20250301-101500-lora-r16-lr5e-3', method: 'lora', rank: 16, lr: 5e-3, finalCode: 2.17, forget: 0.325, r90: 7, steps: 300 },
  { id: 'code-cpt-20250301-101500-lora-r4-lr1e-2', method: 'lora', rank: 4, lr: 1e-2, finalCode: 2.29, forget: 0.36, r90: 3, steps: 300 },
];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 4294967296; };
}
const gauss = (r: () => number): number => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());

const MODULES: [string, 'attention' | 'mlp', [number, number]][] = [
  ['q_proj', 'attention', [128, 128]], ['k_proj', 'attention', [128, 128]], ['v_proj', 'attention', [128, 128]], ['o_proj', 'attention', [128, 128]],
  ['gate_proj', 'mlp', [512, 128]], ['up_proj', 'mlp', [512, 128]], ['down_proj', 'mlp', [128, 512]],
];

/** Singular values whose rank90 is about r90: a power-law head plus a small noise floor. */
function spectrum(r90: number, cap: number | null, rand: () => number): { sv: number[]; rank90: number } {
  const n = cap ?? 128;
  const sv: number[] = [];
  for (let i = 0; i < Math.min(64, n); i++) sv.push((i < r90 ? 1 / Math.pow(i + 1, 0.35) : 0.18 / Math.pow(i + 1 - r90 + 1, 0.9)) * (0.9 + 0.2 * rand()) * 0.05);
  sv.sort((a, b) => b - a);
  const tot = sv.reduce((a, v) => a + v * v, 0);
  let acc = 0, k = 0;
  while (acc < 0.9 * tot) acc += sv[k++] ** 2;
  return { sv, rank90: k };
}

export function synthEvents(run: SynthRun, opts: { trainEvery?: number; failAt?: number } = {}): object[] {
  const rand = rng(run.id.length * 7919 + run.lr * 1e6);
  const ev: object[] = [];
  const t0 = 1740823000;
  const time = (s: number): number => t0 + s * 0.45;
  ev.push({ v: 1, type: 'run_started', time: t0, device: 'cpu', precision: 'fp32', method: run.method, model: 'builtin:small', world_size: 1,
    params: { total: 1_060_000, trainable: run.method === 'full' ? 1_060_000 : run.rank! * 2 * 128 * 7 * 4 }, total_steps: run.steps, resumed_from: null,
    config: { name: 'code-cpt', method: run.method, lora: { rank: run.rank ?? 16, alpha: 2 * (run.rank ?? 16), target_modules: 'all', dropout: 0.05, variant: 'lora' }, train: { steps: run.steps, lr: run.lr, batch_size: 16, warmup_steps: 30, schedule: 'cosine' } } });
  const code = (s: number): number => run.finalCode + (2.40 - run.finalCode) * Math.exp(-s / 70);
  const eng = (s: number): number => 2.11 + run.forget * (1 - Math.exp(-s / 35));
  // The paper's benchmarks through lm-eval (eval type lm_eval): HumanEval pass@1 learns with the code
  // loss; HellaSwag and ARC-Challenge (acc_norm) drop as English is forgotten; KL to the base grows.
  const he = (s: number): number => 0.06 + (0.75 - 0.3 * run.finalCode) * (1 - Math.exp(-s / 70)) * 0.3;
  const hs = (s: number): number => 0.312 - 0.12 * run.forget * (1 - Math.exp(-s / 35));
  const arc = (s: number): number => 0.246 - 0.08 * run.forget * (1 - Math.exp(-s / 35));
  const kl = (s: number): number => (s ? 0.9 * run.forget * (1 - Math.exp(-s / 35)) : 0);
  const lm = (name: string, task: string, metric: string, value: number, n: number, stderr: number, role: 'learning' | 'forgetting', seconds: number) => (
    { name, role, type: 'lm_eval', task, metric, value, higher_is_better: true, n, version: '1.0', stderr, num_fewshot: 0, limit: n, seconds });
  const base = { learning: (-2.40 + he(0)) / 2, forgetting: (-2.11 + hs(0) + arc(0) - 0) / 4 };
  const evalAt = (s: number): void => {
    const c = code(s) + (s ? 0.01 * gauss(rand) : 0), e = eng(s) + (s ? 0.008 * gauss(rand) : 0);
    const t = { he: he(s) + (s ? 0.002 * gauss(rand) : 0), hs: hs(s) + (s ? 0.004 * gauss(rand) : 0), arc: arc(s) + (s ? 0.006 * gauss(rand) : 0), kl: kl(s) };
    // mixed directions: the trainer negates the lower-is-better values and the mean is higher-is-better
    const learning = (-c + t.he) / 2, forgetting = (-e + t.hs + t.arc - t.kl) / 4;
    ev.push({ v: 1, type: 'eval', time: time(s), step: s, seconds: 1.4,
      tasks: [{ name: 'code', role: 'learning', type: 'loss', metric: 'loss', value: c, higher_is_better: false, n: 64, seconds: 0.2 },
        lm('humaneval', 'humaneval', 'pass@1', t.he, 20, 0.05, 'learning', 0.6),
        { name: 'english', role: 'forgetting', type: 'loss', metric: 'loss', value: e, higher_is_better: false, n: 64, seconds: 0.2 },
        lm('hellaswag', 'hellaswag', 'acc_norm', t.hs, 200, 0.033, 'forgetting', 0.2), lm('arc_challenge', 'arc_challenge', 'acc_norm', t.arc, 200, 0.03, 'forgetting', 0.15),
        { name: 'kl', role: 'forgetting', type: 'kl_to_base', metric: 'kl', value: t.kl, higher_is_better: false, n: 16, seconds: 0.05,
          approximation: run.method === 'lora' ? 'exact: the base is the same model with its LoRA adapters disabled' : "lower bound: the base's top-32 log-probabilities per token" }],
      learning: { value: learning, higher_is_better: true, delta: learning - base.learning }, forgetting: { value: forgetting, higher_is_better: true, delta: forgetting - base.forgetting } });
  };
  const spectraAt = (s: number): void => {
    const grow = run.method === 'full' ? 0.65 + 0.35 * (s / run.steps) : 1;
    for (let layer = 0; layer < 4; layer++) for (const [name, kind, shape] of MODULES) {
      const target = Math.max(1, Math.round(run.r90 * grow * (kind === 'mlp' ? 1.35 : 0.85) * (0.85 + 0.3 * rand())));
      const cap = run.method === 'lora' ? run.rank : null;
      const { sv, rank90 } = spectrum(Math.min(target, cap ?? 999), cap, rand);
      const lora = run.method === 'lora';
      ev.push({ v: 1, type: 'spectrum', time: time(s), step: s, module: `model.layers.${layer}.${kind === 'attention' ? 'self_attn' : 'mlp'}.${name}`, name, layer, kind, shape,
        singular_values: sv, rank90, energy: sv.reduce((a, v) => a + v * v, 0),
        intruders: Math.round((lora ? 3.5 : 1) * (run.lr / 3e-3) * (0.5 + rand()) + (lora ? 1 : 0)), random_rank90: shape[0] === shape[1] ? 66 : 98,
        random_intruders: rand() < 0.15 ? 1 : 0, lora_rank: run.rank });
    }
  };
  evalAt(0);
  const every = opts.trainEvery ?? 1;
  for (let s = 1; s <= run.steps; s++) {
    if (opts.failAt && s === opts.failAt) { ev.push({ v: 1, type: 'run_finished', time: time(s), status: 'failed', step: s, error: `loss diverged (NaN) at step ${s}`, diverged: { step: s, value: 'NaN' } }); return ev; }
    const warm = Math.min(1, s / 30);
    const lr = run.lr * warm * (s > 30 ? 0.5 * (1 + Math.cos(Math.PI * (s - 30) / (run.steps - 30))) : 1);
    if (s % every === 0) {
      const spike = s === 137 ? 0.9 : 0;
      const loss = code(s) - 0.05 + 0.09 * gauss(rand) + spike;
      ev.push({ v: 1, type: 'train', time: time(s), step: s, loss, lr, grad_norm: (run.method === 'full' ? 0.9 : 0.35) * (1 + 2 * Math.exp(-s / 25)) * (1 + 0.15 * gauss(rand)) + spike * 3,
        tokens_per_s: (run.method === 'full' ? 6500 : 5000) * (1 + 0.04 * gauss(rand)), tokens: s * 16 * 128, memory_mb: run.method === 'full' ? 742 + 3 * rand() : 468 + 3 * rand() });
    }
    if (s % 50 === 0) evalAt(s);
    if (s % 100 === 0) spectraAt(s);
  }
  ev.push({ v: 1, type: 'run_finished', time: time(run.steps), status: 'completed', step: run.steps, error: null });
  return ev;
}
