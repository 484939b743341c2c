// Fills an experiment's defaults from the schema's own `default` keywords (DECISIONS.md: defaults live
// in the experiment schema and nowhere else), plus the two that depend on other fields:
// lora.alpha = 2 * lora.rank, and train.lr = 2e-4 for LoRA / 2e-5 for full (Biderman et al. 2024:
// LoRA's best learning rate is about 10x full finetuning's).
import { experimentSchema } from './schemas';
import type { ExperimentConfig } from './generated/experiment';

type Schema = { [k: string]: unknown };

export const DEFAULT_LR = { lora: 2e-4, full: 2e-5 } as const;

/** The pre-default ("as written") config behind a defaults-filled one; see `writtenConfig`. */
const WRITTEN = Symbol('finetuneLab.written');

function resolveRef(s: Schema | undefined): Schema | undefined {
  let cur = s;
  for (let i = 0; cur && typeof cur.$ref === 'string' && i < 8; i++) {
    const ref = cur.$ref as string;
    if (!ref.startsWith('#/')) return undefined;
    let target: unknown = experimentSchema;
    for (const seg of ref.slice(2).split('/')) target = (target as Schema)?.[seg];
    cur = target as Schema | undefined;
  }
  return cur;
}

/** The schema of a dotted setting ('lora.rank'), or undefined when the experiment schema has no such key. */
export function experimentSubschema(path: readonly string[]): Schema | undefined {
  let s: Schema | undefined = experimentSchema as Schema;
  for (const seg of path) {
    s = resolveRef(s);
    const props = s?.properties as Record<string, Schema> | undefined;
    if (!props || !(seg in props)) return undefined;
    s = props[seg];
  }
  return s;
}

/** JSON pointer into the experiment schema for a dotted setting, for `validateExperimentAt`. */
export const experimentPointer = (path: readonly string[]): string => path.map((p) => `/properties/${p}`).join('');

/** Property names the schema allows at a dotted path ('' = top level). */
export function knownKeys(path: readonly string[]): string[] {
  const s = resolveRef(path.length ? experimentSubschema(path) : (experimentSchema as Schema));
  return Object.keys((s?.properties as object | undefined) ?? {});
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The oneOf branch a `discriminator` (an eval task's `type`) selects for `value`, if any. */
export function discriminated(value: unknown, schema: Schema | undefined): Schema | undefined {
  const s = resolveRef(schema);
  const tag = (s?.discriminator as { propertyName?: string } | undefined)?.propertyName;
  if (!s || !tag || !isObj(value) || !Array.isArray(s.oneOf)) return undefined;
  for (const option of s.oneOf as Schema[]) {
    const branch = resolveRef(option);
    const prop = ((branch?.properties as Record<string, Schema> | undefined) ?? {})[tag] ?? {};
    if (prop.const === value[tag] || (Array.isArray(prop.enum) && prop.enum.includes(value[tag]))) return branch;
  }
  return undefined;
}

function fill(value: unknown, schema: Schema | undefined, skip: (key: string) => boolean): unknown {
  const branch = discriminated(value, schema);
  const s = branch ?? resolveRef(schema);
  if (!s) return value;
  if (Array.isArray(value) && s.items) return value.map((v) => fill(v, s.items as Schema, () => false));
  if (!isObj(value) || !isObj(s.properties)) return value;
  const out: Record<string, unknown> = { ...value };
  for (const [key, propSchema] of Object.entries(s.properties as Record<string, Schema>)) {
    if (skip(key)) continue;
    if (out[key] === undefined && 'default' in propSchema) out[key] = structuredClone(propSchema.default);
    const resolved = resolveRef(propSchema);
    // A missing section (train:, evals:, ...) is created so its own defaults fill in.
    if (out[key] === undefined && resolved?.type === 'object' && isObj(resolved.properties) && key !== 'sweep') out[key] = {};
    if (out[key] !== undefined) out[key] = fill(out[key], propSchema, () => false);
  }
  return out;
}

/**
 * Returns a copy of a (schema-valid) experiment with every default filled. The `lora` section is
 * created only when the method is lora (a full run ignores it; a written one is kept and filled).
 * The result remembers the config as written, so `expandSweep` can recompute the derived defaults
 * (alpha, lr) for each sweep point.
 */
export function applyDefaults(raw: unknown): ExperimentConfig {
  const written = structuredClone(writtenConfig(raw as ExperimentConfig) ?? raw);
  const method = isObj(raw) ? raw.method : undefined;
  const out = fill(structuredClone(raw), experimentSchema as Schema, (key) => key === 'lora' && method !== 'lora' && !(isObj(raw) && raw.lora !== undefined)) as Record<string, unknown>;
  const lora = out.lora as Record<string, unknown> | undefined;
  if (isObj(lora) && lora.alpha === undefined && typeof lora.rank === 'number') lora.alpha = 2 * lora.rank;
  const train = out.train as Record<string, unknown> | undefined;
  if (isObj(train) && train.lr === undefined) train.lr = method === 'full' ? DEFAULT_LR.full : DEFAULT_LR.lora;
  Object.defineProperty(out, WRITTEN, { value: written, enumerable: false });
  return out as unknown as ExperimentConfig;
}

/** The config as the user wrote it, when `cfg` came from `applyDefaults`; otherwise undefined. */
export function writtenConfig(cfg: ExperimentConfig): ExperimentConfig | undefined {
  return isObj(cfg) ? ((cfg as unknown as Record<symbol, ExperimentConfig>)[WRITTEN]) : undefined;
}
