// Maps a path in the parsed YAML back to line/column ranges, through the yaml package's node ranges
// (node.range = [start, valueEnd, nodeEnd] as offsets) and a LineCounter.
import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

export type PathSeg = string | number;

/** A parsed YAML text with what is needed to turn offsets into lines and columns. */
export interface YamlSource { doc: Document; lineCounter: LineCounter; text: string }

export interface Range { line: number; column: number; endLine: number; endColumn: number }

export function rangeOfOffsets(lc: LineCounter, start: number, end: number): Range {
  const a = lc.linePos(start);
  const b = lc.linePos(Math.max(start, end));
  return { line: a.line, column: a.col, endLine: b.line, endColumn: b.col };
}

function child(node: unknown, seg: PathSeg): { key?: Node; value?: Node } | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      const k = pair.key;
      if ((isScalar(k) ? String(k.value) : String(k)) === String(seg)) {
        return { key: isScalar(k) ? k : undefined, value: (pair.value ?? undefined) as Node | undefined };
      }
    }
    return undefined;
  }
  if (isSeq(node) && typeof seg === 'number') {
    const v = node.items[seg];
    return v ? { value: v as Node } : undefined;
  }
  return undefined;
}

/**
 * The YAML node for a path, walking as deep as the document goes. `deepest` is how many segments
 * matched; when the full path is missing, the range is that of the deepest existing ancestor's key.
 */
export function locate(doc: Document, path: readonly PathSeg[]): { key?: Node; value?: Node; depth: number } {
  let node: unknown = doc.contents;
  let found: { key?: Node; value?: Node } = { value: doc.contents ?? undefined };
  let depth = 0;
  for (const seg of path) {
    const c = child(node, seg);
    if (!c) break;
    found = c;
    node = c.value;
    depth++;
  }
  return { ...found, depth };
}

/** Range of a path's value (or of its key with `on: 'key'`); falls back to the deepest ancestor's key, then to line 1. */
export function rangeOf(src: YamlSource, path: readonly PathSeg[], on: 'key' | 'value' = 'value'): Range {
  const { doc, lineCounter: lc, text } = src;
  const { key, value, depth } = locate(doc, path);
  const exact = depth === path.length;
  const preferKey = on === 'key' || !exact;
  const node = (preferKey ? key ?? value : value ?? key) as Node | undefined;
  if (node?.range) {
    const [start, valueEnd] = node.range;
    // A block map or sequence's range spans every line below it; point at its first line only.
    if (!isScalar(node) && (isMap(node) || isSeq(node))) {
      const first = lc.linePos(start);
      const nl = text.indexOf('\n', start);
      const eol = nl < 0 ? text.length : nl;
      const b = lc.linePos(Math.min(valueEnd, eol));
      return { line: first.line, column: first.col, endLine: b.line, endColumn: b.col };
    }
    return rangeOfOffsets(lc, start, valueEnd);
  }
  return { line: 1, column: 1, endLine: 1, endColumn: 1 };
}

/** Splits an Ajv instancePath ('/lora/rank', '/sweep/lora.rank', '/evals/learning/0') into segments. */
export function pointerToPath(pointer: string): PathSeg[] {
  if (!pointer) return [];
  return pointer.slice(1).split('/').map((s) => {
    const u = s.replace(/~1/g, '/').replace(/~0/g, '~');
    return /^\d+$/.test(u) ? Number(u) : u;
  });
}

export const dotted = (path: readonly PathSeg[]): string => path.join('.');
