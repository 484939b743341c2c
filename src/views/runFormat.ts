// How a run reads in the explorer, the status bar and notifications. Pure (no vscode import),
// so the strings are unit-tested in test/shell/runFormat.test.ts.
import { formatDuration } from '../core/duration';
import type { RunStatus } from '../core/generated/status';
import { STATE_ICON } from '../core/runStateIcons';

type RunState = RunStatus['state'];

/** The subset of status.json (schemas/status.schema.json) these functions read. */
export interface StatusLike {
  state: RunState;
  step: number;
  total_steps: number;
  started?: number | null;
  heartbeat?: number | null;
  finished?: number | null;
  loss?: number | null;
  error?: string | null;
  phase?: string;
  /** Running, the process alive, but no heartbeat for finetuneLab.stalledAfterSeconds (reconcile.ts). */
  stale?: boolean;
  /** A Slurm run's job (src/core/slurm/reconcile.ts). */
  slurm?: { jobId: string; state: string | null; reason: string | null; text: string; unknown?: string };
}

/** "job 12 pending (Priority)" while queued, "job 12 on gpu01" while running, "job 12" after. */
export function slurmDescription(s: StatusLike): string | undefined {
  if (!s.slurm) return undefined;
  const text = s.state === 'queued' || s.state === 'running' ? s.slurm.text : `job ${s.slurm.jobId}`;
  return s.slurm.unknown ? `${text} (Slurm unreachable)` : text;
}

/** Codicon and theme colour per state: one definition, shared with the runs table's webview. */
export { STATE_ICON, STATE_COLOR } from '../core/runStateIcons';

/**
 * Seconds left, from the rate so far: (heartbeat − started) / step · (total − step).
 * Undefined before the first step or without timing (step 0 is the base evaluation).
 */
export function etaSeconds(s: StatusLike, now = Date.now() / 1000): number | undefined {
  if (s.state !== 'running' || !s.started || s.step <= 0 || s.total_steps <= s.step) return undefined;
  const last = s.heartbeat ?? now;
  const elapsed = last - s.started;
  if (elapsed <= 0) return undefined;
  return (elapsed / s.step) * (s.total_steps - s.step);
}

/** "1.93" / "0.0123": losses to three significant figures. */
export function formatLoss(loss: number): string {
  return Math.abs(loss) >= 100 ? loss.toFixed(0) : loss.toPrecision(3);
}

/**
 * The state word first (screen readers and the end-to-end tests read it), then the progress:
 * "running · step 120/500 · loss 1.93 · ETA 2m"; "queued"; "completed · 500 steps · loss 1.71".
 */
export function runDescription(s: StatusLike | undefined, now?: number): string {
  if (!s) return 'no status';
  const job = slurmDescription(s);
  if (s.state === 'queued') return job ? `queued · ${job}` : 'queued';
  const parts: string[] = [s.state];
  if (s.state === 'running' && s.stale) parts.push(stalledText(s, now));
  if (s.state === 'running') {
    if (s.phase && s.phase !== 'training' && s.step === 0) parts.push(s.phase);
    parts.push(`step ${s.step}/${s.total_steps}`);
  } else if (s.state === 'completed') {
    parts.push(`${s.total_steps} steps`);
  } else {
    parts.push(`at ${s.step}/${s.total_steps}`);
  }
  if (typeof s.loss === 'number' && isFinite(s.loss)) parts.push(`loss ${formatLoss(s.loss)}`);
  const eta = s.stale ? undefined : etaSeconds(s, now);
  if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`);
  if (job) parts.push(job);
  return parts.join(' · ');
}

/** The Runs view's codicon of an analysis run (issue 14), the runs table's too. */
export const ANALYSIS_ICON = 'telescope';

/**
 * An analysis run's line: "completed · analysis at step 120", "completed · λ 0.5 at step 120" for
 * reduce-intruders, "running · spectra" while it works, "failed · analysis" when it failed.
 */
export function analysisDescription(s: StatusLike, lambda?: number): string {
  const what = lambda !== undefined ? `λ ${lambda}` : 'analysis';
  if (s.state === 'running') return `running · ${s.phase && s.phase !== 'starting' ? s.phase : what}`;
  if (s.state === 'completed') return `completed · ${what} at step ${s.total_steps}`;
  return `${s.state} · ${what}${s.error ? ` · ${s.error.split('\n')[0].slice(0, 80)}` : ''}`;
}

/** What an analysis run analysed, for its tooltip: the adapter or checkpoint, the base, the mitigation. */
export function analysisSourceMarkdown(a: { method: string; model: { base: string }; source: { adapter?: string; model?: string; step: number }; reduce_intruders?: { source_run: string; lambda: number; top_k: number; epsilon: number } }): string {
  const src = a.source.adapter ?? a.source.model ?? '';
  const lines = [`**Analysis** of the ${a.method === 'lora' ? 'LoRA adapter' : 'full checkpoint'} \`${src.replace(/`/g, "'")}\` (step ${a.source.step}) against \`${a.model.base.replace(/`/g, "'")}\``];
  const r = a.reduce_intruders;
  if (r) lines.push(`PEFT's reduce_intruder_dimension of run \`${r.source_run}\`: λ ${r.lambda}, top-k ${r.top_k}, ε ${r.epsilon}`);
  return lines.join('\n\n');
}

