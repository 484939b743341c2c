import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scoreEvents } from '../../src/core/runScores';
import { buildTable } from '../../src/core/tableColumns';
import { flattenConfig, tableRow, type RunInput } from '../../src/core/tableRows';
import { cellOf, filterRows, filterTerms, frontierIds, orderColumns, sortRows, toCsv, viewItems } from '../../src/core/tableQuery';
import { formatCell } from '../../src/core/tableFormat';
import { isHostToTable, isTableToHost, type TableColumn, type TableRow } from '../../src/core/tableProtocol';

const task = (name: string, role: string, value: number, type = 'loss', higher = false) => ({ name, role, type, metric: higher ? 'accuracy' : 'loss', value, higher_is_better: higher });
const evals = (code: number, english: number, extra: (step: number) => object[] = () => []) => [0, 50].map((step) => ({
  v: 1, type: 'eval', time: step, step,
  tasks: [task('code', 'learning', step ? code : 5), task('english', 'forgetting', step ? english : 2), ...extra(step)],
  learning: { value: step ? code : 5, higher_is_better: false, delta: step ? code - 5 : 0 },
  forgetting: { value: step ? english : 2, higher_is_better: false, delta: step ? english - 2 : 0 },
}));

function run(id: string, over: { method?: string; rank?: number; lr?: number; seed?: number; code?: number; english?: number; sweep?: string; experiment?: string; kind?: string; dora?: boolean; extra?: (step: number) => object[] } = {}): RunInput {
  const method = over.method ?? 'lora';
  const config = {
    name: over.experiment ?? 'exp', model: { base: 'builtin:tiny' }, data: { train: 'builtin:python-stdlib', format: 'text', seq_len: 64 },
    evals: { every_steps: 50, learning: [{ name: 'code', type: 'loss', data: 'builtin:python-stdlib#heldout' }], forgetting: [] },
    method, train: { steps: 50, lr: over.lr ?? 1e-3, seed: over.seed ?? 0, batch_size: 8 },
    ...(method === 'lora' ? { lora: { rank: over.rank ?? 4, alpha: 2 * (over.rank ?? 4), dropout: 0.05, target_modules: 'all', variant: over.dora ? 'dora' : 'lora' } } : {}),
  };
  return {
    id, meta: { experiment_name: over.experiment ?? 'exp', sweep_id: over.sweep ?? null, sweep_size: over.sweep ? 3 : null, label: id.split('-').slice(-1)[0], created: 1000, ...(over.kind ? { kind: over.kind } : {}) },
    state: 'completed', stale: false, error: null, step: 50, totalSteps: 50, config,
    scores: over.code === undefined ? null : scoreEvents([{ v: 1, type: 'run_started', time: 0, method, total_steps: 50, config: {} }, ...evals(over.code, over.english ?? 2, over.extra)]),
  };
}

test('flattenConfig: dotted leaves; lists joined; lists of maps in flow style', () => {
  const f = flattenConfig({ a: { b: 1, c: 'x' }, t: ['q_proj', 'v_proj'], e: [{ name: 'code', type: 'loss' }], n: null });
  assert.deepEqual([...f], [['a.b', 1], ['a.c', 'x'], ['t', 'q_proj, v_proj'], ['e', '[{name: code, type: loss}]']]);
});

