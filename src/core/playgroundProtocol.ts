// Messages between the generation playground (webview/playground) and its panel
// (src/playground/playgroundPanel.ts), imported by both sides like formProtocol.ts. Both directions
// are discriminated unions on `type`, checked on receipt (isHostToPlayground / isPlaygroundToHost).
import type { Diversity } from './diversity';

/** One column: an ONNX export of a run's base model or of one of its checkpoints. */
export interface PlaygroundModel {
  /** The export.json path: unique, and what `generate` names. */
  id: string;
  run: string;
  kind: 'base' | 'lora' | 'full';
  /** "base", "LoRA r16", "full". */
  kindLabel: string;
  step: number | null;
  base: string;
  promptFormat: 'text' | 'instruction';
}

export interface GenSettings {
  /** 0 = greedy. */
  temperature: number;
  /** 1 = off. */
  topP: number;
  /** 0 = off. */
  topK: number;
  maxNewTokens: number;
  samples: number;
  seed: number;
}

export const DEFAULT_SETTINGS: GenSettings = { temperature: 0.8, topP: 0.95, topK: 0, maxNewTokens: 64, samples: 8, seed: 0 };

/** The bounds the host enforces (and the webview's inputs show). */
export const LIMITS = {
  temperature: [0, 5], topP: [0.01, 1], topK: [0, 100_000], maxNewTokens: [1, 1024], samples: [1, 64], seed: [0, 2 ** 31 - 1],
} as const satisfies Record<keyof GenSettings, readonly [number, number]>;
export const MAX_PROMPT = 20_000;

export interface PlaygroundRestore { runs: { id: string; dir: string }[] }

export type HostToPlayground =
  | { type: 'init'; models: PlaygroundModel[]; problems: string[]; restore: PlaygroundRestore }
  | { type: 'started'; job: number; models: string[]; settings: GenSettings }
  /** One sample of one model, as soon as it is complete. */
  | { type: 'sample'; job: number; model: string; index: number; seed: number; text: string; tokens: number; stop: 'eos' | 'length' }
  | { type: 'modelDone'; job: number; model: string; diversity: Diversity; seconds: number; tokensPerS: number }
  | { type: 'done'; job: number; cancelled: boolean }
  | { type: 'error'; job: number | null; model: string | null; message: string };

export type PlaygroundToHost =
  | { type: 'ready' }
  | { type: 'generate'; prompt: string; settings: GenSettings; models: string[] }
  | { type: 'cancel' }
  | { type: 'exportMissing' }
  | { type: 'log'; level: 'info' | 'error'; message: string };

export function assertNever(x: never): never {
  throw new Error(`unexpected message: ${JSON.stringify(x)}`);
}

// ---- validation -----------------------------------------------------------------------

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const isStr = (x: unknown, max = 4096): x is string => typeof x === 'string' && x.length <= max;
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isInt = (x: unknown): x is number => Number.isInteger(x);
const isNumOrNull = (x: unknown): boolean => x === null || isNum(x);
const isArr = (x: unknown, item: (v: unknown) => boolean, max = 10_000): boolean => Array.isArray(x) && x.length <= max && x.every(item);
const KINDS = new Set(['base', 'lora', 'full']);

export function isGenSettings(x: unknown): x is GenSettings {
  if (!isObj(x)) return false;
  for (const [k, [lo, hi]] of Object.entries(LIMITS)) {
    const v = x[k];
    if (!isNum(v) || v < lo || v > hi) return false;
    if (k !== 'temperature' && k !== 'topP' && !isInt(v)) return false;
  }
  return true;
}

function isModel(x: unknown): boolean {
  return isObj(x) && isStr(x.id) && isStr(x.run) && KINDS.has(x.kind as string) && isStr(x.kindLabel)
    && (x.step === null || isInt(x.step)) && isStr(x.base) && (x.promptFormat === 'text' || x.promptFormat === 'instruction');
}

function isDiversity(x: unknown): boolean {
  return isObj(x) && isInt(x.samples) && isInt(x.unique) && isNumOrNull(x.distinct1) && isNumOrNull(x.distinct2)
    && isNumOrNull(x.distinct3) && isNumOrNull(x.meanJaccard) && isNum(x.meanWords);
}

export function isPlaygroundRestore(x: unknown): x is PlaygroundRestore {
  return isObj(x) && isArr(x.runs, (r) => isObj(r) && isStr(r.id) && isStr(r.dir), 256);
}

export function isHostToPlayground(x: unknown): x is HostToPlayground {
  if (!isObj(x)) return false;
  switch (x.type) {
    case 'init': return isArr(x.models, isModel, 256) && isArr(x.problems, (p) => isStr(p)) && isPlaygroundRestore(x.restore);
    case 'started': return isInt(x.job) && isArr(x.models, (m) => isStr(m), 256) && isGenSettings(x.settings);
    case 'sample': return isInt(x.job) && isStr(x.model) && isInt(x.index) && isInt(x.seed) && isStr(x.text, 1_000_000) && isInt(x.tokens) && (x.stop === 'eos' || x.stop === 'length');
    case 'modelDone': return isInt(x.job) && isStr(x.model) && isDiversity(x.diversity) && isNum(x.seconds) && isNum(x.tokensPerS);
    case 'done': return isInt(x.job) && typeof x.cancelled === 'boolean';
    case 'error': return (x.job === null || isInt(x.job)) && (x.model === null || isStr(x.model)) && isStr(x.message, 100_000);
    default: return false;
  }
}

export function isPlaygroundToHost(x: unknown): x is PlaygroundToHost {
  if (!isObj(x)) return false;
  switch (x.type) {
    case 'ready': case 'cancel': case 'exportMissing': return true;
    case 'generate': return isStr(x.prompt, MAX_PROMPT) && isGenSettings(x.settings) && isArr(x.models, (m) => isStr(m) && m.length > 0, 256) && (x.models as unknown[]).length > 0;
    case 'log': return (x.level === 'info' || x.level === 'error') && isStr(x.message, 10_000);
    default: return false;
  }
}
