// Small text edits that set, rename or delete one key of a YAML document, keeping every comment,
// the key order and the formatting around it (the yaml package's toString() would re-format the whole
// file). Pure (no vscode import): used by quick fixes and the Experiment Form, tested in test/shell.
import YAML, { isMap, isPair, isScalar, isSeq, type Document, type Node, type Pair } from 'yaml';

export type PathSeg = string | number;
export interface TextEdit { start: number; end: number; text: string }

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A value as YAML flow text: numbers below 1e-3 in exponent form (2e-4, as people write LRs). */
export function flowText(v: unknown): string {
  if (typeof v === 'number') return v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential() : String(v);
  if (Array.isArray(v)) return `[${v.map(flowText).join(', ')}]`;
  if (isObj(v)) return `{${Object.entries(v).map(([k, x]) => `${flowKey(k)}: ${flowText(x)}`).join(', ')}}`;
  if (typeof v === 'string') {
    const plain = YAML.stringify(v).trimEnd();
    return plain.includes('\n') ? JSON.stringify(v) : plain;
  }
  return v === null || v === undefined ? 'null' : String(v);
}

const flowKey = (k: string): string => (/^[A-Za-z0-9_.-]+$/.test(k) ? k : JSON.stringify(k));

function findPair(map: unknown, seg: PathSeg): Pair<Node, Node> | undefined {
  if (!isMap(map)) return undefined;
  for (const p of map.items) {
    if (!isPair(p)) continue;
    const k = isScalar(p.key) ? String(p.key.value) : String(p.key);
    if (k === String(seg)) return p as Pair<Node, Node>;
  }
  return undefined;
}

function nodeAt(doc: Document, path: readonly PathSeg[]): { node?: Node; pair?: Pair<Node, Node>; parent?: Node; depth: number } {
  let cur: unknown = doc.contents;
  let parent: Node | undefined;
  let pair: Pair<Node, Node> | undefined;
  let depth = 0;
  for (const seg of path) {
    let next: unknown;
    if (isSeq(cur) && typeof seg === 'number') { next = cur.items[seg]; pair = undefined; }
    else { pair = findPair(cur, seg); next = pair?.value; }
    if (next === undefined || (pair && next === null && depth < path.length - 1)) return { node: cur as Node, parent, depth, pair: undefined };
    parent = cur as Node;
    cur = next;
    depth++;
  }
  return { node: (cur ?? undefined) as Node | undefined, pair, parent, depth };
}

const lineStart = (text: string, i: number): number => text.lastIndexOf('\n', i - 1) + 1;
const lineEnd = (text: string, i: number): number => { const n = text.indexOf('\n', i); return n < 0 ? text.length : n; };

function blockLines(path: readonly PathSeg[], value: unknown, indent: string): string {
  const [head, ...rest] = path;
  if (!rest.length) return `${indent}${flowKey(String(head))}: ${flowText(value)}`;
  return `${indent}${flowKey(String(head))}:\n${blockLines(rest, value, indent + '  ')}`;
}

/** Whole-text fallback: the yaml Document API, then the smallest span that changed. */
function viaDocument(text: string, mutate: (d: Document) => void): TextEdit | undefined {
  const doc = YAML.parseDocument(text);
  if (doc.errors.length) return undefined;
  mutate(doc);
  const next = doc.toString();
  let a = 0;
  while (a < text.length && a < next.length && text[a] === next[a]) a++;
  let b = 0;
  while (b < text.length - a && b < next.length - a && text[text.length - 1 - b] === next[next.length - 1 - b]) b++;
  return { start: a, end: text.length - b, text: next.slice(a, next.length - b) };
}

