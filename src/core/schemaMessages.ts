// Turns Ajv's errors for an experiment file into human messages that name the setting
// ("lora.rank must be an integer ≥ 1", "unknown key 'lorra' in the top level (did you mean 'lora'?)"),
// one per problem, each at the YAML node it is about.
import { experimentSchema, type ErrorObject } from './schemas';
import type { Diagnostic } from './diagnostics';
import { didYouMean } from './diagnostics';
import { dotted, pointerToPath, rangeOf, type PathSeg, type YamlSource } from './yamlPositions';

type Schema = { [k: string]: unknown };

/** What a schema pattern means, in words (the schema's regexes are not for people). */
const PATTERN_WORDS: Record<string, string> = {
  '^[A-Za-z0-9][A-Za-z0-9_.-]*$': 'start with a letter or digit and use only letters, digits, _ . -',
  '^[A-Za-z0-9_.-]+$': 'use only letters, digits, _ . -',
  '^(builtin:(tiny|small|125m|350m)|hf:.+)$': 'be builtin:tiny, builtin:small, builtin:125m, builtin:350m or hf:<name or local folder>',
  '^[a-z_]+(\\.[a-z_]+)*$': 'be a dotted setting name such as lora.rank',
  '^[^\\s"\\\\]+$': 'be one word, without spaces, quotes or backslashes',
  '^[A-Za-z0-9_.:\\[\\]-]+:[0-9]{1,5}$': 'be host:port, e.g. node001:29500',
  '^[0-9]+[KMGT]?$': 'be a Slurm memory size: a number with an optional K, M, G or T suffix (e.g. 64G)',
  '^([0-9]+-)?[0-9]+(:[0-9]{1,2}){0,2}$': 'be a Slurm time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (e.g. 04:00:00)',
  '^-[^\\n\\r]+$': 'be one sbatch option starting with - (e.g. --exclusive), on one line',
  '^[^\\n\\r]+$': 'be on one line',
  '^[^\\n\\r]*$': 'be one line',
};
const DATA_WORDS = 'be builtin:brown, builtin:python-stdlib or builtin:arithmetic (optionally with #heldout or #train), or a path to a .jsonl file';

const quote = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : JSON.stringify(v));
const where = (path: PathSeg[]): string => (path.length ? `'${dotted(path)}'` : 'the top level');

function typeWords(t: unknown, integerHint = false): string {
  const one = (x: string): string =>
    ({ integer: 'an integer', number: 'a number', string: 'a string', boolean: 'true or false', array: 'a list', object: 'a mapping (key: value lines)', null: 'empty' })[x] ?? x;
  if (Array.isArray(t)) return t.map((x) => one(String(x))).join(' or ');
  return integerHint && t === 'number' ? 'a number' : one(String(t));
}

function describe(s: Schema): string {
  if (Array.isArray(s.enum)) return `one of ${s.enum.map(quote).join(', ')}`;
  if (s.type === 'array') {
    const items = s.items as Schema | undefined;
    return items?.type === 'string' ? 'a list of names' : 'a list';
  }
  if (s.type) return typeWords(s.type);
  return 'valid';
}

function bounds(s: Schema): string {
  const parts: string[] = [];
  if (typeof s.minimum === 'number') parts.push(`≥ ${s.minimum}`);
  if (typeof s.exclusiveMinimum === 'number') parts.push(`> ${s.exclusiveMinimum}`);
  if (typeof s.maximum === 'number') parts.push(`≤ ${s.maximum}`);
  if (typeof s.exclusiveMaximum === 'number') parts.push(`< ${s.exclusiveMaximum}`);
  return parts.join(' and ');
}

function got(data: unknown): string {
  if (data === null || data === undefined) return ' (it is empty)';
  const text = typeof data === 'object' ? (Array.isArray(data) ? 'a list' : 'a mapping') : quote(data);
  return ` (got ${text.length > 40 ? text.slice(0, 40) + '…' : text})`;
}

/** The values a discriminated oneOf accepts for its tag, in schema order (each branch's const or enum). */
function discriminatorValues(parent: Schema, tag: string): string[] {
  const resolve = (s: Schema): Schema => {
    const ref = typeof s.$ref === 'string' && s.$ref.startsWith('#/') ? s.$ref.slice(2).split('/') : undefined;
    return ref ? (ref.reduce<unknown>((o, k) => (o as Schema)?.[k], experimentSchema) as Schema) ?? s : s;
  };
  const out: string[] = [];
  for (const branch of (parent.oneOf as Schema[] | undefined) ?? []) {
    const prop = ((resolve(branch).properties as Record<string, Schema> | undefined) ?? {})[tag] ?? {};
    if (typeof prop.const === 'string') out.push(prop.const);
    if (Array.isArray(prop.enum)) out.push(...prop.enum.map(String));
  }
  return out;
}

