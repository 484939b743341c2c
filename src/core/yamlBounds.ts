// Bounds checked on YAML text before the yaml library parses it. Its composer recurses once per
// nested collection: a few thousand `[` overflow the stack, and where that happens inside V8's
// regexp compiler the whole process aborts (no exception to catch). Experiment files, run folders'
// config.yaml and lm-eval task YAMLs all come from the workspace, so every parse of them is bounded.

/** Nesting the text may show before it is parsed: well above the 32 levels experiment.ts allows after parsing, far below what overflows the parser's stack. */
export const MAX_TEXT_DEPTH = 100;

/**
 * The offset where the text's nesting first goes beyond `limit`, before any parsing: flow brackets
 * open outside quotes and comments, plus block levels (a stack of deeper indents, and the `- `
 * entries that start a line). An over-estimate for odd plain scalars that hold brackets, which is
 * fine at a limit no experiment comes near.
 */
export function textNestingBeyond(text: string, limit: number): number | undefined {
  const indents: number[] = [];
  let flow = 0;
  for (let i = 0; i < text.length;) {
    const eol = text.indexOf('\n', i) === -1 ? text.length : text.indexOf('\n', i);
    let j = i;
    while (j < eol && text[j] === ' ') j++;
    if (flow === 0 && j < eol && text[j] !== '#') {
      while (indents.length && indents[indents.length - 1] >= j - i) indents.pop();
      indents.push(j - i);
    }
    let dashes = 0;
    while (j + 1 < eol && text[j] === '-' && text[j + 1] === ' ') { dashes++; j += 2; while (j < eol && text[j] === ' ') j++; }
    let quote = '';
    for (let k = j; k < eol; k++) {
      const c = text[k];
      if (quote) { if (c === quote) quote = ''; else if (c === '\\' && quote === '"') k++; continue; }
      if (c === '#' && (k === j || text[k - 1] === ' ')) break;
      if (c === '"' || c === "'") quote = c;
      else if (c === '[' || c === '{') { if (++flow + indents.length + dashes > limit) return k; }
      else if ((c === ']' || c === '}') && flow > 0) flow--;
    }
    if (indents.length + dashes > limit) return j;
    i = eol + 1;
  }
  return undefined;
}

/** Throws (an ordinary Error, naming the line) when `text` nests beyond MAX_TEXT_DEPTH. */
export function assertYamlNesting(text: string): void {
  const at = textNestingBeyond(text, MAX_TEXT_DEPTH);
  if (at === undefined) return;
  const line = text.slice(0, at).split('\n').length;
  throw new Error(`collections nested more than ${MAX_TEXT_DEPTH} levels deep (line ${line})`);
}
