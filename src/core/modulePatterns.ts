/**
 * Module regexes from a config (lora.target_modules, spectra.modules) that could hang whoever
 * matches them. V8 and Python's re both backtrack: a group that repeats without bound and itself
 * holds a repetition or alternatives (`([\w.]+)+Z`) tries exponentially many splits of a module name
 * before it fails. Matching one would freeze the extension host (the lint) and the trainer (PEFT), so
 * both refuse it by reading the pattern, never by running it. The same scan as
 * trainer/finetune_lab/module_patterns.py; trainer/tests/fixtures/module_patterns.json holds the
 * cases both test suites check.
 */

/** {n,} and {n,m}: a repetition; {n} is a fixed count. */
const COUNTED = /\{\d*,\d*\}/y;

/** The length of an unbounded or ranged quantifier at `at` (with a lazy or possessive suffix), 0 if none. */
function repeatLength(pattern: string, at: number): number {
  if (pattern[at] === '*' || pattern[at] === '+') return pattern[at + 1] === '?' || pattern[at + 1] === '+' ? 2 : 1;
  COUNTED.lastIndex = at;
  return COUNTED.exec(pattern)?.[0].length ?? 0;
}

/** The index after the character class that opens at `at` (a leading `]` is a literal). */
function classEnd(pattern: string, at: number): number {
  let i = at + 1;
  if (pattern[i] === '^') i++;
  if (pattern[i] === ']') i++;
  while (i < pattern.length && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
  return i + 1;
}

/**
 * The first group that repeats and holds a repetition or alternatives (its text with the quantifier),
 * or undefined. Conservative: `(\.\w+)+` is refused although its dots make it safe; a module pattern
 * never needs a repeated group.
 */
export function backtrackingGroup(pattern: string): string | undefined {
  const open: { start: number; risky: boolean }[] = [];
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === '\\') {
      i += 2;
    } else if (c === '[') {
      i = classEnd(pattern, i);
    } else if (c === '(') {
      open.push({ start: i, risky: false });
      i++;
    } else if (c === ')') {
      const group = open.pop();
      if (!group) { i++; continue; } // unbalanced: the regex compiler reports it
      const repeat = repeatLength(pattern, i + 1);
      if (repeat && group.risky) return pattern.slice(group.start, i + 1 + repeat);
      const parent = open.at(-1);
      if (parent) parent.risky ||= group.risky || repeat > 0;
      i += 1 + repeat;
    } else {
      const repeat = repeatLength(pattern, i);
      const parent = open.at(-1);
      if ((repeat || c === '|') && parent) parent.risky = true;
      i += Math.max(repeat, 1);
    }
  }
  return undefined;
}

/** Why a module regex would be refused (the same words as the trainer's), or undefined. */
export function backtrackingProblem(pattern: string): string | undefined {
  const group = backtrackingGroup(pattern);
  return group === undefined ? undefined
    : `'${group}' repeats a group that itself repeats or has alternatives, which can take exponential time to match; list the module names, or write the pattern without it`;
}