test('columns: the fixed settings, what differs (not what only full runs lack), scores present in some run; analysis runs marked', () => {
  const runs = [
    run('e-full', { method: 'full', lr: 1e-4, code: 3, english: 2.5 }),
    run('e-r4', { rank: 4, code: 3.5, english: 2.1, seed: 1 }),
    run('e-r16', { rank: 16, code: 3.2, english: 2.2 }),
    run('e-ana', { kind: 'analysis' }),
  ];
  const { rows, columns } = buildTable(runs);
  const ids = columns.map((c) => c.id);
  for (const id of ['run', 'state', 'frontier', 'experiment', 'cfg:method', 'cfg:lora.rank', 'cfg:lora.alpha', 'cfg:lora.variant', 'cfg:lora.target_modules', 'cfg:train.lr', 'cfg:train.steps', 'cfg:model.base', 'cfg:data.train', 'learning', 'learning.delta', 'forgetting.delta', 'task:learning:code', 'task:forgetting:english.delta']) {
    assert.ok(ids.includes(id), `column ${id} (have ${ids.join(' ')})`);
  }
  assert.ok(ids.includes('cfg:train.seed'), 'seed differs between runs: a column');
  assert.ok(!ids.includes('cfg:lora.dropout'), 'dropout is 0.05 wherever it is set: full runs lacking it do not make it differ');
  assert.ok(!ids.includes('cfg:train.batch_size') && !ids.includes('cfg:name'));
  assert.ok(!ids.includes('kl') && !ids.includes('rank90.attention') && !ids.includes('sweep'), 'no run has these');
  const code = columns.find((c) => c.id === 'task:learning:code')!;
  assert.equal(code.hiddenByDefault, true, 'one learning task: its column repeats the aggregate');
  assert.equal(code.better, 'lower');
  assert.equal(columns.find((c) => c.id === 'cfg:train.lr')!.format, 'sci');
  assert.equal(rows.find((r) => r.id === 'e-ana')!.kind, 'analysis');
  assert.equal(rows.find((r) => r.id === 'e-r4')!.kind, 'training');
  assert.equal(rows.find((r) => r.id === 'e-full')!.rank, null);
  assert.equal(rows.find((r) => r.id === 'e-r16')!.cells['learning.delta'], 3.2 - 5);
});

test('eval tasks are generic: an lm_eval and a kl_to_base task become columns, KL to the base its own', () => {
  const extra = (step: number) => [task('hellaswag', 'forgetting', step ? 0.4 : 0.5, 'lm_eval', true), task('kl', 'forgetting', step ? 0.3 : 0, 'kl_to_base')];
  const { rows, columns } = buildTable([run('a', { code: 3, extra }), run('b', { code: 4 })]);
  const hs = columns.find((c) => c.id === 'task:forgetting:hellaswag.delta')!;
  assert.equal(hs.better, 'higher');
  assert.match(hs.description, /lm_eval, accuracy/);
  assert.equal(hs.hiddenByDefault, undefined, 'several forgetting tasks: each is shown');
  assert.ok(columns.some((c) => c.id === 'kl'));
  assert.equal(rows[0].cells.kl, 0.3);
  assert.equal(rows[1].cells.kl, undefined);
});

test("an lm_eval task's version is in its column title (so in the CSV), its n in the tooltip", () => {
  const hs = (step: number) => [{ ...task('hellaswag', 'forgetting', step ? 0.4 : 0.5, 'lm_eval', true), metric: 'acc_norm', version: '1.0', n: 200 }];
  const { columns } = buildTable([run('a', { code: 3, extra: hs })]);
  const col = columns.find((c) => c.id === 'task:forgetting:hellaswag')!;
  assert.equal(col.title, 'hellaswag v1.0');
  assert.match(col.description, /\(lm_eval, acc_norm, version 1\.0, n=200\)/);
  assert.equal(columns.find((c) => c.id === 'task:learning:code')!.title, 'code', 'a loss task has no version');
});

test('frontier: per group of runs evaluated alike; ties with a frontier point are on it', () => {
  const rows = [
    run('a', { code: 3, english: 2.5 }), run('b', { code: 3.5, english: 2.1 }), run('c', { code: 3.6, english: 2.6 }),
    run('d', { code: 3, english: 2.5 }), run('e', { experiment: 'other', code: 4.5, english: 3, extra: (s) => [task('gsm', 'learning', s ? 0.2 : 0, 'exact_match', true)] }),
  ].map(tableRow);
  const f = frontierIds(rows);
  assert.deepEqual([...f].sort(), ['a', 'b', 'd', 'e'], 'c is beaten by a and b; e has other tasks: its own frontier');
});

