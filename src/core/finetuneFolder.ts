// What a folder a user points at holds, for "Analyse Adapter or Checkpoint…" (issue 14): a PEFT
// adapter (adapter_config.json), a model checkpoint or base (config.json + weights), or neither;
// and which base it names. The trainer reads these folders for real; this only decides what to ask.
import * as fs from 'node:fs';
import * as path from 'node:path';

export type FinetuneKind = 'adapter' | 'checkpoint';

const WEIGHTS = ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'pytorch_model.bin.index.json'];

/** `adapter` (adapter_config.json), `checkpoint` (config.json and model weights), else undefined. */
export function finetuneKind(folder: string): FinetuneKind | undefined {
  if (fs.existsSync(path.join(folder, 'adapter_config.json'))) return 'adapter';
  if (fs.existsSync(path.join(folder, 'config.json')) && WEIGHTS.some((w) => fs.existsSync(path.join(folder, w)))) return 'checkpoint';
  return undefined;
}

/** Why a folder cannot be analysed, in the words of the trainer's own refusal; undefined when it can. */
export function finetuneFolderProblem(folder: string): string | undefined {
  if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) return `${folder} is not a folder.`;
  if (finetuneKind(folder)) return undefined;
  const hasConfig = fs.existsSync(path.join(folder, 'config.json'));
  return `${path.basename(folder)} is neither a PEFT adapter nor a model checkpoint: expected adapter_config.json `
    + `(with adapter_model.safetensors), or config.json with model.safetensors (or its shards and index)`
    + `${hasConfig ? '; it has config.json but no model weights' : ''}.`;
}

/**
 * The base the finetune says it came from, as a model.base: adapter_config.json's
 * `base_model_name_or_path` (or a checkpoint config's `_name_or_path`), `hf:<folder>` when that is
 * a folder on this machine, `hf:<name>` for a Hub name; undefined when it names none.
 */
export function declaredBase(folder: string): string | undefined {
  const read = (file: string, key: string): string | undefined => {
    try {
      const v = (JSON.parse(fs.readFileSync(path.join(folder, file), 'utf8')) as Record<string, unknown>)[key];
      return typeof v === 'string' && v.trim() ? v.trim() : undefined;
    } catch { return undefined; }
  };
  const name = finetuneKind(folder) === 'adapter' ? read('adapter_config.json', 'base_model_name_or_path') : read('config.json', '_name_or_path');
  if (!name || path.resolve(name) === path.resolve(folder)) return undefined;
  const local = path.isAbsolute(name) ? name : path.resolve(folder, name);
  if (fs.existsSync(path.join(local, 'config.json'))) return `hf:${local}`;
  return /^[\w.-]+(\/[\w.-]+)?$/.test(name) ? `hf:${name}` : undefined;
}

/** Model folders (config.json + weights) among `configFiles` (paths of config.json files), except `exclude`. */
export function modelFolders(configFiles: readonly string[], exclude: string): string[] {
  const out = new Set<string>();
  for (const f of configFiles) {
    const dir = path.dirname(f);
    if (path.resolve(dir) === path.resolve(exclude)) continue;
    if (finetuneKind(dir) === 'checkpoint') out.add(dir);
  }
  return [...out].sort();
}

/** `tiny` when `base` (a model.base) is a Finetune Lab built-in base's cache folder (`<size>-<hash>` with pretrain.json), which the trainer analyses as that built-in. */
export function builtinCacheSize(base: string): string | undefined {
  if (!base.startsWith('hf:')) return undefined;
  const folder = base.slice(3);
  const m = /^(tiny|small|125m|350m)-[0-9a-f]{16}$/.exec(path.basename(folder));
  return m && fs.existsSync(path.join(folder, 'pretrain.json')) ? m[1] : undefined;
}
