import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from './helpers';

test('committed generated types match the schemas (run `npm run gen:types` if not)', async () => {
  const root = repoRoot();
  const url = pathToFileURL(path.join(root, 'scripts', 'genTypes.mjs')).href;
  const mod = (await import(url)) as { generate: () => Promise<Record<string, string>> };
  const files = await mod.generate();
  assert.equal(Object.keys(files).length, 9); // one per schema (eight) and trainFields.ts
  for (const [rel, content] of Object.entries(files)) {
    const committed = fs.readFileSync(path.join(root, rel), 'utf8');
    assert.ok(committed === content, `${rel} is stale: run npm run gen:types`);
  }
});