/** A short value for a tooltip table: numbers as written in YAML, arrays joined. */
export function formatValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(formatValue).join(', ')}]`;
  if (typeof v === 'number') return Math.abs(v) > 0 && Math.abs(v) < 1e-3 ? v.toExponential() : String(v);
  if (v && typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function escapeMd(s: string): string {
  return s.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}

/** The tooltip's Markdown: label, state, the config that differs from the experiment, the error and log tail. */
export function runTooltipMarkdown(o: {
  id: string;
  label?: string;
  status?: StatusLike;
  overrides?: Record<string, unknown>;
  logTail?: string[];
}): string {
  const out: string[] = [`**${escapeMd(o.label ?? o.id)}**`, '', `\`${o.id}\``, ''];
  if (o.status) out.push(escapeMd(runDescription(o.status)), '');
  const j = o.status?.slurm;
  if (j) {
    out.push(`**Slurm:** job \`${j.jobId}\` · ${escapeMd(j.state ?? 'not seen yet')}${j.reason ? ` · reason ${escapeMd(j.reason)}` : ''}`, '');
    if (j.unknown) out.push(`*Slurm could not be asked:* ${escapeMd(j.unknown)}`, '');
  }
  const keys = Object.keys(o.overrides ?? {});
  if (keys.length) {
    out.push('Differs from the experiment:', '');
    for (const k of keys) out.push(`- \`${k}\`: \`${formatValue(o.overrides![k]).replace(/`/g, "'")}\``);
    out.push('');
  }
  if (o.status?.error) out.push(`**Error:** ${escapeMd(o.status.error)}`, '');
  if (o.logTail?.length) out.push('Last lines of train.log:', '', '```text', ...o.logTail.map((l) => l.replace(/```/g, "'''")), '```');
  return out.join('\n');
}

/** The last `n` non-empty lines of a log's text. */
export function lastLines(text: string, n: number): string[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  return lines.slice(-n);
}

/** "stalled (no heartbeat for 2m 5s)": what a hung trainer reads as, everywhere. */
export function stalledText(s: StatusLike, now = Date.now() / 1000): string {
  return s.heartbeat != null ? `stalled (no heartbeat for ${formatDuration(Math.max(0, now - s.heartbeat))})` : 'stalled (no heartbeat)';
}

/** Status bar text: "$(sync~spin) lora-r16 120/500"; a stalled run: "$(warning) lora-r16 120/500 stalled". */
export function statusBarText(label: string, s: StatusLike, othersRunning = 0): string {
  const more = othersRunning > 0 ? ` (+${othersRunning})` : '';
  if (s.state === 'running' && s.stale) return `$(warning) ${label} ${s.step}/${s.total_steps} stalled${more}`;
  return `$(${STATE_ICON[s.state]}) ${label} ${s.step}/${s.total_steps}${more}`;
}
