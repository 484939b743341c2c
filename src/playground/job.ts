// What the playground panel does with a `generate` message, without the editor: pick the columns
// from the runs' exports, then run the same prompt and seeds through each export in turn, posting
// each sample as it completes and each column's diversity when it is done. vscode-free, so the
// screenshot harness (test/webview/playgroundShots.ts) drives exactly this code.
import { ByteTokenizer } from '../core/byteTokenizer';
import type { RunRef } from '../core/runRef';
import { diversity } from '../core/diversity';
import { findExports, kindLabel, latestTuned, type ExportInfo } from '../core/exports';
import { generate, GenerationCancelled, promptIds, startTokenId, wrapPrompt } from '../core/generate';
import type { GenSettings, HostToPlayground, PlaygroundModel } from '../core/playgroundProtocol';
import type { LogitsFn } from '../core/generate';

/** What runJob needs of ort.ts's SessionCache (tests pass a fake model). */
export interface LogitsSource { logitsFn(exp: ExportInfo): Promise<LogitsFn> }

/** Which exports become columns: one base per base model (runs of one base share it), then each run's newest checkpoint. */
export function pickColumns(runs: readonly RunRef[]): { exports: ExportInfo[]; problems: string[] } {
  const out: ExportInfo[] = [];
  const problems: string[] = [];
  const bases = new Set<string>();
  for (const r of runs) {
    const { exports, errors } = findExports(r.dir);
    problems.push(...errors.map((e) => e.message));
    const base = exports.find((e) => e.manifest.kind === 'base');
    if (base && !bases.has(base.manifest.base)) { bases.add(base.manifest.base); out.push(base); }
    const tuned = latestTuned(exports);
    if (tuned) out.push(tuned);
    else if (!errors.length) problems.push(`${r.id} has no exported checkpoint yet (Export to ONNX).`);
  }
  const order = { base: 0, lora: 1, full: 2 } as const;
  out.sort((a, b) => order[a.manifest.kind] - order[b.manifest.kind]);
  return { exports: out, problems };
}

export const toModel = (e: ExportInfo): PlaygroundModel => ({
  id: e.file, run: e.manifest.run, kind: e.manifest.kind, kindLabel: kindLabel(e.manifest), step: e.manifest.step ?? null,
  base: e.manifest.base, promptFormat: e.manifest.prompt_format?.format === 'instruction' ? 'instruction' : 'text',
});

/** Runs one generation job; posts started, samples, modelDone per column, errors, then done. */
export async function runJob(
  job: number, columns: readonly ExportInfo[], prompt: string, settings: GenSettings,
  sessions: LogitsSource, post: (m: HostToPlayground) => void, signal: AbortSignal,
): Promise<void> {
  post({ type: 'started', job, models: columns.map((c) => c.file), settings });
  for (const exp of columns) {
    if (signal.aborted) break;
    const m = exp.manifest;
    const tok = new ByteTokenizer(m.tokenizer.bos_token_id, m.tokenizer.eos_token_id, m.tokenizer.pad_token_id ?? null);
    const texts: string[] = [];
    const t0 = Date.now();
    let tokens = 0;
    try {
      const logits = await sessions.logitsFn(exp);
      await generate(logits, {
        prompt: promptIds(tok.encode(wrapPrompt(prompt, m.prompt_format)), startTokenId(m.prompt_format, tok.bosId, tok.eosId)),
        samples: settings.samples, maxNewTokens: settings.maxNewTokens, maxPositions: m.max_positions, vocabSize: m.vocab_size,
        eosId: tok.eosId, seed: settings.seed,
        banned: [tok.bosId, tok.padId].filter((t): t is number => t !== null && t !== tok.eosId),
        sampler: { temperature: settings.temperature, topK: settings.topK, topP: settings.topP },
        signal,
        onSample: (s) => {
          const text = tok.decode(s.tokens);
          texts[s.index] = text;
          tokens += s.tokens.length;
          post({ type: 'sample', job, model: exp.file, index: s.index, seed: s.seed, text, tokens: s.tokens.length, stop: s.stop });
        },
      });
      const seconds = (Date.now() - t0) / 1000;
      post({ type: 'modelDone', job, model: exp.file, diversity: diversity(texts), seconds, tokensPerS: seconds > 0 ? tokens / seconds : 0 });
    } catch (e) {
      if (e instanceof GenerationCancelled) break;
      post({ type: 'error', job, model: exp.file, message: (e as Error).message });
      if (/onnxruntime-node could not load/.test((e as Error).message)) break; // every column would say the same
    }
  }
  post({ type: 'done', job, cancelled: signal.aborted });
}
