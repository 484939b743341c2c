import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from './helpers';

test('the README configuration reference matches the experiment schema (run `npm run gen:types` if not)', async () => {
  const root = repoRoot();
  const mod = (await import(pathToFileURL(path.join(root, 'scripts', 'genConfigDoc.mjs')).href)) as { renderReadme: (t: string) => string; configSection: () => string };
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  assert.ok(readme === mod.renderReadme(readme), 'README.md configuration reference is stale: run npm run gen:types');
  // It documents every top-level section and the paper's defaults.
  const section = mod.configSection();
  for (const key of ['`model.base`', '`lora.rank`', '`lora.target_modules`', '`train.lr`', '`spectra.every_steps`', '`sweep`']) assert.ok(section.includes(key), key);
});
