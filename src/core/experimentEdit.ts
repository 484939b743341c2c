// Applies a DiagnosticFix to an experiment file's text through the yaml package's document model, so
// comments and the rest of the layout survive. The editor shell can replace the whole text with the result.
import YAML, { isMap, isScalar, Scalar } from 'yaml';
import type { DiagnosticFix } from './diagnostics';

/** Dotted path to segments; a sweep key is itself dotted ('sweep.lora.rank' -> ['sweep', 'lora.rank']). */
export function fixPath(dotted: string): (string | number)[] {
  const segs = dotted.split('.');
  if (segs[0] === 'sweep' && segs.length > 1) {
    const rest = segs.slice(1);
    const idx = /^\d+$/.test(rest[rest.length - 1]) && rest.length > 1 ? Number(rest.pop()) : undefined;
    return idx === undefined ? ['sweep', rest.join('.')] : ['sweep', rest.join('.'), idx];
  }
  return segs.map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

export function applyFix(text: string, fix: DiagnosticFix): string {
  const doc = YAML.parseDocument(text);
  const path = fixPath(fix.path);
  if (fix.renameKey !== undefined) {
    const parent = path.length > 1 ? doc.getIn(path.slice(0, -1), true) : doc.contents;
    if (!isMap(parent)) return text;
    const pair = parent.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(path[path.length - 1]));
    if (!pair) return text;
    pair.key = new Scalar(fix.renameKey);
    return doc.toString();
  }
  // A flow map on one line (`lora: {rank: 16}`) stays a flow map; setIn creates missing sections.
  doc.setIn(path, fix.value);
  return doc.toString();
}
