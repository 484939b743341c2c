// Plain-text tables for the terminal, and the results table that ends `finetune-lab demo`.
import type { RunSummary, TaskSummary } from '../core/runSummary';
import type { RunEvent } from '../core/generated/events';

/** Left-aligned columns (right-aligned where the header starts with '>'), two spaces apart. */
export function formatTable(headers: string[], rows: string[][]): string {
  const right = headers.map((h) => h.startsWith('>'));
  const heads = headers.map((h) => h.replace(/^>/, ''));
  const widths = heads.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(heads), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export const num = (v: number | null | undefined, digits = 3): string => (v == null || !Number.isFinite(v) ? '-' : v.toFixed(digits));
export const signed = (v: number | undefined, digits = 3): string => (v == null ? '-' : `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`);

/** What a task's number is: "english (loss, n=48)", "arith-em (lm_eval finetune_lab_arithmetic v1.0: exact_match,strict-match, n=16)". */
export function taskLabel(t: TaskSummary): string {
  const kind = t.type === 'lm_eval' ? `lm_eval ${t.task ?? ''}${t.version ? ` v${t.version}` : ''}: ${t.metric}` : t.type && t.type !== t.metric ? `${t.type}: ${t.metric}` : t.metric;
  return `${t.name} (${kind.trim()}${t.n != null ? `, n=${t.n}` : ''})`;
}

/** One line naming every task of the runs with its type, version and n (the tables' footnote). */
export function taskLegend(runs: { summary: RunSummary }[]): string {
  const seen = new Map<string, TaskSummary>();
  for (const r of runs) for (const t of r.summary.tasks) if (!seen.has(`${t.role}:${t.name}`) && Number.isFinite(t.final)) seen.set(`${t.role}:${t.name}`, t);
  return seen.size ? `tasks: ${[...seen.values()].map(taskLabel).join(' · ')}` : '';
}

/** The last value of each task of a run, compactly, for `finetune-lab list`: "hellaswag 0.312 (v1.0, n=200)". */
export function scoresCell(s: RunSummary): string {
  return s.tasks.map((t) => {
    const meta = [t.version ? `v${t.version}` : '', t.n != null ? `n=${t.n}` : ''].filter(Boolean).join(', ');
    return `${t.name} ${t.error && t.finalStep < 0 ? 'failed' : num(t.final)}${meta ? ` (${meta})` : ''}${t.error ? ' !' : ''}`;
  }).join('; ');
}

/**
 * One row per run: final train loss, then each eval task as `final (Δ vs step 0)`. For a loss task a
 * negative Δ on a learning task is learning, a positive Δ on a forgetting task is forgetting.
 */
export function resultsTable(runs: { label: string; summary: RunSummary }[]): string {
  const taskKeys: { role: string; name: string }[] = [];
  for (const r of runs) for (const t of r.summary.tasks) if (!taskKeys.some((k) => k.role === t.role && k.name === t.name)) taskKeys.push({ role: t.role, name: t.name });
  const headers = ['run', 'status', '>steps', '>train loss', ...taskKeys.map((k) => `>${k.role} ${k.name} (Δ)`)];
  const rows = runs.map(({ label, summary: s }) => [
    label, s.finished?.status ?? 'unfinished', s.lastStep == null ? '-' : String(s.lastStep), num(s.finalTrainLoss),
    ...taskKeys.map((k) => {
      const t = s.tasks.find((x) => x.role === k.role && x.name === k.name);
      return t ? `${num(t.final)} (${signed(t.base == null ? undefined : t.final - t.base)})` : '-';
    }),
  ]);
  const legend = taskLegend(runs);
  return formatTable(headers, rows) + (legend ? `\n${legend}` : '');
}

// ---------------------------------------------------------------------------- the demo's tables

type Ev = RunEvent;
type SpectrumEv = Extract<Ev, { type: 'spectrum' }>;

/** What the demo reads from one run: its settings, its summary, and its ΔW spectra by step. */
export interface RunFacts {
  label: string;
  id: string;
  method: 'lora' | 'full' | undefined;
  rank?: number;
  lr?: number;
  summary: RunSummary;
  /** Spectrum events grouped by step, ascending. */
  spectra: { step: number; matrices: SpectrumEv[] }[];
}

export function runFacts(label: string, id: string, events: readonly Ev[], summary: RunSummary): RunFacts {
  const started = events.find((e): e is Extract<Ev, { type: 'run_started' }> => e.type === 'run_started');
  const cfg = (started?.config ?? {}) as { method?: 'lora' | 'full'; lora?: { rank?: number }; train?: { lr?: number } };
  const bySteps = new Map<number, SpectrumEv[]>();
  for (const e of events) if (e.type === 'spectrum') bySteps.set(e.step, [...(bySteps.get(e.step) ?? []), e]);
  const method = started?.method ?? cfg.method;
  return {
    label, id, method, rank: method === 'lora' ? cfg.lora?.rank : undefined, lr: cfg.train?.lr, summary,
    spectra: [...bySteps.entries()].sort((a, b) => a[0] - b[0]).map(([step, matrices]) => ({ step, matrices })),
  };
}

export function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median rank90 (and the random reference's) over the matrices of one kind at one spectra step. */
export function rank90Stats(ms: SpectrumEv[], kind?: 'attention' | 'mlp'): { rank90?: number; random?: number } {
  const sel = ms.filter((m) => !kind || m.kind === kind);
  return { rank90: median(sel.map((m) => m.rank90)), random: median(sel.flatMap((m) => (m.random_rank90 == null ? [] : [m.random_rank90]))) };
}

/** Intruder dimensions summed over the matrices at one step, and the random baseline's sum. */
export function intruderStats(ms: SpectrumEv[]): { intruders?: number; random?: number; matrices: number } {
  const known = ms.filter((m) => m.intruders != null);
  const rnd = ms.filter((m) => m.random_intruders != null);
  return {
    intruders: known.length ? known.reduce((a, m) => a + (m.intruders ?? 0), 0) : undefined,
    random: rnd.length ? rnd.reduce((a, m) => a + (m.random_intruders ?? 0), 0) : undefined,
    matrices: ms.length,
  };
}

const lastSpectra = (r: RunFacts) => r.spectra[r.spectra.length - 1]?.matrices ?? [];
const task = (r: RunFacts, name: string) => r.summary.tasks.find((t) => t.name === name);
const delta = (t: TaskSummary | undefined) => (t && t.base != null ? t.final - t.base : undefined);
const lrText = (lr: number | undefined) => (lr == null ? '-' : lr < 0.01 ? lr.toExponential().replace('e-', 'e-') : String(lr));
const taskCell = (t: TaskSummary | undefined, digits = 3) => (t ? `${num(t.final, digits)} (${signed(delta(t), digits)})` : '-');
const int = (v: number | undefined) => (v == null ? '-' : Number.isInteger(v) ? String(v) : v.toFixed(1));

/** lora-vs-full: one row per run (method, rank, lr, losses with Δ vs base, median rank90 attention/MLP vs random, intruders vs random). */
export function demoTable(runs: RunFacts[]): string {
  const headers = ['run', 'method', '>rank', '>lr', 'status', '>train loss', '>code loss (Δ)', '>English loss (Δ)', '>KL to base', '>rank90 attn/mlp', '>random', '>intruders', '>random'];
  const rows = sortMain(runs).map((r) => {
    const ms = lastSpectra(r);
    const a = rank90Stats(ms, 'attention'), m = rank90Stats(ms, 'mlp');
    const intr = intruderStats(ms);
    return [
      r.label, r.method ?? '-', r.rank == null ? '-' : String(r.rank), lrText(r.lr), r.summary.finished?.status ?? 'unfinished',
      num(r.summary.finalTrainLoss), taskCell(task(r, 'code')), taskCell(task(r, 'english')), num(task(r, 'kl')?.final, 4),
      `${int(a.rank90)}/${int(m.rank90)}`, `${int(a.random)}/${int(m.random)}`,
      int(intr.intruders), int(intr.random),
    ];
  });
  return `${formatTable(headers, rows)}\n(rank90: smallest k explaining 90% of ΔW's σ², median over matrices at the last step; random: a Gaussian matrix of the same shape.\n intruders: top-10 singular vectors of W_tuned with max |cos| < 0.5 to every base vector, summed over the ${lastSpectra(runs[0] ?? ({ spectra: [] } as unknown as RunFacts)).length} matrices; random: random unit vectors, same test.\n KL to base: mean per-token KL(p_base || p_tuned) in nats/byte on held-out English, 0 at step 0; LoRA exact (adapters disabled), full finetuning a lower bound from the base's cached top-32 log-probabilities.)\n${taskLegend(runs)}`;
}

/** Full runs first (high LR first), then LoRA by rank. */
function sortMain(runs: RunFacts[]): RunFacts[] {
  return [...runs].sort((a, b) => (a.method === b.method ? (a.method === 'full' ? (b.lr ?? 0) - (a.lr ?? 0) : (a.rank ?? 0) - (b.rank ?? 0)) : a.method === 'full' ? -1 : 1));
}

const learnTasks = (r: RunFacts) => r.summary.tasks.filter((t) => t.role === 'learning');

/** lr-sweep: per run (method, lr): train loss, each learning task and English with Δ. */
export function lrSweepTable(runs: RunFacts[]): string {
  const names = [...new Set(runs.flatMap((r) => learnTasks(r).map((t) => t.name)))];
  const headers = ['run', 'method', '>lr', 'status', '>train loss', ...names.map((n) => `>${n} (Δ)`), '>English loss (Δ)'];
  const sorted = [...runs].sort((a, b) => (a.method === b.method ? (a.lr ?? 0) - (b.lr ?? 0) : a.method === 'full' ? -1 : 1));
  const rows = sorted.map((r) => [
    r.label, r.method ?? '-', lrText(r.lr), r.summary.finished?.status ?? 'unfinished', num(r.summary.finalTrainLoss),
    ...names.map((n) => taskCell(task(r, n))), taskCell(task(r, 'english')),
  ]);
  return `${formatTable(headers, rows)}\n${taskLegend(runs)}`;
}

/**
 * The best LR of one method in the sweep: the lowest final loss of its learning loss task. Exact match
 * decides only when it separates the rates (some run at 0.25 or more): at 16 examples a hit or two is noise.
 */
export function bestLr(runs: RunFacts[], method: 'lora' | 'full'): { lr?: number; by: string; value?: number } {
  const mine = runs.filter((r) => r.method === method && r.summary.finished?.status === 'completed');
  const em = mine.map((r) => ({ r, t: learnTasks(r).find((t) => t.metric === 'exact_match') })).filter((x) => x.t);
  if (em.some((x) => (x.t?.final ?? 0) >= 0.25)) {
    const best = em.reduce((a, b) => ((b.t?.final ?? 0) > (a.t?.final ?? 0) ? b : a));
    return { lr: best.r.lr, by: best.t!.name, value: best.t!.final };
  }
  const loss = mine.map((r) => ({ r, t: learnTasks(r).find((t) => t.metric === 'loss') })).filter((x) => x.t && Number.isFinite(x.t.final));
  if (!loss.length) return { by: 'none' };
  const best = loss.reduce((a, b) => (b.t!.final < a.t!.final ? b : a));
  return { lr: best.r.lr, by: best.t!.name, value: best.t!.final };
}

const yes = (ok: boolean | undefined) => (ok == null ? '? ' : ok ? 'HELD    ' : 'NOT HELD');
const f3 = (v: number | undefined) => num(v, 3);

/**
 * The paper's findings, each checked against the measured numbers (never fixed text): a line per
 * finding, HELD / NOT HELD / ? (not measurable: a run missing or failed), with the numbers.
 */
export function demoFindings(main: RunFacts[], lr: RunFacts[]): string[] {
  const out: string[] = [];
  const done = main.filter((r) => r.summary.finished?.status === 'completed');
  const fulls = done.filter((r) => r.method === 'full').sort((a, b) => (b.lr ?? 0) - (a.lr ?? 0));
  const loras = done.filter((r) => r.method === 'lora').sort((a, b) => (a.rank ?? 0) - (b.rank ?? 0));
  const code = (r: RunFacts) => task(r, 'code')?.final;
  // Full finetuning at its best rate (the lowest code loss) against LoRA; the lowest-rate full run is the control.
  const full = fulls.length ? fulls.reduce((a, b) => ((code(b) ?? Infinity) < (code(a) ?? Infinity) ? b : a)) : undefined;
  const control = fulls.length > 1 && fulls[fulls.length - 1] !== full ? fulls[fulls.length - 1] : undefined;
  const forget = (r: RunFacts) => delta(task(r, 'english'));
  if (!full || !loras.length) return ['? full finetuning or LoRA runs missing: nothing to compare'];
  const loraCodes = loras.map((r) => code(r) ?? Infinity), loraForget = loras.map((r) => forget(r) ?? -Infinity);
  out.push(`${yes((code(full) ?? Infinity) < Math.min(...loraCodes))} full finetuning (at its best rate, ${lrText(full.lr)}) learns more than LoRA: code loss ${f3(code(full))} vs ${loras.map((r) => `${f3(code(r))} (r${r.rank})`).join(', ')}`);
  out.push(`${yes((forget(full) ?? -Infinity) > Math.max(...loraForget))} full finetuning forgets more than LoRA: English loss ${signed(forget(full))} vs ${loras.map((r) => `${signed(forget(r))} (r${r.rank})`).join(', ')}`);
  const inc = (xs: (number | undefined)[], dir: 1 | -1) => xs.every((x, i) => i === 0 || (x != null && xs[i - 1] != null && dir * (x - xs[i - 1]!) > 0));
  if (loras.length > 1) {
    out.push(`${yes(inc([...loras.map(code), code(full)], -1))} LoRA learns more with rank, full most: code loss ${[...loras.map((r) => `r${r.rank} ${f3(code(r))}`), `full ${f3(code(full))}`].join(' > ')}?`);
    out.push(`${yes(inc([...loras.map(forget), forget(full)], 1))} LoRA forgets more with rank, full most: English Δ ${[...loras.map((r) => `r${r.rank} ${signed(forget(r))}`), `full ${signed(forget(full))}`].join(' < ')}?`);
  }
  if (control) {
    // The control: the LoRA run that learned about as much as the low-LR full run; does it forget less?
    const near = loras.reduce((a, b) => (Math.abs((code(b) ?? Infinity) - (code(control) ?? 0)) < Math.abs((code(a) ?? Infinity) - (code(control) ?? 0)) ? b : a));
    const diff = (forget(control) ?? 0) - (forget(near) ?? 0);
    out.push(`${'info    '} at equal learning (the low-LR full control): full lr ${lrText(control.lr)} code ${f3(code(control))}, English ${signed(forget(control))}; LoRA r${near.rank} code ${f3(code(near))}, English ${signed(forget(near))}: ` +
      (Math.abs(diff) < 0.02 ? 'about the same forgetting — one learning-forgetting curve (paper §4.3): LoRA forgets less mainly because it learns less'
        : diff > 0 ? `full forgets ${f3(diff)} more at similar learning` : `LoRA forgets ${f3(-diff)} more at similar learning`));
  }
  const klLine = klOrdering(done);
  if (klLine) out.push(klLine);
  const last = (r: RunFacts) => lastSpectra(r);
  const fullAll = rank90Stats(last(full)).rank90, fullA = rank90Stats(last(full), 'attention'), fullM = rank90Stats(last(full), 'mlp');
  const topLora = loras[loras.length - 1];
  const loraR90 = rank90Stats(last(topLora)).rank90;
  if (fullAll != null && loraR90 != null) {
    const ratio = fullAll / Math.max(loraR90, 1);
    out.push(`${yes(ratio >= 2)} full finetuning's ΔW needs a higher rank than LoRA's (2× or more): median rank90 ${int(fullAll)} (full) vs ${loras.map((r) => `${int(rank90Stats(last(r)).rank90)} (r${r.rank})`).join(', ')} — ${ratio.toFixed(1)}× LoRA r${topLora.rank}'s; a random matrix: ${int(rank90Stats(last(full)).random)}`);
  }
  if (full.spectra.length > 1) {
    const first = rank90Stats(full.spectra[0].matrices).rank90, end = fullAll;
    out.push(`${yes(first != null && end != null && end > first)} full finetuning's ΔW rank grows with training: median rank90 ${int(first)} at step ${full.spectra[0].step} → ${int(end)} at step ${full.spectra[full.spectra.length - 1].step}`);
  }
  if (fullA.rank90 != null && fullM.rank90 != null) {
    out.push(`${yes(fullM.rank90 > fullA.rank90)} MLP matrices need more rank than attention (full): median rank90 MLP ${int(fullM.rank90)} vs attention ${int(fullA.rank90)} (random ${int(fullM.random)} / ${int(fullA.random)})`);
  }
  const fi = intruderStats(last(full));
  if (fi.intruders != null) {
    out.push(`${'info    '} intruder dimensions (sum over matrices, last step; random-vector baseline in brackets): full lr ${lrText(full.lr)} ${fi.intruders} [${int(fi.random)}], ` +
      `${loras.map((r) => { const s = intruderStats(last(r)); return `LoRA r${r.rank} ${int(s.intruders)} [${int(s.random)}]`; }).join(', ')}` +
      fulls.filter((r) => r !== full).map((r) => `, full lr ${lrText(r.lr)} ${int(intruderStats(last(r)).intruders)}`).join(''));
  }
  const bl = bestLr(lr, 'lora'), bf = bestLr(lr, 'full');
  if (bl.lr != null && bf.lr != null) {
    out.push(`${yes(bl.lr > bf.lr)} LoRA's best learning rate is above full finetuning's (arithmetic, by ${bl.by === bf.by ? bl.by : `${bl.by} / ${bf.by}`}): LoRA ${lrText(bl.lr)} (${f3(bl.value)}) vs full ${lrText(bf.lr)} (${f3(bf.value)}) — ${(bl.lr / bf.lr).toFixed(0)}×`);
  } else if (lr.length) out.push('?        best learning rates: not enough completed runs in the sweep');
  const em = lr.flatMap((r) => learnTasks(r).filter((t) => t.metric === 'exact_match').map((t) => t.final));
  if (em.length) out.push(`info     arithmetic exact match: best ${f3(Math.max(...em))} over the sweep${Math.max(...em) < 0.25 ? ' — near 0 at this scale and length (a hit or two in 16), so the best LR is read from the held-out answer loss' : ''}`);
  return out;
}

/** Kendall's tau between two rankings of the same items (1: the same order, -1: reversed). */
export function kendallTau(a: readonly number[], b: readonly number[]): number {
  let concordant = 0, discordant = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = i + 1; j < a.length; j++) {
      const s = Math.sign(a[i] - a[j]) * Math.sign(b[i] - b[j]);
      if (s > 0) concordant++; else if (s < 0) discordant++;
    }
  }
  const pairs = (a.length * (a.length - 1)) / 2;
  return pairs ? (concordant - discordant) / pairs : 1;
}

/**
 * Does KL to the base (a forgetting signal that needs no labels; Shenfeld et al. 2025) order the
 * runs as their English loss rise does? HELD when both give the same order of every run.
 */
export function klOrdering(runs: RunFacts[]): string | undefined {
  const both = runs.filter((r) => Number.isFinite(task(r, 'kl')?.final) && delta(task(r, 'english')) != null);
  if (both.length < 3) return undefined;
  const kl = both.map((r) => task(r, 'kl')!.final), eng = both.map((r) => delta(task(r, 'english'))!);
  const tau = kendallTau(kl, eng);
  const order = (vals: number[]) => both.map((r, i) => ({ r, v: vals[i] })).sort((x, y) => x.v - y.v).map((x) => x.r.label).join(' < ');
  return `${yes(tau === 1)} KL to the base orders the runs as the English loss rise does (Kendall's tau ${tau.toFixed(2)} over ${both.length} runs): ` +
    (tau === 1 ? order(kl) : `KL ${order(kl)}; English Δ ${order(eng)}`);
}
