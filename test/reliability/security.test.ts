// Security (issue 17): the doors a hostile workspace could use, each closed by a test.
//   CSP: every webview page goes through webviewHtml, whose policy has no 'unsafe-inline'/'unsafe-eval'.
//   Messages: every message from a webview is validated (10,000 random messages per validator).
//   Settings: every setting that names a program or a permission is machine/application scoped.
//   Processes: argv arrays only, never a shell (a run folder and config full of metacharacters).
//   Run ids and paths: ../, absolute, encoded, backslash, NUL, symlinks never leave the run store.
//   Trust: every command that starts, resumes, exports or installs is off in an untrusted workspace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { webviewCsp } from '../../src/core/webviewCsp';
import { isRestoreInfo, isWebviewToHost } from '../../src/core/messages';
import { isFormToHost } from '../../src/core/formProtocol';
import { isTableToHost } from '../../src/core/tableProtocol';
import { isPlaygroundRestore, isPlaygroundToHost } from '../../src/core/playgroundProtocol';
import { isRunFolderOf, runFolder, runIdProblem, RunPathError } from '../../src/core/runPath';
import { runId } from '../../src/core/sweep';
import { RunStore } from '../../src/core/runStore';
import { adoptOrphanQueues } from '../../src/core/queueFile';
import { spawnTrainer, trainerCommand } from '../../src/core/trainerLaunch';
import { isTrainerOf } from '../../src/core/trainerProcess';
import { main } from '../../src/cli/commands';
import { repoRoot, tmpDir } from '../core/helpers';
import { int, pick, randomValue, rng, SHELL_METACHARACTERS } from './mutate';

const ROOT = repoRoot();
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const UNSAFE = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'unsafe-run-ids.json'), 'utf8')) as { unsafe: string[]; safe: string[] };

function sourceFiles(dir: string, ext = /\.ts$/): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) { if (e.name !== 'generated') out.push(...sourceFiles(p, ext)); } else if (ext.test(e.name)) out.push(p);
  }
  return out;
}
const read = (f: string): string => fs.readFileSync(f, 'utf8');
/** Source without its comments (which may name what the code must never do). */
const code = (text: string): string => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
const rel = (f: string): string => path.relative(ROOT, f);

// ---- CSP -------------------------------------------------------------------------------------------