test('filter by text terms and numeric ranges; sort numbers and text with empty cells last; group by experiment and sweep', () => {
  const runs = [
    run('x-r4', { rank: 4, code: 3.5, sweep: 's1' }), run('x-r16', { rank: 16, code: 3.2, sweep: 's1' }),
    run('x-full', { method: 'full', code: 3, sweep: 's1' }), run('y-r8', { rank: 8, experiment: 'y' }),
  ];
  const { rows, columns } = buildTable(runs);
  const shown = columns.filter((c) => !c.hiddenByDefault);
  assert.deepEqual(filterTerms('lora "r 16"  X'), ['lora', 'r 16', 'x']);
  assert.deepEqual(filterRows(rows, shown, 'lora', []).map((r) => r.id).sort(), ['x-r16', 'x-r4', 'y-r8']);
  assert.deepEqual(filterRows(rows, shown, 'lora exp', []).map((r) => r.id).sort(), ['x-r16', 'x-r4'], 'every term must match');
  assert.deepEqual(filterRows(rows, shown, '', [{ column: 'cfg:lora.rank', min: 5, max: null }]).map((r) => r.id).sort(), ['x-r16', 'y-r8']);
  assert.deepEqual(filterRows(rows, shown, '', [{ column: 'learning', min: null, max: 3.3 }]).map((r) => r.id).sort(), ['x-full', 'x-r16'], 'no value: out of a range');
  const byLearning = sortRows(rows, [{ column: 'learning', descending: false }]).map((r) => r.id);
  assert.deepEqual(byLearning, ['x-full', 'x-r16', 'x-r4', 'y-r8']);
  assert.deepEqual(sortRows(rows, [{ column: 'learning', descending: true }]).map((r) => r.id), ['x-r4', 'x-r16', 'x-full', 'y-r8'], 'empty last either way');
  assert.deepEqual(sortRows(rows, [{ column: 'cfg:method', descending: false }, { column: 'cfg:lora.rank', descending: true }]).map((r) => r.id), ['x-full', 'x-r16', 'y-r8', 'x-r4']);
  const items = viewItems(sortRows(rows, [{ column: 'learning', descending: false }]), 'sweep', new Set(['run:y']));
  assert.deepEqual(items.map((i) => (i.kind === 'group' ? `[${i.label} ${i.count}${i.collapsed ? ' collapsed' : ''}]` : i.row.id)), ['[exp · sweep s1 3]', 'x-full', 'x-r16', 'x-r4', '[y · runs outside a sweep 1 collapsed]']);
  assert.deepEqual(viewItems(rows, 'experiment', new Set()).filter((i) => i.kind === 'group').map((i) => i.kind === 'group' && i.label), ['exp', 'y']);
});

test('with nothing to sort by: the newest sweep first, its runs in the sweep\'s order', () => {
  const at = (id: string, created: number, sweep: string | null, index: number | null): RunInput => {
    const r = run(id, { sweep: sweep ?? undefined });
    return { ...r, meta: { ...r.meta, created, sweep_index: index } };
  };
  const rows = [at('s1-full', 100, 's1', 0), at('s1-r4', 100.01, 's1', 1), at('s1-r8', 100.02, 's1', 2), at('single', 50, null, null), at('s2-a', 200, 's2', 0), at('s2-b', 200.01, 's2', 1)].map(tableRow);
  assert.deepEqual(sortRows(rows, []).map((r) => r.id), ['s2-a', 's2-b', 's1-full', 's1-r4', 's1-r8', 'single']);
});

