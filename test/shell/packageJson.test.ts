// package.json's contributions agree with the code: every command a menu names is declared, every
// declared command is registered in src/extension.ts (and the reverse), all under one category.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const extensionTs = fs.readFileSync(path.join(root, 'src', 'extension.ts'), 'utf8');
const declared: string[] = pkg.contributes.commands.map((c: { command: string }) => c.command);

test('every command: category Finetune Lab, a codicon, registered in activate()', () => {
  for (const c of pkg.contributes.commands) {
    assert.equal(c.category, 'Finetune Lab', c.command);
    assert.match(c.icon, /^\$\([a-z-~]+\)$/, c.command);
    assert.ok(extensionTs.includes(`'${c.command}'`), `${c.command} is registered`);
  }
  const registered = [...extensionTs.matchAll(/reg\('([^']+)'/g)].map((m) => m[1]);
  for (const id of registered) assert.ok(declared.includes(id), `${id} is declared`);
});

test('menus only name declared commands', () => {
  for (const [menu, items] of Object.entries(pkg.contributes.menus as Record<string, { command: string; when?: string }[]>)) {
    for (const item of items) assert.ok(declared.includes(item.command), `${menu}: ${item.command}`);
  }
});

test('views, container icon, custom editor, trust and settings', () => {
  assert.equal(pkg.contributes.viewsContainers.activitybar[0].id, 'finetuneLab');
  assert.ok(fs.existsSync(path.join(root, pkg.contributes.viewsContainers.activitybar[0].icon)));
  assert.equal(pkg.contributes.views.finetuneLab[0].id, 'finetuneLab.runs');
  assert.equal(pkg.contributes.views.finetuneLab[0].name, 'Runs');
  assert.match(pkg.contributes.viewsWelcome[0].contents, /command:finetuneLab\.newExperiment/);
  assert.equal(pkg.contributes.customEditors[0].viewType, 'finetuneLab.experimentForm');
  assert.equal(pkg.contributes.customEditors[0].priority, 'option');
  assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
  const props = pkg.contributes.configuration.properties;
  assert.equal(props['finetuneLab.pythonPath'].scope, 'machine');
  // a workspace must never turn on running model-generated code (lm-eval's unsafe_code tasks)
  assert.equal(props['finetuneLab.allowCodeExecution'].scope, 'machine');
  assert.equal(props['finetuneLab.allowCodeExecution'].default, false);
  for (const id of ['finetuneLab.startRun', 'finetuneLab.resumeRun', 'finetuneLab.installEnvironment']) {
    assert.equal(pkg.contributes.commands.find((c: { command: string }) => c.command === id).enablement, 'isWorkspaceTrusted', id);
  }
  for (const step of pkg.contributes.walkthroughs[0].steps) assert.ok(fs.existsSync(path.join(root, step.media.markdown)), step.id);
});
