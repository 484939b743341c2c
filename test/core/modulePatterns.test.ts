import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backtrackingGroup } from '../../src/core/modulePatterns';
import { parseExperiment } from '../../src/core/experiment';
import { repoRoot } from './helpers';

// the trainer's test_module_patterns.py checks its scan against the same table
const table = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'trainer', 'tests', 'fixtures', 'module_patterns.json'), 'utf8')) as
  { cases: [string, string | null][] };

test('the backtracking scan refuses exactly the groups the shared table names', () => {
  assert.ok(table.cases.length >= 10);
  for (const [pattern, group] of table.cases) assert.equal(backtrackingGroup(pattern) ?? null, group, pattern);
});

test('a module regex that backtracks is an error at its item, for any base, and the lint never runs it', () => {
  // matched against a builtin module name this pattern takes hours; the diagnostic must come at once
  for (const base of ['builtin:tiny', 'hf:some/model']) {
    const text = `name: x\nmodel: {base: ${base}}\ndata: {train: builtin:python-stdlib}\nmethod: lora\n` +
      `lora: {target_modules: [q_proj, '([\\w.]+)+Z']}\nspectra: {modules: ['(\\w|[a-z])+_proj']}\n`;
    const found = parseExperiment(text, undefined, { lints: false }).diagnostics.filter((d) => d.code === 'module-pattern-backtracks');
    assert.deepEqual(found.map((d) => [d.path, d.line, d.severity]), [['lora.target_modules.1', 5, 'error'], ['spectra.modules.0', 6, 'error']]);
    assert.match(found[0].message, /'\(\[\\w\.\]\+\)\+' repeats a group .* exponential time/);
  }
  const safe = parseExperiment('name: x\nmodel: {base: builtin:tiny}\ndata: {train: builtin:python-stdlib}\nmethod: lora\n' +
    "lora: {target_modules: ['.*\\.(q|v)_proj']}\n", undefined, { lints: false });
  assert.equal(safe.ok, true, JSON.stringify(safe.diagnostics));
});