test('every webview page is built by webviewHtml, and its CSP has no unsafe-inline or unsafe-eval', () => {
  const files = sourceFiles(path.join(ROOT, 'src'));
  const pages: string[] = [];
  for (const f of files) {
    const text = read(f);
    // Every assignment of a webview's HTML: its value must come from webviewHtml (directly, or a local
    // function of the same file that returns webviewHtml(...)).
    for (const m of text.matchAll(/\.webview\.html\s*=\s*([A-Za-z_$][\w$]*)\(/g)) {
      const fn = m[1];
      const ok = fn === 'webviewHtml' || new RegExp(`function ${fn}\\([^)]*\\)[^{]*\\{\\s*return webviewHtml\\(`).test(text);
      assert.ok(ok, `${rel(f)}: a webview's html comes from ${fn}(), not from webviewHtml`);
      pages.push(`${rel(f)}:${fn}`);
    }
    assert.doesNotMatch(text, /\.webview\.html\s*=\s*[`'"]/, `${rel(f)}: a webview's html is written inline`);
    if (!/webviewHtml\.ts$|webviewCsp\.ts$/.test(f)) assert.doesNotMatch(code(text), /Content-Security-Policy/, `${rel(f)}: a second CSP outside src/webviewHtml.ts`);
  }
  // basePanel's getHtml serves the dashboard, Pareto and spectra; then the table, playground and form.
  assert.ok(pages.length >= 4, `expected the panels', table's, playground's and form's pages, found ${pages.join(', ')}`);
  for (const dir of ['src', 'webview', 'media']) {
    for (const f of sourceFiles(path.join(ROOT, dir), /\.(ts|js|html|css)$/)) {
      assert.doesNotMatch(code(read(f)), /unsafe-(inline|eval)|\bnew Function\(|\beval\(/, `${rel(f)}: unsafe-inline, unsafe-eval or eval`);
    }
  }
  const csp = webviewCsp('https://file+.vscode-resource.vscode-cdn.net', 'abc123');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'nonce-abc123'(;|$)/, 'scripts only with the nonce');
  assert.doesNotMatch(csp, /unsafe|\*|https?:\s|data:.*script/);
});

// ---- messages from webviews ----------------------------------------------------------------------

const VALIDATORS: [string, (x: unknown) => boolean, string[]][] = [
  ['isWebviewToHost (dashboard, Pareto, spectra)', isWebviewToHost, ['ready', 'openRun', 'killRun', 'export', 'log']],
  ['isFormToHost (Experiment Form)', isFormToHost, ['ready', 'set', 'openText', 'start']],
  ['isTableToHost (runs table)', isTableToHost, ['ready', 'action', 'export', 'log']],
  ['isPlaygroundToHost (playground)', isPlaygroundToHost, ['ready', 'generate', 'cancel', 'exportMissing', 'log']],
  ['isRestoreInfo (panel state after a reload)', isRestoreInfo, []],
  ['isPlaygroundRestore (playground state)', isPlaygroundRestore, []],
];

test('every message a webview sends is validated: 10,000 random messages per validator, none throws, nothing odd gets through', (t) => {
  const counts: string[] = [];
  for (const [name, valid, types] of VALIDATORS) {
    let accepted = 0;
    for (let i = 0; i < 10_000; i++) {
      const r = rng(99, i);
      // Mostly messages that look right (a known type) with random fields: the close misses a check must catch.
      const msg: unknown = types.length && r() < 0.8
        ? { type: pick(r, types), ...Object.fromEntries(Array.from({ length: int(r, 0, 4) }, () => [pick(r, ['runId', 'runIds', 'path', 'value', 'name', 'data', 'format', 'level', 'message', 'action', 'prompt', 'settings', 'models', 'runs', 'dir']), randomValue(r)])) }
        : r() < 0.5 ? randomValue(r) : { runs: [{ id: randomValue(r), dir: randomValue(r) }], runsDir: randomValue(r) };
      let ok: boolean;
      try { ok = valid(msg); } catch (e) { assert.fail(`${name} threw on message ${i}: ${(e as Error).message}`); }
      if (!ok) continue;
      accepted++;
      const m = msg as Record<string, unknown>;
      // Fields a type does not use are ignored by its handler; the ones it uses must be safe.
      if (m.type === 'openRun' || m.type === 'killRun') assert.equal(runIdProblem(m.runId), undefined, `${name} accepted a run id ${JSON.stringify(m.runId)}`);
      if (m.type === 'action') for (const id of m.runIds as unknown[]) assert.equal(runIdProblem(id), undefined, `${name} accepted a run id ${JSON.stringify(id)}`);
      if (m.type === 'export') assert.doesNotMatch(m.name as string, /[/\\]|^\./, `${name} accepted a file name ${String(m.name)}`);
      if (m.type === 'set') assert.ok(Array.isArray(m.path) && m.path.length <= 8, `${name} accepted a path ${JSON.stringify(m.path)?.slice(0, 80)}`);
    }
    counts.push(`${name}: ${accepted} of 10000 accepted`);
  }
  t.diagnostic(counts.join('; '));
  console.log(`message fuzz: ${counts.join('; ')}`);
  // Each panel checks before it switches: the handler passes through the validator first.
  for (const f of sourceFiles(path.join(ROOT, 'src'))) {
    const text = read(f);
    for (const m of text.matchAll(/onDidReceiveMessage\(\(m: unknown\) => ([^\n]+)/g)) {
      const handler = m[1];
      const body = /this\.(_?onMessage)\(m\)/.exec(handler);
      const guarded = /if \((!?)is[A-Z]\w*ToHost\(m\)\)/.test(handler)
        || (body !== null && new RegExp(`${body[1]}\\(m: unknown\\)[^{]*\\{\\s*if \\(!is[A-Z]\\w*ToHost\\(m\\)\\)`).test(text));
      assert.ok(guarded, `${rel(f)}: a webview message reaches ${handler.trim()} without a validator`);
    }
  }
});

// ---- settings --------------------------------------------------------------------------------------

test('settings that name a program, a launcher or a permission can only be set on this machine (never by a workspace)', (t) => {
  const props = pkg.contributes.configuration.properties as Record<string, { scope?: string; markdownDescription?: string; description?: string }>;
  // Matched by name, so a new such setting (finetuneLab.allowCodeExecution, a launcher command, ...) is covered without an edit here.
  const SENSITIVE = /python|interpreter|executable|command|launcher|allow|permi|trust|exec|shell|script|binary|env/i;
  const sensitive = Object.keys(props).filter((k) => SENSITIVE.test(k.replace(/^finetuneLab\./, '')));
  assert.ok(sensitive.includes('finetuneLab.pythonPath'), 'the Python path is a sensitive setting');
  for (const k of sensitive) assert.ok(['machine', 'application'].includes(props[k].scope ?? ''), `${k} has scope ${props[k].scope ?? '(window)'}: a workspace could set it`);
  // The code reads them as the user set them, never through a workspace-merged get().
  for (const f of sourceFiles(path.join(ROOT, 'src'))) {
    for (const k of sensitive) {
      const short = k.replace(/^finetuneLab\./, '');
      assert.doesNotMatch(read(f), new RegExp(`\\.get<[^>]*>\\('${short}'\\)|\\.get\\('${short}'\\)`), `${rel(f)} reads ${k} with get(): use inspect().globalValue`);
    }
  }
  // A workspace's runsDirectory is ignored in Restricted Mode.
  assert.deepEqual(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations, ['finetuneLab.runsDirectory']);
  t.diagnostic(`sensitive settings checked: ${sensitive.join(', ')}`);
});

// ---- trust -----------------------------------------------------------------------------------------

test('every command that starts, resumes, exports or installs is off in an untrusted workspace, and its handler refuses too', () => {
  const commands = pkg.contributes.commands as { command: string; enablement?: string }[];
  const starting = commands.filter((c) => /start|resume|duplicate|export|install/i.test(c.command) && !/explain/i.test(c.command));
  assert.ok(starting.length >= 5, starting.map((c) => c.command).join(', '));
  for (const c of starting) assert.match(c.enablement ?? '', /isWorkspaceTrusted/, `${c.command} is enabled in Restricted Mode`);
  // The handlers check again (a keybinding or another extension can call a command directly).
  const sources = sourceFiles(path.join(ROOT, 'src')).map(read).join('\n');
  for (const what of ['start a run', 'resume a run', 'duplicate a run', 'export to ONNX', 'install the Python environment']) {
    assert.ok(sources.includes(`requireTrust('${what}')`), `no runtime trust check for "${what}"`);
  }
  assert.match(read(path.join(ROOT, 'src', 'runManager.ts')), /if \(!vscode\.workspace\.isTrusted\) return;/, 'the queue starts nothing in Restricted Mode');
});

// ---- processes: argv, never a shell ----------------------------------------------------------------

test('processes are started with argv arrays, never a shell: no shell option, no exec of a command string', () => {
  for (const f of sourceFiles(path.join(ROOT, 'src'))) {
    const text = read(f);
    // child_process's exec/execSync take a shell string; spawn and execFile take argv (shell off).
    assert.doesNotMatch(code(text), /shell:\s*true|import\s*\{[^}]*\bexec(Sync)?\b[^}]*\}\s*from\s*'(node:)?child_process'|child_process\.exec(Sync)?\(/, `${rel(f)} runs a shell`);
    // The one shell string by design: Create Python Environment types into a visible terminal (DECISIONS.md).
    if (/\.sendText\(/.test(text)) assert.match(rel(f), /checkEnvironment\.ts$/, `${rel(f)} types commands into a terminal`);
  }
});

test('a run folder and a config full of shell metacharacters reach the trainer as argv, verbatim, and no shell runs them', async (t) => {
  const canary = path.join(os.tmpdir(), 'finetune-lab-pwned');
  fs.rmSync(canary, { force: true });
  const fake = path.join(ROOT, 'test', 'fixtures', 'fake-python.mjs');
  const hostile = `runs $(touch ${canary}) ; rm -rf x && \`touch ${canary}\` | cat > y '"${'$'}{IFS}"' *?~`;
  const runsDir = path.join(tmpDir('ftl-argv-'), hostile);
  const store = new RunStore(runsDir);
  const text = `name: meta\ndescription: ${JSON.stringify(SHELL_METACHARACTERS.join(' '))}\nmodel: {base: builtin:tiny}\ndata: {train: ${JSON.stringify(`${hostile}.jsonl`)}}\nmethod: lora\n`;
  const { parseExperiment } = await import('../../src/core/experiment');
  const { expandSweep } = await import('../../src/core/sweep');
  const parsed = parseExperiment(text);
  assert.ok(parsed.ok, JSON.stringify(parsed.diagnostics));
  const run = await store.create(expandSweep(parsed.value!)[0], { experimentName: 'meta' });
  const started = await spawnTrainer(trainerCommand(fake, path.join(ROOT, 'trainer'), run.dir, { resume: true }));
  const exit = await started.exit;
  assert.equal(exit.code, 0);
  const seen = JSON.parse(fs.readFileSync(path.join(run.dir, 'argv.json'), 'utf8'));
  assert.deepEqual(seen.argv.slice(1), ['-m', 'finetune_lab', 'run', '--run-dir', path.resolve(run.dir), '--resume'], 'argv arrives as it was given, one argument per element');
  assert.equal(fs.realpathSync(seen.cwd), fs.realpathSync(run.dir));
  // The CLI, end to end, with the same hostile folder and the fake interpreter.
  const file = path.join(runsDir, '..', 'meta.finetune.yaml');
  fs.writeFileSync(file, text);
  const env = { ...process.env, FINETUNE_LAB_PYTHON: fake };
  const cli = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'run', file, '--runs-dir', runsDir], { env, encoding: 'utf8' });
  assert.equal(cli.status, 0, `${cli.stdout}\n${cli.stderr}`);
  assert.ok(!fs.existsSync(canary), 'a shell ran a metacharacter sequence');
  t.diagnostic(`hostile runs folder: ${JSON.stringify(hostile)}; argv intact; no shell`);
});

// ---- run ids and paths -------------------------------------------------------------------------------

test('run ids typed or read from files cannot leave the run store: ../, absolute, %-encoded, backslash, NUL, symlinks', async () => {
  const runsDir = path.join(tmpDir('ftl-ids-'), 'runs');
  fs.mkdirSync(runsDir);
  for (const bad of UNSAFE.unsafe) {
    assert.ok(runIdProblem(bad), `${JSON.stringify(bad)} passed as a run id`);
    assert.throws(() => runFolder(runsDir, bad), RunPathError);
    assert.equal(isRunFolderOf(runsDir, bad, path.join(runsDir, bad)), false);
  }
  for (const good of UNSAFE.safe) assert.equal(runIdProblem(good), undefined, good);
  // What runId() makes from any experiment name and label is a run id (names are sanitised and cut).
  for (let i = 0; i < 2000; i++) {
    const r = rng(5, i);
    const name = String(randomValue(r)).slice(0, 300) || 'x';
    const id = runId(`a${name}`, String(randomValue(r)).slice(0, 300));
    assert.equal(runIdProblem(id), undefined, `runId made ${JSON.stringify(id)}`);
  }
  // A symlinked run folder pointing out of the store: not listed, not read, not written, not deleted through.
  const outside = tmpDir('ftl-outside-');
  fs.writeFileSync(path.join(outside, 'status.json'), JSON.stringify({ v: 1, state: 'stopped', step: 0, total_steps: 1 }));
  fs.writeFileSync(path.join(outside, 'meta.json'), JSON.stringify({ v: 1, run_id: 'evil', experiment_name: 'evil', created: 1 }));
  fs.symlinkSync(outside, path.join(runsDir, 'evil-20240101-000000-full'));
  const store = new RunStore(runsDir);
  assert.deepEqual((await store.list()).map((r) => r.id), []);
  assert.equal(await store.get('evil-20240101-000000-full'), undefined);
  await assert.rejects(store.writeStatus('evil-20240101-000000-full', { v: 1, state: 'failed', step: 0, total_steps: 1 }), RunPathError);
  await assert.rejects(store.delete('evil-20240101-000000-full'), RunPathError);
  assert.ok(fs.existsSync(path.join(outside, 'status.json')), 'the folder a link points to is untouched');
  // The CLI: a bad id is refused with exit 2 and the reason, before anything is read.
  const quiet = console.error;
  let said = '';
  console.error = (...a: unknown[]) => { said += a.join(' '); };
  try {
    for (const bad of ['../x', '/etc', '%2e%2e%2fx', 'a\\b', 'x\u0000y', 'evil-20240101-000000-full']) {
      for (const cmd of ['stop', 'resume']) assert.equal(await main([cmd, bad, '--runs-dir', runsDir]), 2, `${cmd} ${JSON.stringify(bad)}`);
    }
  } finally { console.error = quiet; }
  assert.match(said, /is not a run id/);
  assert.match(said, /symbolic link/);
  // A queue file (written by another window) naming ids that are not run ids: those entries are dropped.
  fs.writeFileSync(path.join(runsDir, '.queue-window-999999999.json'), JSON.stringify({ v: 1, owner: { pid: 999999999, host: os.hostname() }, runs: [{ id: '../../x', resume: false }, { id: 'ok-20240101-000000-full', resume: true }] }));
  assert.deepEqual(adoptOrphanQueues(runsDir, 1, () => false), [{ id: 'ok-20240101-000000-full', resume: true }]);
});

test('Stop and Kill signal only a process that is a trainer of that run folder (status.json may name any pid)', () => {
  const dir = tmpDir('ftl-pid-');
  assert.equal(isTrainerOf(process.pid, dir), false, 'this very process');
  assert.equal(isTrainerOf(1, dir), false, 'init');
  const other = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  assert.equal(isTrainerOf(Number(other.stdout), dir), false, 'a process that has exited');
  const trainer = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)', 'finetune_lab', 'run', '--run-dir', dir], { cwd: dir, stdio: 'ignore' });
  const unrelated = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)', 'finetune_lab', 'run', '--run-dir', tmpDir('ftl-other-')], { stdio: 'ignore' });
  try {
    assert.equal(isTrainerOf(trainer.pid!, dir), true, 'a trainer of this run folder');
    assert.equal(isTrainerOf(unrelated.pid!, dir), false, 'a trainer of another run folder');
  } finally { trainer.kill('SIGKILL'); unrelated.kill('SIGKILL'); }
});