test('sorting and filtering by the computed frontier column', () => {
  const rows = [run('a', { code: 3, english: 2.5 }), run('b', { code: 3.6, english: 2.6 }), run('c')].map(tableRow);
  const cell = cellOf(frontierIds(rows));
  assert.deepEqual(sortRows(rows, [{ column: 'frontier', descending: true }], cell).map((r) => r.id), ['a', 'b', 'c']);
  assert.deepEqual(filterRows(rows, [], '', [{ column: 'frontier', min: 1, max: null }], cell).map((r) => r.id), ['a']);
});

test('CSV: the shown columns by title, raw values, quoting', () => {
  const cols: TableColumn[] = [
    { id: 'run', title: 'run', group: 'run', kind: 'text', format: 'text', description: '' },
    { id: 'cfg:train.lr', title: 'lr', group: 'setting', kind: 'number', format: 'sci', description: '' },
  ];
  const row = (id: string, run: string, lr?: number): TableRow => ({ ...tableRow(run1(id)), cells: { run, ...(lr === undefined ? {} : { 'cfg:train.lr': lr }) } });
  const run1 = (id: string) => run(id);
  assert.equal(toCsv(cols, [row('a', 'lora, "r4"', 0.00012345), row('b', 'full')]), 'run,lr\n"lora, ""r4""",0.00012345\nfull,\n');
});

test('column order: saved order kept, new columns placed after their default neighbour', () => {
  const c = (id: string): TableColumn => ({ id, title: id, group: 'run', kind: 'text', format: 'text', description: '' });
  assert.deepEqual(orderColumns(['a', 'b', 'c', 'd'].map(c), ['c', 'a']).map((x) => x.id), ['c', 'd', 'a', 'b']);
  assert.deepEqual(orderColumns(['a', 'n', 'b'].map(c), ['b', 'a']).map((x) => x.id), ['b', 'a', 'n']);
});

test('cells read as people write them', () => {
  assert.equal(formatCell(2e-4, 'sci'), '2e-4');
  assert.equal(formatCell(3.5e-3, 'sci'), '3.5e-3');
  assert.equal(formatCell(0.1, 'sci'), '0.1');
  assert.equal(formatCell(-0.123456, 'delta'), '−0.123');
  assert.equal(formatCell(0.5, 'delta'), '+0.5');
  assert.equal(formatCell(754, 'mib'), '754 MiB');
  assert.equal(formatCell(2048, 'mib'), '2 GiB');
  assert.equal(formatCell(125, 'seconds'), '2m05s');
  assert.equal(formatCell(65432, 'rate'), '65.4k');
  assert.equal(formatCell(2.34567, 'score'), '2.346');
  assert.equal(formatCell(null, 'score'), '');
});

test('protocol: valid messages pass both ways; bad ones are refused', () => {
  const { rows, columns } = buildTable([run('a', { code: 3 })]);
  assert.ok(isHostToTable({ type: 'init', scope: {}, title: 'Runs', columns, rows, trusted: true, loading: false }));
  assert.ok(isHostToTable({ type: 'update', upsert: rows, remove: ['x'], loading: true }));
  assert.ok(!isHostToTable({ type: 'update', upsert: [{ ...rows[0], state: 'exploded' }], remove: [], loading: false }));
  assert.ok(!isHostToTable({ type: 'update', upsert: [{ ...rows[0], cells: { a: { nested: 1 } } }], remove: [], loading: false }));
  assert.ok(!isHostToTable({ type: 'init', scope: { experiment: 3 }, title: '', columns, rows, trusted: true, loading: false }));
  assert.ok(isTableToHost({ type: 'action', action: 'compare', runIds: ['a', 'b'] }));
  assert.ok(!isTableToHost({ type: 'action', action: 'rm -rf', runIds: ['a'] }));
  assert.ok(!isTableToHost({ type: 'action', action: 'stop', runIds: [] }));
  assert.ok(isTableToHost({ type: 'export', name: 'runs.csv', data: 'a,b\n' }));
  assert.ok(!isTableToHost({ type: 'export', name: '../x.csv', data: '' }));
  assert.ok(!isTableToHost({ type: 'export', name: 'x.sh', data: '' }));
});
