// Reads an experiment file (*.finetune.yaml): YAML syntax, the schema, semantic checks and the paper
// lints, each problem as a Diagnostic at the node it is about; and the config with defaults filled.
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML, { LineCounter, type Document } from 'yaml';
import type { ExperimentConfig } from './generated/experiment';
import { experimentSchema, validateExperiment, validateExperimentAt } from './schemas';
import { applyDefaults, experimentPointer, experimentSubschema, knownKeys } from './defaults';
import { didYouMean, hasErrors, type Diagnostic } from './diagnostics';
import { schemaDiagnostics } from './schemaMessages';
import { rangeOf, rangeOfOffsets, type YamlSource } from './yamlPositions';
import { lintExperiment } from './lints';
import { MAX_TEXT_DEPTH, textNestingBeyond } from './yamlBounds';
import { launcherDiagnostics } from './launcherChecks';
import { backtrackingProblem } from './modulePatterns';
import { lmEvalDiagnostics, type LmEvalCheckOptions } from './lmEvalChecks';

export interface LoadedExperiment {
  /** The config with defaults filled; undefined when the file has errors. */
  value?: ExperimentConfig;
  /** What the YAML parsed to, before validation and defaults. */
  raw: unknown;
  doc: Document;
  lineCounter: LineCounter;
  text: string;
  file?: string;
  diagnostics: Diagnostic[];
  /** No diagnostic of severity error. */
  ok: boolean;
}

