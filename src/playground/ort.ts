// onnxruntime-node, loaded the first time the playground generates (never at activation: it maps
// ~45 MB of native library). The build copies it under dist/node_modules/ (esbuild.mjs), so
// `require` from dist/extension.js finds it inside the VSIX; a platform whose binary was not
// packaged gets a message that says so instead of a stack trace.
import type * as Ort from 'onnxruntime-node';
import type { LogitsFn } from '../core/generate';
import type { ExportInfo } from '../core/exports';

let ort: typeof Ort | undefined;

export function loadOrt(): typeof Ort {
  if (ort) return ort;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ort = require('onnxruntime-node') as typeof Ort;
    return ort;
  } catch (e) {
    const where = `${process.platform}-${process.arch}`;
    throw new Error(`onnxruntime-node could not load on ${where}: ${(e as Error).message.split('\n')[0]}. `
      + 'This build of Finetune Lab packages its native binary for linux-x64 only; see the README, "Packaging for other platforms".');
  }
}

/** One InferenceSession per export, created on first use and released with the panel. */
export class SessionCache {
  /** By ONNX path; `created` tells a re-export (same path, new weights) from the file already loaded. */
  private readonly sessions = new Map<string, { created: string; session: Promise<Ort.InferenceSession> }>();

  session(exp: ExportInfo): Promise<Ort.InferenceSession> {
    const held = this.sessions.get(exp.onnx);
    if (held && held.created === exp.manifest.created) return held.session;
    if (held) void held.session.then((s) => s.release()).catch(() => undefined);
    const o = loadOrt();
    const session = o.InferenceSession.create(exp.onnx, { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
    session.catch(() => this.sessions.delete(exp.onnx)); // a failed load may work after a re-export
    this.sessions.set(exp.onnx, { created: exp.manifest.created, session });
    return session;
  }

  /** The export as the generation loop's `logits` function: int64 [batch, seq] → float32 [batch, seq, vocab]. */
  async logitsFn(exp: ExportInfo): Promise<LogitsFn> {
    const session = await this.session(exp);
    const o = loadOrt();
    const { input_name: input, output_name: output } = exp.manifest;
    return async (ids, [batch, seq]) => {
      const feed = new o.Tensor('int64', ids, [batch, seq]);
      const out = await session.run({ [input]: feed });
      const t = out[output];
      const data = t.data as Float32Array;
      feed.dispose();
      return data;
    };
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((h) => h.session.then((s) => s.release()).catch(() => undefined)));
  }
}
