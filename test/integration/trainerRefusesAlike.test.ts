// "The trainer refuses the same broken configs" (issue 17): the first 3,000 experiment files of the
// fuzz corpus (test/reliability/mutate.ts), each written as a run's config.yaml, are read by the
// trainer's own load_config in ONE Python process (10,000 processes would each import torch). The
// extension's schema-level verdict (YAML syntax and experiment.schema.json) and the trainer's must be
// the same for every file; the extension's further checks (sweep keys, module names, launchers) are
// its own and are counted apart. Needs the trainer's Python: $FINETUNE_LAB_PYTHON or the repo's .venv.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseExperiment } from '../../src/core/experiment';
import { cliPythonCandidates, findPython, trainerDir } from '../../src/core/trainerLaunch';
import { repoRoot, tmpDir } from '../core/helpers';
import { mutatedExperiment } from '../reliability/mutate';

const CASES = Number(process.env.FINETUNE_LAB_AGREE_CASES ?? 3000);

const CHECK = `
import json, sys
from finetune_lab.config import ConfigError, load_config
for line in sys.stdin:
    d = line.strip()
    try:
        load_config(d)
        print(json.dumps({"ok": True}), flush=True)
    except ConfigError as e:
        print(json.dumps({"ok": False, "error": str(e)[:300]}), flush=True)
`;

test(`the trainer's load_config and the extension agree on ${CASES} fuzzed experiment files`, { timeout: 900_000 }, async (t) => {
  const found = await findPython(cliPythonCandidates(repoRoot()));
  assert.ok(found.python, found.message);
  const root = tmpDir('ftl-agree-');
  const dirs: string[] = [];
  const verdicts: (boolean | 'extension-only')[] = [];
  for (let i = 0; i < CASES; i++) {
    const dir = path.join(root, String(i));
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.yaml'), mutatedExperiment(17, i));
    const text = fs.readFileSync(path.join(dir, 'config.yaml'), 'utf8'); // as the editor and the trainer read it
    dirs.push(dir);
    const errors = parseExperiment(text, undefined, { lints: false }).diagnostics.filter((d) => d.severity === 'error');
    const schemaLevel = errors.filter((d) => /^(yaml|schema)-/.test(d.code ?? ''));
    verdicts.push(schemaLevel.length ? false : errors.length ? 'extension-only' : true);
  }
  const r = spawnSync(found.python!, ['-c', CHECK], { input: `${dirs.join('\n')}\n`, encoding: 'utf8', env: { ...process.env, PYTHONPATH: trainerDir() }, maxBuffer: 64 * 2 ** 20, timeout: 600_000 });
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  const answers = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { ok: boolean; error?: string });
  assert.equal(answers.length, CASES);
  const disagree: string[] = [];
  let both = 0, refusedBoth = 0, extensionOnly = 0;
  answers.forEach((a, i) => {
    const v = verdicts[i];
    if (v === 'extension-only') { extensionOnly++; return; }
    if (a.ok === v) { both++; if (!v) refusedBoth++; return; }
    disagree.push(`case ${i}: extension ${v ? 'accepts' : 'refuses'}, trainer ${a.ok ? 'accepts' : `refuses (${a.error})`}`);
  });
  const line = `trainer vs extension (seed 17): ${CASES} files: ${both} same verdict (${refusedBoth} refused by both, ${both - refusedBoth} accepted by both), ${extensionOnly} refused by the extension's own further checks, ${disagree.length} disagreements`;
  t.diagnostic(line);
  console.log(line);
  assert.deepEqual(disagree.slice(0, 20), [], `${disagree.length} disagreements`);
});
