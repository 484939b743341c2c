// The key path at a text offset in a YAML document, for hovers. Pure (no vscode import).
import { isMap, isPair, isScalar, isSeq, type Document, type Node } from 'yaml';

export interface PathHit {
  path: (string | number)[];
  /** Offsets of the key under the cursor (or of the item for a sequence element). */
  start: number;
  end: number;
}

/** The deepest key whose key or value spans `offset`. */
export function pathAtOffset(doc: Document, offset: number): PathHit | undefined {
  let best: PathHit | undefined;
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = pair.key as Node | null;
        const value = pair.value as Node | null;
        const k = isScalar(key) ? String(key.value) : String(key);
        const kr = key?.range;
        const vr = value?.range;
        const inKey = !!kr && offset >= kr[0] && offset <= kr[1];
        const inValue = !!vr && offset >= vr[0] && offset <= vr[1];
        if (inKey || inValue) {
          best = { path: [...path, k], start: kr ? kr[0] : vr![0], end: kr ? kr[1] : vr![1] };
          if (inValue) walk(value, [...path, k]);
          return;
        }
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const r = (item as Node | null)?.range;
        if (r && offset >= r[0] && offset <= r[1]) walk(item, [...path, i]);
      });
    }
  };
  walk(doc.contents, []);
  return best;
}