/** Diagnostics for Ajv errors of the experiment schema, deduplicated and ordered by position. */
export function schemaDiagnostics(errors: ErrorObject[], src: YamlSource): Diagnostic[] {
  // A failed oneOf reports each branch's errors too; the oneOf's own message covers them.
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf').map((e) => e.schemaPath);
  const kept = errors.filter((e) => e.keyword === 'oneOf' || !oneOfs.some((p) => e.schemaPath.startsWith(p + '/')));
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const e of kept) {
    const d = one(e, src);
    if (!d) continue;
    const k = `${d.line}:${d.column}:${d.message}`;
    if (!seen.has(k)) { seen.add(k); out.push(d); }
  }
  return out.sort((a, b) => a.line - b.line || a.column - b.column);
}

function one(e: ErrorObject, src: YamlSource): Diagnostic | undefined {
  const path = pointerToPath(e.instancePath);
  const name = dotted(path) || 'the file';
  const ps = (e.parentSchema ?? {}) as Schema;
  const at = (p: PathSeg[], on: 'key' | 'value' = 'value') => rangeOf(src, p, on);
  const diag = (message: string, p: PathSeg[] = path, on: 'key' | 'value' = 'value', extra: Partial<Diagnostic> = {}): Diagnostic =>
    ({ severity: 'error', message, ...at(p, on), path: dotted(p), code: `schema-${e.keyword}`, ...extra });

  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys((ps.properties as object | undefined) ?? {});
      const guess = didYouMean(key, known);
      return diag(`unknown key '${key}' in ${where(path)}${guess ? ` (did you mean '${guess}'?)` : known.length ? `; known keys: ${known.join(', ')}` : ''}`,
        [...path, key], 'key', guess ? { fix: { path: dotted([...path, key]), value: undefined, title: `Rename '${key}' to '${guess}'`, renameKey: guess } } : {});
    }
    case 'required': {
      const missing = String((e.params as { missingProperty: string }).missingProperty);
      return diag(`missing required key '${missing}' in ${where(path)}`, path, 'key');
    }
    case 'enum': {
      const values = (e.params as { allowedValues: unknown[] }).allowedValues;
      const guess = typeof e.data === 'string' ? didYouMean(e.data, values.map(String)) : undefined;
      return diag(`${name} must be one of ${values.map(quote).join(', ')}${got(e.data)}${guess ? ` — did you mean '${guess}'?` : ''}`, path, 'value',
        guess ? { fix: { path: dotted(path), value: guess, title: `Change to '${guess}'` } } : {});
    }
    case 'const':
      return diag(`${name} must be ${quote((e.params as { allowedValue: unknown }).allowedValue)}${got(e.data)}`);
    case 'type': {
      const b = bounds(ps);
      return diag(`${name} must be ${typeWords(ps.type ?? (e.params as { type: unknown }).type)}${b ? ' ' + b : ''}${got(e.data)}`);
    }
    case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum':
      return diag(`${name} must be ${ps.type === 'integer' ? 'an integer' : 'a number'} ${bounds(ps)}${got(e.data)}`);
    case 'minLength':
      return diag(`${name} must not be empty`);
    case 'minItems':
      return diag(`${name} must have at least ${(e.params as { limit: number }).limit} item(s)`);
    case 'maxItems':
      return diag(`${name} must have at most ${(e.params as { limit: number }).limit} item(s)`);
    case 'pattern': {
      const pattern = String((e.params as { pattern: string }).pattern);
      const words = PATTERN_WORDS[pattern] ?? (pattern.includes('builtin:(brown') ? DATA_WORDS : `match ${pattern}`);
      // propertyNames reports the bad key with instancePath at its parent and a propertyName param.
      const propName = (e as ErrorObject & { propertyName?: string }).propertyName;
      if (propName !== undefined) return diag(`key '${propName}' in ${where(path)} must ${words}`, [...path, propName], 'key');
      return diag(`${name} must ${words}${got(e.data)}`);
    }
    case 'propertyNames':
      return undefined; // reported through its pattern error, which names the key
    case 'discriminator': {
      // An eval task's `type` picks its shape; a type with no shape is the error (the shape's own errors come otherwise).
      const params = e.params as { error?: string; tag?: string; tagValue?: unknown };
      const tag = params.tag ?? 'type';
      const values = discriminatorValues(ps, tag);
      const bad = (e.data as Record<string, unknown> | undefined)?.[tag];
      if (bad === undefined) return undefined; // the missing key is reported by `required`
      const guess = typeof bad === 'string' ? didYouMean(bad, values) : undefined;
      const at = [...path, tag];
      return diag(`${dotted(at)} must be one of ${values.map(quote).join(', ')}${got(bad)}${guess ? ` — did you mean '${guess}'?` : ''}`, at, 'value',
        guess ? { fix: { path: dotted(at), value: guess, title: `Change to '${guess}'` } } : {});
    }
    case 'oneOf': {
      const branches = (Array.isArray(e.schema) ? e.schema : []) as Schema[];
      const resolved = branches.map((b) => describe(b));
      return diag(`${name} must be ${resolved.join(' or ')}${got(e.data)}`);
    }
    default:
      return diag(`${name} ${e.message ?? 'is not valid'}`);
  }
}
