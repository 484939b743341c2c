// Fuzzing experiment files (issue 17): 10,000 seeded mutations of the project's experiment files go
// through the editor's diagnostics path (parseExperiment, as src/editor/parsedCache.ts calls it) and
// through the CLI's `run --dry-run` and `run` in-process (src/cli/commands.ts main). Every case ends
// in diagnostics with a position, or in a valid config; the CLI exits 0 (valid, dry run) or 2 with a
// `file:line:col: error:` message; nothing throws; no run folder is left by a refused file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseExperiment } from '../../src/core/experiment';
import { main } from '../../src/cli/commands';
import { tmpDir } from '../core/helpers';
import { mutatedExperiment } from './mutate';

const SEED = 17;
const CASES = Number(process.env.FINETUNE_LAB_FUZZ_CASES ?? 10_000);

/** Runs `fn` with console output captured; returns what was printed to stderr. */
async function quietly<T>(fn: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  const { log, error } = console;
  let stderr = '';
  console.log = () => {};
  console.error = (...a: unknown[]) => { stderr += `${a.join(' ')}\n`; };
  try { return { value: await fn(), stderr }; } finally { console.log = log; console.error = error; }
}

test(`${CASES} mutated experiment files: diagnostics, never an exception; the CLI exits 0 or 2 and leaves no run folder`, { timeout: 900_000 }, async (t) => {
  const dir = tmpDir('ftl-fuzz-exp-');
  const runsDir = path.join(dir, 'runs');
  const counts = { valid: 0, refused: 0, cliRefusedRuns: 0, yamlErrors: 0, schemaErrors: 0, otherErrors: 0, dryRuns: 0, realRuns: 0 };
  const codes = new Map<string, number>();
  const t0 = Date.now();
  for (let i = 0; i < CASES; i++) {
    const file = path.join(dir, 'case.finetune.yaml');
    fs.writeFileSync(file, mutatedExperiment(SEED, i));
    const text = fs.readFileSync(file, 'utf8'); // what the editor opens (lone surrogates become U+FFFD on disk)
    let parsed;
    try {
      parsed = parseExperiment(text, file, { fileExists: (p) => fs.existsSync(p) });
    } catch (e) {
      assert.fail(`case ${i}: parseExperiment threw ${(e as Error).stack}\n--- text (first 400 chars) ---\n${text.slice(0, 400)}`);
    }
    const errors = parsed.diagnostics.filter((d) => d.severity === 'error');
    assert.equal(parsed.ok, errors.length === 0, `case ${i}: ok disagrees with the diagnostics`);
    assert.equal(parsed.value !== undefined, parsed.ok, `case ${i}: a config value exactly when there are no errors`);
    for (const d of parsed.diagnostics) {
      assert.ok(Number.isInteger(d.line) && d.line >= 1 && Number.isInteger(d.column) && d.column >= 1 && d.endLine >= d.line, `case ${i}: diagnostic without a position: ${JSON.stringify(d).slice(0, 300)}`);
      assert.ok(typeof d.message === 'string' && d.message.length > 0 && d.message.length < 2000, `case ${i}: diagnostic message ${JSON.stringify(d.message?.slice(0, 100))}`);
    }
    for (const d of errors) codes.set(d.code ?? '?', (codes.get(d.code ?? '?') ?? 0) + 1);
    if (errors.some((d) => d.code?.startsWith('yaml-'))) counts.yamlErrors++;
    else if (errors.some((d) => d.code?.startsWith('schema-'))) counts.schemaErrors++;
    else if (errors.length) counts.otherErrors++;

    // The CLI, as a user runs it: --dry-run always; a real run only for refused files (a valid one would train).
    const dry = await quietly(() => main(['run', file, '--dry-run', '--no-estimate', '--runs-dir', runsDir]).catch((e: Error) => { throw new Error(`case ${i}: run --dry-run threw ${e.stack}`); }));
    counts.dryRuns++;
    if (parsed.ok) {
      assert.ok(dry.value === 0 || dry.value === 2, `case ${i}: run --dry-run exited ${dry.value} for a valid file`);
      counts.valid++;
      if (dry.value === 2) counts.cliRefusedRuns++;
    } else {
      assert.equal(dry.value, 2, `case ${i}: run --dry-run exited ${dry.value} for a file with errors`);
      assert.match(dry.stderr, /:\d+:\d+: error: /, `case ${i}: the CLI's refusal names no line and column:\n${dry.stderr.slice(0, 400)}`);
      counts.refused++;
      // The refusal path of `run` is the dry run's up to the check; every 10th refused file goes through it too.
      if (counts.refused % 10 === 1) {
        const real = await quietly(() => main(['run', file, '--no-estimate', '--runs-dir', runsDir]));
        assert.equal(real.value, 2, `case ${i}: run exited ${real.value} for a file with errors`);
        counts.realRuns++;
      }
    }
    assert.ok(!fs.existsSync(runsDir) || fs.readdirSync(runsDir).length === 0, `case ${i}: a run folder was left in ${runsDir}`);
  }
  const top = [...codes.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([c, n]) => `${c} ${n}`).join(', ');
  const line = `experiment fuzz (seed ${SEED}): ${CASES} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${counts.valid} valid (dry run exit 0${counts.cliRefusedRuns ? `, ${counts.cliRefusedRuns} refused by the CLI's own checks` : ''}), `
    + `${counts.refused} refused with exit 2 (${counts.yamlErrors} YAML errors, ${counts.schemaErrors} schema errors, ${counts.otherErrors} other checks); `
    + `${counts.dryRuns} through \`run --dry-run\`, ${counts.realRuns} refused files through \`run\` too; 0 exceptions, 0 run folders left; error codes: ${top}`;
  t.diagnostic(line);
  console.log(line);
  assert.ok(counts.refused > CASES / 4 && counts.valid > CASES / 20, `the mutations should make both valid and broken files: ${JSON.stringify(counts)}`);
});