export interface ParseOptions {
  /** Checks that a data file exists (a warning when not); paths are resolved against the file's folder. */
  fileExists?: (absPath: string) => boolean;
  /** Run the paper lints (lints.ts) too; default true. */
  lints?: boolean;
  /** Check lm_eval evals: task names, include_path, code execution (lmEvalChecks.ts). */
  lmEval?: LmEvalCheckOptions;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseExperiment(text: string, file?: string, opts: ParseOptions = {}): LoadedExperiment {
  const lineCounter = new LineCounter();
  const tooDeep = textNestingBeyond(text, MAX_TEXT_DEPTH);
  // Bounded before parsing (yamlBounds.ts): the parser's stack, and the process, would not survive.
  const doc = YAML.parseDocument(tooDeep === undefined ? text : '', { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (tooDeep !== undefined) { // the line starts the parser would have noted, for the diagnostic's position
    if (!lineCounter.lineStarts.length) lineCounter.addNewLine(0);
    for (let k = text.indexOf('\n'); k !== -1; k = text.indexOf('\n', k + 1)) lineCounter.addNewLine(k + 1);
  }
  const src: YamlSource = { doc, lineCounter, text };
  const diagnostics: Diagnostic[] = [];
  const result = (raw: unknown, value?: ExperimentConfig): LoadedExperiment => {
    // A message quotes the value it is about; a 100 kB string makes an unreadable Problems entry.
    for (const d of diagnostics) if (d.message.length > MAX_MESSAGE) d.message = `${d.message.slice(0, MAX_MESSAGE - 1)}…`;
    // A broken file can make thousands (one per unclosed bracket): the first ones say what to fix.
    if (diagnostics.length > MAX_DIAGNOSTICS) {
      const rest = diagnostics.splice(MAX_DIAGNOSTICS - 1);
      const severity = hasErrors(rest) ? 'error' : rest[0].severity; // an error cut off still refuses the file
      diagnostics.push({ ...rest[0], severity, message: `and ${rest.length} more problems (fix the ones above first)`, code: 'more-problems', fix: undefined, cite: undefined });
    }
    const ok = !hasErrors(diagnostics);
    return { value: ok ? value : undefined, raw, doc, lineCounter, text, file, diagnostics, ok };
  };

  if (tooDeep !== undefined) {
    diagnostics.push({ severity: 'error', message: `collections are nested more than ${MAX_TEXT_DEPTH} levels deep here; an experiment file needs 4`, ...rangeOfOffsets(lineCounter, tooDeep, tooDeep + 1), path: '', code: 'yaml-depth' });
    return result(undefined);
  }
  for (const [severity, list] of [['error', doc.errors], ['warning', doc.warnings]] as const) {
    for (const e of list) {
      diagnostics.push({ severity, message: e.message.split('\n')[0], ...rangeOfOffsets(lineCounter, e.pos[0], e.pos[1]), path: '', code: `yaml-${e.code}` });
    }
  }
  // YAML 1.2 allows only printable characters (tab, newline and return aside); libyaml, which reads
  // config.yaml in the trainer, refuses the rest, so the editor says so too.
  const bad = /[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u.exec(text);
  if (bad && !doc.errors.length) {
    const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    diagnostics.push({ severity: 'error', message: `control character U+${code} is not allowed in YAML`, ...rangeOfOffsets(lineCounter, bad.index, bad.index + bad[0].length), path: '', code: 'yaml-control-character' });
  }
  if (hasErrors(diagnostics)) return result(undefined);

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) { // aliases that expand a few lines into millions of nodes (a "billion laughs" file)
    diagnostics.push({ severity: 'error', message: `the YAML cannot be read: ${(e as Error).message}`, ...rangeOf(src, []), path: '', code: 'yaml-resources' });
    return result(undefined);
  }
  const depth = nestingDepth(raw, MAX_DEPTH + 1);
  if (depth > MAX_DEPTH) {
    diagnostics.push({ severity: 'error', message: `values are nested more than ${MAX_DEPTH} levels deep; an experiment file needs 4`, ...rangeOf(src, []), path: '', code: 'yaml-depth' });
    return result(undefined);
  }
  if (!isObj(raw)) {
    diagnostics.push({ severity: 'error', message: 'an experiment file must be a mapping (name:, model:, data:, method:, ...)', ...rangeOf(src, []), path: '', code: 'schema-type' });
    return result(raw);
  }
  const validate = validateExperiment();
  if (!validate(raw)) diagnostics.push(...schemaDiagnostics(validate.errors ?? [], src));
  diagnostics.push(...sweepDiagnostics(raw, src));
  diagnostics.push(...methodDiagnostics(raw, src));
  if (hasErrors(diagnostics)) return result(raw);

  const value = applyDefaults(raw);
  diagnostics.push(...moduleNameDiagnostics(raw, src));
  diagnostics.push(...launcherDiagnostics(raw, value, src));
  if (opts.fileExists) diagnostics.push(...dataFileDiagnostics(value, src, file, opts.fileExists));
  if (opts.lmEval) diagnostics.push(...lmEvalDiagnostics(value, src, file, opts.lmEval));
  if (opts.lints !== false) diagnostics.push(...lintExperiment(value, src));
  diagnostics.sort((a, b) => a.line - b.line || a.column - b.column);
  return result(raw, value);
}

const MAX_MESSAGE = 300;
const MAX_DIAGNOSTICS = 100;

/** Deeper than this is no experiment (the schema's deepest value is 4 levels down); validators recurse. */
const MAX_DEPTH = 32;

/** How deep `v` nests (lists and maps), counting no further than `limit`; iterative, so a deep value cannot overflow the stack. */
function nestingDepth(v: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (d > deepest) deepest = d;
    if (deepest >= limit) return deepest;
    if (x !== null && typeof x === 'object') for (const c of Object.values(x as object)) stack.push([c, d + 1]);
  }
  return deepest;
}

/** Reads and parses an experiment file, checking that its data files exist. */
export async function loadExperimentFile(file: string, opts: ParseOptions = {}): Promise<LoadedExperiment> {
  const abs = path.resolve(file);
  const text = await fs.promises.readFile(abs, 'utf8');
  return parseExperiment(text, abs, { fileExists: (p) => fs.existsSync(p), ...opts });
}

/** The most runs one experiment's sweep may make (the runs table is measured at 10,000). */
export const MAX_SWEEP_RUNS = 10_000;

/** Sweep keys must name settings the schema has, and each value must be valid for that setting. */
function sweepDiagnostics(raw: Record<string, unknown>, src: YamlSource): Diagnostic[] {
  const out: Diagnostic[] = [];
  if (!isObj(raw.sweep)) return out;
  // Counted before anything expands it: a few long lists multiply into more runs than memory holds.
  const points = Object.values(raw.sweep).reduce<number>((n, v) => n * (Array.isArray(v) && v.length ? v.length : 1), 1);
  if (points > MAX_SWEEP_RUNS) {
    out.push({ severity: 'error', code: 'sweep-size', path: 'sweep', ...rangeOf(src, ['sweep'], 'key'),
      message: `the sweep makes ${points.toLocaleString('en-US')} runs; at most ${MAX_SWEEP_RUNS.toLocaleString('en-US')} (split it into several experiments)` });
    return out;
  }
  for (const [key, values] of Object.entries(raw.sweep)) {
    const segs = key.split('.');
    if (key === 'sweep' || segs[0] === 'sweep' || key === 'name') {
      out.push({ severity: 'error', message: `'${key}' cannot be swept`, ...rangeOf(src, ['sweep', key], 'key'), path: `sweep.${key}`, code: 'sweep-key' });
      continue;
    }
    if (!experimentSubschema(segs)) {
      const parent = segs.slice(0, -1);
      const known = parent.length && !experimentSubschema(parent) ? knownKeys([]) : knownKeys(parent);
      const last = parent.length && !experimentSubschema(parent) ? segs[0] : segs[segs.length - 1];
      const guess = didYouMean(last, known);
      const suggestion = guess ? (parent.length && experimentSubschema(parent) ? [...parent, guess].join('.') : guess) : undefined;
      out.push({
        severity: 'error', code: 'sweep-unknown-key', path: `sweep.${key}`, ...rangeOf(src, ['sweep', key], 'key'),
        message: `sweep key '${key}' is not a setting of the experiment${suggestion ? ` (did you mean '${suggestion}'?)` : ''}`,
        ...(suggestion && suggestion.split('.').length === segs.length ? { fix: { path: `sweep.${key}`, value: undefined, title: `Rename to '${suggestion}'`, renameKey: suggestion } } : {}),
      });
      continue;
    }
    if (!Array.isArray(values)) continue; // the schema already says it must be a list
    const check = validateExperimentAt(experimentPointer(segs));
    values.forEach((v, i) => {
      if (check && !check(v)) {
        const first = check.errors?.[0];
        out.push({ severity: 'error', code: 'sweep-value', path: `sweep.${key}.${i}`, ...rangeOf(src, ['sweep', key, i]),
          message: `sweep value ${JSON.stringify(v)} is not a valid ${key}: ${first?.message ?? 'invalid'}` });
      }
    });
  }
  return out;
}

/** A lora: section has no effect on a full run (unless a sweep also runs LoRA). */
function methodDiagnostics(raw: Record<string, unknown>, src: YamlSource): Diagnostic[] {
  const sweptMethods = isObj(raw.sweep) && Array.isArray(raw.sweep.method) ? raw.sweep.method : [raw.method];
  if (raw.lora === undefined || raw.method !== 'full' || sweptMethods.includes('lora')) return [];
  return [{ severity: 'info', code: 'lora-unused', path: 'lora', ...rangeOf(src, ['lora'], 'key'), message: "the 'lora' section is ignored: method is full" }];
}

/** Data files (not builtin:) that are missing: a warning, since the file may be created before the run starts. */
function dataFileDiagnostics(cfg: ExperimentConfig, src: YamlSource, file: string | undefined, exists: (p: string) => boolean): Diagnostic[] {
  const refs: { at: (string | number)[]; ref: string }[] = [{ at: ['data', 'train'], ref: cfg.data.train }];
  for (const role of ['learning', 'forgetting'] as const) cfg.evals?.[role]?.forEach((t, i) => { if ('data' in t) refs.push({ at: ['evals', role, i, 'data'], ref: t.data }); });
  const base = file ? path.dirname(file) : process.cwd();
  return refs
    .filter(({ ref }) => !ref.startsWith('builtin:') && !exists(path.resolve(base, ref)))
    .map(({ at, ref }) => ({ severity: 'warning' as const, code: 'data-missing', path: at.join('.'), ...rangeOf(src, at),
      message: `data file not found: ${ref} (looked in ${path.resolve(base, ref)})` }));
}

/**
 * The built-in models are Llama blocks (trainer/finetune_lab/builtin_models.json): a module list that
 * matches none of their linear layers would train or measure nothing. hf: models are not known here.
 */
/** The longest module name or regex the schema allows (targetModules' items): 256. */
const MAX_MODULE_PATTERN = ((experimentSchema.definitions.targetModules.oneOf[1] as { items: { maxLength: number } }).items.maxLength);

export const BUILTIN_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

function moduleNameDiagnostics(raw: Record<string, unknown>, src: YamlSource): Diagnostic[] {
  const base = isObj(raw.model) ? raw.model.base : undefined;
  const builtin = typeof base === 'string' && base.startsWith('builtin:');
  const out: Diagnostic[] = [];
  for (const section of ['lora', 'spectra'] as const) {
    const key = section === 'lora' ? 'target_modules' : 'modules';
    const sec = raw[section];
    const list = isObj(sec) ? sec[key] : undefined;
    if (!Array.isArray(list)) continue;
    list.forEach((name, i) => {
      if (typeof name !== 'string') return;
      // before any match: a pattern that backtracks would freeze the extension host (any base: the trainer refuses it too)
      const backtracks = backtrackingProblem(name);
      if (backtracks) {
        out.push({ severity: 'error', code: 'module-pattern-backtracks', path: `${section}.${key}.${i}`,
          ...rangeOf(src, [section, key, i]), message: backtracks });
        return;
      }
      if (!builtin || matchesBuiltinModule(name)) return;
      const guess = didYouMean(name, [...BUILTIN_MODULES]);
      out.push({
        severity: 'error', code: 'unknown-module', path: `${section}.${key}.${i}`, ...rangeOf(src, [section, key, i]),
        message: `'${name}' matches no module of ${base} (its linear layers: ${BUILTIN_MODULES.join(', ')})${guess ? ` — did you mean '${guess}'?` : ''}`,
        ...(guess ? { fix: { path: `${section}.${key}.${i}`, value: guess, title: `Use '${guess}'` } } : {}),
      });
    });
  }
  return out;
}

/**
 * As the trainer matches (trainer/finetune_lab/lora.py): a plain name matches a module whose full name
 * ends with it (PEFT's suffix rule); a name with regex characters must fully match a full module name.
 */
function matchesBuiltinModule(name: string): boolean {
  // V8 aborts the whole process (no exception to catch) when it cannot compile a pattern: a long one
  // (the schema caps names at 256 characters, but this runs before its verdict is used) or one with
  // counted repetitions, which it expands (a{99999}{99999}). Those are left to the trainer, which
  // checks every name against the real model when the run starts.
  if (name.length > MAX_MODULE_PATTERN) return false;
  if (name.includes('{')) return true;
  const full = BUILTIN_MODULES.map((m) => `model.layers.0.${['gate_proj', 'up_proj', 'down_proj'].includes(m) ? 'mlp' : 'self_attn'}.${m}`);
  if (!/[\\^$*+?()[\]{}|]/.test(name)) return full.some((f) => f === name || f.endsWith(`.${name}`));
  try {
    const re = new RegExp(`^(?:${name})$`);
    return full.some((f) => re.test(f));
  } catch {
    return false;
  }
}
