// Edits from quick fixes and the Experiment Form keep comments, key order and formatting elsewhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import { applyEdit, renameKeyEdit, setValueEdit, setValuesEdit, splitPath } from '../../src/editor/yamlEdit';
import { pathAtOffset } from '../../src/editor/yamlPath';
import { fieldDoc } from '../../src/editor/fieldDocs';

const TEXT = `# top comment
name: x   # trailing
lora: {rank: 16, alpha: 8}
train:
  lr: 2.0e-4   # why
  steps: 200
evals:
  learning:
    - {name: code, type: loss, data: builtin:python-stdlib#heldout}
sweep:
  train.lr: [1.0e-5, 5.0e-5]
`;
const set = (path: (string | number)[], value: unknown) => applyEdit(TEXT, setValueEdit(TEXT, path, value)!);

test('replacing a scalar touches only that scalar', () => {
  const out = set(['train', 'lr'], 5e-4);
  assert.equal(out, TEXT.replace('2.0e-4', '5e-4'));
  assert.equal(set(['lora', 'alpha'], 32), TEXT.replace('alpha: 8', 'alpha: 32'));
});

test('adding keys to block and flow maps, and new sections', () => {
  assert.match(set(['train', 'warmup_steps'], 10), /  steps: 200\n  warmup_steps: 10\nevals:/);
  assert.match(set(['lora', 'dropout'], 0.1), /lora: \{rank: 16, alpha: 8, dropout: 0\.1\}/);
  const spectra = set(['spectra', 'every_steps'], 0);
  assert.deepEqual(YAML.parse(spectra).spectra, { every_steps: 0 });
  assert.match(spectra, /# top comment\nname: x   # trailing/);
  assert.deepEqual(YAML.parse(set(['sweep', 'lora.rank'], [4, 16])).sweep, { 'train.lr': [1e-5, 5e-5], 'lora.rank': [4, 16] });
});

test('several keys at once (a memory advice): one small edit, the rest of the file as it was', () => {
  const edit = setValuesEdit(TEXT, { 'train.batch_size': 4, 'train.grad_accum': 4, 'launcher.kind': 'torchrun', 'launcher.nproc_per_node': 8, 'launcher.sharding': 'fsdp' })!;
  const out = applyEdit(TEXT, edit);
  assert.ok(edit.start > TEXT.indexOf('steps: 200'), 'nothing before the train section changed');
  assert.deepEqual(YAML.parse(out).train, { lr: 2e-4, steps: 200, batch_size: 4, grad_accum: 4 });
  assert.deepEqual(YAML.parse(out).launcher, { kind: 'torchrun', nproc_per_node: 8, sharding: 'fsdp' });
  assert.ok(out.startsWith(TEXT.slice(0, TEXT.indexOf('evals:'))), 'comments and flow maps above untouched');
  assert.match(out, /lr: 2\.0e-4   # why/);
  assert.equal(applyEdit(TEXT, setValuesEdit(TEXT, { 'lora.rank': 64 })!), TEXT.replace('rank: 16', 'rank: 64'));
});

test('removing a key removes its line only', () => {
  assert.equal(set(['train', 'steps'], undefined), TEXT.replace('  steps: 200\n', ''));
});

test('renaming a key', () => {
  assert.equal(applyEdit(TEXT, renameKeyEdit(TEXT, ['train', 'steps'], 'max_steps')!), TEXT.replace('steps: 200', 'max_steps: 200'));
});

test('every edit result parses to the intended value', () => {
  const out = set(['evals', 'every_steps'], 25);
  assert.equal(YAML.parse(out).evals.every_steps, 25);
  assert.match(out, /# why/);
});

test('splitPath keeps sweep axes whole', () => {
  assert.deepEqual(splitPath('sweep.lora.rank'), ['sweep', 'lora.rank']);
  assert.deepEqual(splitPath('evals.learning.0.name'), ['evals', 'learning', 0, 'name']);
});

test('hover: the path under the cursor and its guidance', () => {
  const doc = YAML.parseDocument(TEXT);
  const at = (s: string) => pathAtOffset(doc, TEXT.indexOf(s) + 1)?.path;
  assert.deepEqual(at('lr: 2.0'), ['train', 'lr']);
  assert.deepEqual(at('rank: 16'), ['lora', 'rank']);
  assert.deepEqual(at('type: loss'), ['evals', 'learning', 0, 'type']);
  assert.match(fieldDoc(['train', 'lr'])!, /10x/);
  assert.match(fieldDoc(['lora', 'alpha'])!, /2·rank/);
  // an eval task's keys come from the shape its type picks; `type` lists them all
  assert.match(fieldDoc(['evals', 'learning', 0, 'type'])!, /`lm_eval`, `kl_to_base`/);
  assert.match(fieldDoc(['evals', 'forgetting', 0, 'task'])!, /hellaswag, winogrande, arc_challenge/);
  assert.match(fieldDoc(['evals', 'forgetting', 0, 'limit'])!, /Default: `100`/);
  assert.match(fieldDoc(['evals', 'forgetting', 0, 'name'])!, /Short name shown in charts/);
  assert.match(fieldDoc(['evals', 'learning', 0, 'type'])!, /exact_match/);
  assert.match(fieldDoc(['sweep', 'lora.rank'])!, /sweep axis/);
});

test('eval tasks: append to and remove from a block sequence, keeping the rest as written', () => {
  const added = set(['evals', 'learning', 1], { name: 'more', type: 'loss', data: 'builtin:brown#heldout' });
  assert.match(added, /    - \{name: code, type: loss, data: builtin:python-stdlib#heldout\}\n    - \{name: more, type: loss, data: builtin:brown#heldout\}\nsweep:/);
  const removed = applyEdit(added, setValueEdit(added, ['evals', 'learning', 0], undefined)!);
  assert.equal(removed, TEXT.replace('code, type: loss, data: builtin:python-stdlib', 'more, type: loss, data: builtin:brown'));
  const flow = applyEdit(TEXT, setValueEdit(TEXT, ['sweep', 'train.lr', 2], 1e-4)!);
  assert.match(flow, /train\.lr: \[1\.0e-5, 5\.0e-5, 1e-4\]/);
});