/** The edit that sets `path` to `value` (or removes the key when `value` is undefined). */
export function setValueEdit(text: string, path: readonly PathSeg[], value: unknown): TextEdit | undefined {
  const doc = YAML.parseDocument(text);
  if (doc.errors.length || !path.length) return undefined;
  const hit = nodeAt(doc, path);
  const exists = hit.depth === path.length;
  if (value === undefined) {
    if (!exists) return undefined;
    const parent = hit.parent;
    if (hit.pair && isMap(parent) && !parent.flow && hit.pair.key && (hit.pair.key as Node).range) {
      const keyStart = (hit.pair.key as Node).range![0];
      const valueEnd = hit.node?.range ? hit.node.range[1] : (hit.pair.key as Node).range![1];
      const start = lineStart(text, keyStart);
      const end = Math.min(text.length, lineEnd(text, Math.max(valueEnd - 1, keyStart)) + 1);
      return { start, end, text: '' };
    }
    const item = hit.node;
    if (isSeq(parent) && !parent.flow && item?.range && typeof path[path.length - 1] === 'number') {
      // A block sequence item ("- {name: code, ...}"): its lines go.
      const start = lineStart(text, item.range[0]);
      const end = Math.min(text.length, lineEnd(text, Math.max(item.range[1] - 1, item.range[0])) + 1);
      return { start, end, text: '' };
    }
    return viaDocument(text, (d) => d.deleteIn(path));
  }
  if (exists && hit.node?.range) {
    const node = hit.node;
    const [s, e] = node.range!;
    if (isScalar(node) || (isSeq(node) && node.flow) || (isMap(node) && node.flow) || isScalar(value)) {
      return { start: s, end: e, text: flowText(value) };
    }
    return viaDocument(text, (d) => d.setIn(path, value));
  }
  // Missing key: add it as the last entry of the deepest existing block map.
  const parentPath = path.slice(0, hit.depth);
  const parent = hit.depth === 0 ? doc.contents : nodeAt(doc, parentPath).node;
  if (isMap(parent) && !parent.flow && parent.items.length) {
    const first = parent.items[0].key as Node | null;
    const last = parent.items[parent.items.length - 1];
    const lastEnd = ((last.value as Node | null)?.range ?? (last.key as Node | null)?.range)?.[1];
    if (first?.range && lastEnd !== undefined) {
      const indent = ' '.repeat(first.range[0] - lineStart(text, first.range[0]));
      const at = lineEnd(text, Math.max(0, lastEnd - 1));
      return { start: at, end: at, text: '\n' + blockLines(path.slice(hit.depth), value, indent) };
    }
  }
  const rest = path.slice(hit.depth);
  if (isSeq(parent) && parent.items.length && rest.length === 1 && rest[0] === parent.items.length) {
    const first = parent.items[0] as Node | null;
    const last = parent.items[parent.items.length - 1] as Node | null;
    if (!parent.flow && first?.range && last?.range) {
      // Append "- value" under the last item, at the same indentation.
      const dash = text.lastIndexOf('-', first.range[0]);
      const indent = ' '.repeat(Math.max(0, dash - lineStart(text, dash)));
      const at = lineEnd(text, Math.max(0, last.range[1] - 1));
      return { start: at, end: at, text: `\n${indent}- ${flowText(value)}` };
    }
    if (parent.flow && parent.range) {
      const close = text.lastIndexOf(']', parent.range[1]);
      if (close > parent.range[0]) return { start: close, end: close, text: `, ${flowText(value)}` };
    }
  }
  if (isMap(parent) && parent.flow && parent.range) {
    // A flow map ({rank: 16, alpha: 32}): add ", key: value" before its closing brace.
    const close = text.lastIndexOf('}', parent.range[1]);
    if (close > parent.range[0]) {
      const nested = rest.slice(1).reduceRight<unknown>((acc, k) => ({ [String(k)]: acc }), value);
      const before = text.slice(parent.range[0] + 1, close).trim();
      const sep = before ? ', ' : '';
      const trimmedEnd = close - (text.slice(0, close).length - text.slice(0, close).trimEnd().length);
      return { start: trimmedEnd, end: trimmedEnd, text: `${sep}${flowKey(String(rest[0]))}: ${flowText(nested)}` };
    }
  }
  return viaDocument(text, (d) => d.setIn(path, value));
}

/** The edit that renames the last key of `path` to `newKey`. */
export function renameKeyEdit(text: string, path: readonly PathSeg[], newKey: string): TextEdit | undefined {
  const doc = YAML.parseDocument(text);
  const hit = nodeAt(doc, path);
  const key = hit.depth === path.length ? (hit.pair?.key as Node | undefined) : undefined;
  if (!key?.range) return undefined;
  return { start: key.range[0], end: key.range[1], text: flowKey(newKey) };
}

/** Applies an edit to a string (for tests and previews). */
export const applyEdit = (text: string, e: TextEdit): string => text.slice(0, e.start) + e.text + text.slice(e.end);

/** Splits a dotted setting ('lora.rank') into a path; sweep axes keep their dotted key whole. */
export function splitPath(dotted: string): PathSeg[] {
  if (dotted.startsWith('sweep.')) return ['sweep', dotted.slice('sweep.'.length)];
  return dotted.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/**
 * Several dotted keys set one after another with setValueEdit (each edit as small as the others), as one
 * edit of the span that changed; undefined when a key cannot be set.
 */
export function setValuesEdit(text: string, values: Record<string, unknown>): TextEdit | undefined {
  let next = text;
  for (const [key, value] of Object.entries(values)) {
    const edit = setValueEdit(next, splitPath(key), value);
    if (!edit) return undefined;
    next = next.slice(0, edit.start) + edit.text + next.slice(edit.end);
  }
  let start = 0;
  while (start < text.length && start < next.length && text[start] === next[start]) start++;
  let tail = 0;
  while (tail < text.length - start && tail < next.length - start && text[text.length - 1 - tail] === next[next.length - 1 - tail]) tail++;
  return { start, end: text.length - tail, text: next.slice(start, next.length - tail) };
}
