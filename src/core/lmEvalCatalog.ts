// The lm-eval task names the editor and the CLI check an experiment's `lm_eval` evals against, as
// the file is typed: the extension cannot import lm-eval (a Python library), so it reads
//   - trainer/finetune_lab/lm_eval_tasks.json: lm-eval's own tasks, groups and tags and which of them
//     run generated code (unsafe_code), generated from the pinned lm-eval by
//     trainer/scripts/gen_lm_eval_tasks.py (a pytest fails while it is stale);
//   - the task YAMLs of the built-in folder (trainer/finetune_lab/tasks) and of each eval's
//     include_path, scanned here: their `task:` / `group:` / `tag:` names and `unsafe_code`.
// The trainer checks again with lm-eval itself before a run starts (finetune_lab/lmeval.py).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { assertYamlNesting } from './yamlBounds';
import { levenshtein } from './diagnostics';

export interface LmEvalCatalog {
  /** The lm-eval version the shipped names come from. */
  version: string;
  has(name: string): boolean;
  /** The task, or a task of the group or tag, executes model-generated code. */
  unsafe(name: string): boolean;
  /** Up to `n` known names closest to `name` (edit distance, then length). */
  closest(name: string, n?: number): string[];
}

interface ShippedCatalog { lm_eval_version: string; tasks: string[]; groups: string[]; tags: string[]; unsafe_code: string[]; names?: Set<string> }
interface ScannedTask { name: string; unsafe: boolean; children: string[] }

const MAX_FILES = 5000;
const SCAN_TTL_MS = 2000;
const shippedCache = new Map<string, ShippedCatalog | null>();
const scanCache = new Map<string, { at: number; tasks: ScannedTask[] }>();

function readShipped(file: string): ShippedCatalog | null {
  if (!shippedCache.has(file)) {
    try {
      const c = JSON.parse(fs.readFileSync(file, 'utf8')) as ShippedCatalog;
      c.names = new Set([...c.tasks, ...c.groups, ...c.tags]); // once: ~14,700 names, checked on every keystroke's parse
      shippedCache.set(file, c);
    } catch { shippedCache.set(file, null); }
  }
  return shippedCache.get(file) ?? null;
}

function yamlFiles(dir: string, out: string[] = []): string[] {
  let entries: fs.Dirent[];
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return out; }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (out.length >= MAX_FILES) break;
    const p = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== '__pycache__' && !e.name.startsWith('.')) yamlFiles(p, out);
    else if (e.isFile() && e.name.endsWith('.yaml')) out.push(p);
  }
  return out;
}

/** Top-level keys of a task YAML (lm-eval's `!function` tags are left unresolved), with `include:` merged under it. */
function readTaskYaml(file: string, depth = 0): Record<string, unknown> {
  try {
    const text = fs.readFileSync(file, 'utf8');
    assertYamlNesting(text);
    const doc = parseDocument(text, { strict: false, logLevel: 'silent' });
    const own = (doc.toJS({ maxAliasCount: 50 }) ?? {}) as Record<string, unknown>;
    const inc = own.include;
    if (typeof inc === 'string' && depth < 4) return { ...readTaskYaml(path.resolve(path.dirname(file), inc), depth + 1), ...own };
    return own;
  } catch {
    return {};
  }
}

/** The tasks, groups and tags that the YAMLs under `dir` define (as lm-eval's index reads them). */
export function scanTaskFolder(dir: string, now = Date.now()): ScannedTask[] {
  const hit = scanCache.get(dir);
  if (hit && now - hit.at < SCAN_TTL_MS) return hit.tasks;
  const tasks: ScannedTask[] = [];
  for (const file of yamlFiles(dir)) {
    const cfg = readTaskYaml(file);
    const unsafe = cfg.unsafe_code === true;
    const children = Array.isArray(cfg.task) ? cfg.task.map((c) => (typeof c === 'string' ? c : String((c as Record<string, unknown>)?.task ?? ''))) : [];
    if (typeof cfg.group === 'string') tasks.push({ name: cfg.group, unsafe, children });
    else if (typeof cfg.task === 'string') tasks.push({ name: cfg.task, unsafe, children: [] });
    const tags = Array.isArray(cfg.tag) ? cfg.tag : typeof cfg.tag === 'string' ? [cfg.tag] : [];
    if (typeof cfg.task === 'string') for (const t of tags) if (typeof t === 'string') tasks.push({ name: t, unsafe, children: [cfg.task] });
  }
  scanCache.set(dir, { at: now, tasks });
  return tasks;
}

/**
 * The catalog for an experiment: the shipped names (from `trainerDir`) and the YAMLs of the built-in
 * folder and `includeDirs`. Undefined when the shipped list cannot be read (a trainer folder without it).
 */
export function lmEvalCatalog(trainerDir: string, includeDirs: readonly string[] = []): LmEvalCatalog | undefined {
  const shipped = readShipped(path.join(trainerDir, 'finetune_lab', 'lm_eval_tasks.json'));
  if (!shipped) return undefined;
  const names = shipped.names!;
  const unsafe = new Set(shipped.unsafe_code);
  const local = new Map<string, ScannedTask[]>();
  for (const dir of [path.join(trainerDir, 'finetune_lab', 'tasks'), ...includeDirs]) {
    for (const t of scanTaskFolder(dir)) local.set(t.name, [...(local.get(t.name) ?? []), t]);
  }
  const isUnsafe = (name: string, seen: Set<string>): boolean => {
    if (seen.has(name)) return false;
    seen.add(name);
    const mine = local.get(name);
    if (mine) return mine.some((t) => t.unsafe || t.children.some((c) => isUnsafe(c, seen)));
    return unsafe.has(name);
  };
  return {
    version: shipped.lm_eval_version,
    has: (name) => names.has(name) || local.has(name),
    unsafe: (name) => isUnsafe(name, new Set()),
    closest: (name, n = 5) => {
      const all = [...local.keys(), ...names];
      const cap = Math.max(2, Math.floor(name.length / 3));
      return all
        .filter((c) => Math.abs(c.length - name.length) <= cap)
        .map((c) => ({ c, d: levenshtein(name.toLowerCase(), c.toLowerCase()) }))
        .filter((x) => x.d <= cap)
        .sort((a, b) => a.d - b.d || a.c.length - b.c.length || a.c.localeCompare(b.c))
        .slice(0, n)
        .map((x) => x.c);
    },
  };
}
