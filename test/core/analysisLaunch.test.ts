import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AnalysisInputError, analyseArgs, analysisCommand, isRunId, parseLambdas, parseProgress, reduceArgs, runAnalysis } from '../../src/core/analysisLaunch';
import { main } from '../../src/cli/commands';
import { analysisArgv } from '../../src/cli/analysis';
import { tmpDir } from './helpers';

test('analyse: argv for the trainer, absolute paths, exactly one source, the base checked by the schema', () => {
  assert.deepEqual(analyseArgs({ base: 'hf:Qwen/Qwen2.5-7B', adapter: 'out/ckpt', runsDir: 'runs', name: 'mine' }), [
    'analyse', '--base', 'hf:Qwen/Qwen2.5-7B', '--adapter', path.resolve('out/ckpt'), '--runs-dir', path.resolve('runs'), '--name', 'mine']);
  assert.deepEqual(analyseArgs({ base: 'builtin:tiny', model: '/m', experiment: 'e.finetune.yaml', runsDir: '/r' }), [
    'analyse', '--base', 'builtin:tiny', '--model', '/m', '--experiment', path.resolve('e.finetune.yaml'), '--runs-dir', '/r']);
  assert.throws(() => analyseArgs({ base: 'hf:x', runsDir: '/r' }), /exactly one of --adapter DIR .* or --model DIR/);
  assert.throws(() => analyseArgs({ base: 'hf:x', adapter: '/a', model: '/m', runsDir: '/r' }), AnalysisInputError);
  assert.throws(() => analyseArgs({ base: 'gpt2', adapter: '/a', runsDir: '/r' }), /--base "gpt2": expected builtin:tiny .* or hf:<name or local folder>/);
  assert.throws(() => analyseArgs({ base: 'builtin:huge', adapter: '/a', runsDir: '/r' }), /--base "builtin:huge"/);
});

test('reduce-intruders: run ids never name a path, λ lists parse as the trainer does', () => {
  assert.deepEqual(reduceArgs({ runId: 'demo-20261206-101010-lora-r16', runsDir: '/w/runs', lambdas: [0.25, 1], topK: 10, epsilon: 0.5 }), [
    'reduce-intruders', 'demo-20261206-101010-lora-r16', '--runs-dir', '/w/runs', '--lambda', '0.25,1', '--top-k', '10', '--epsilon', '0.5']);
  assert.deepEqual(reduceArgs({ runId: 'r', runsDir: '/w/runs' }), ['reduce-intruders', 'r', '--runs-dir', '/w/runs']);  // the trainer's defaults
  for (const bad of ['../x', 'a/b', 'a\\b', '..', '.', '', 'run id']) {
    assert.equal(isRunId(bad), false, bad);
    assert.throws(() => reduceArgs({ runId: bad, runsDir: '/r' }), /not a run id/);
  }
  assert.throws(() => reduceArgs({ runId: 'r', runsDir: '/r', topK: 0 }), /--top-k 0/);
  assert.throws(() => reduceArgs({ runId: 'r', runsDir: '/r', epsilon: 1.5 }), /--epsilon 1.5/);
  assert.deepEqual(parseLambdas('0.25, 0.5,0.75,1'), [0.25, 0.5, 0.75, 1]);
  assert.deepEqual(parseLambdas('0'), [0]);
  assert.throws(() => parseLambdas('2'), /between 0 and 1 \(got 2\)/);
  assert.throws(() => parseLambdas('0.5,0.5'), /repeated/);
  assert.throws(() => parseLambdas('half'), /expected a number or a comma-separated list/);
  assert.throws(() => parseLambdas(''), /expected a number/);
});

test('progress lines: {run, dir} when the folder exists, status when it ended; other lines are not progress', () => {
  assert.deepEqual(parseProgress('{"run": "a-1", "dir": "/r/a-1"}'), { run: 'a-1', dir: '/r/a-1' });
  assert.deepEqual(parseProgress('{"run": "a-1", "dir": "/r/a-1", "status": "failed", "error": "OSError: x"}'), { run: 'a-1', dir: '/r/a-1', status: 'failed', error: 'OSError: x' });
  assert.equal(parseProgress('spectra: 14 matrices at step 1'), undefined);
  assert.equal(parseProgress('{"export": "x"}'), undefined);
  assert.equal(parseProgress('{not json'), undefined);
});

test('runAnalysis follows a process: progress as it comes, other lines, stderr tail, exit code; abort = SIGTERM', async () => {
  const dir = tmpDir();
  const script = path.join(dir, 'fake.js');
  fs.writeFileSync(script, `
    const hang = process.argv[2] === 'hang';
    if (hang) process.on('SIGTERM', () => { console.log(JSON.stringify({run: 'r2', dir: '/x/r2', status: 'stopped'})); process.exit(130); });
    console.log('checking'); console.log(JSON.stringify({run: 'r1', dir: '/x/r1'}));
    console.error('warning: slow'); console.log(JSON.stringify({run: 'r1', dir: '/x/r1', status: 'completed'}));
    if (hang) setInterval(() => {}, 1000); else process.exit(0);`);
  const seen: string[] = [];
  const lines: string[] = [];
  const r = await runAnalysis({ command: process.execPath, args: [script], env: { ...process.env } as Record<string, string>, cwd: dir },
    { progress: (p) => seen.push(`${p.run}:${p.status ?? 'started'}`), line: (l) => lines.push(l) });
  assert.equal(r.code, 0);
  assert.deepEqual(seen, ['r1:started', 'r1:completed']);
  assert.deepEqual(lines, ['checking']);
  assert.deepEqual(r.runs, [{ run: 'r1', dir: '/x/r1', status: 'completed' }]);
  assert.equal(r.stderr, 'warning: slow');
  const abort = new AbortController();
  const hung = runAnalysis({ command: process.execPath, args: [script, 'hang'], env: { ...process.env } as Record<string, string>, cwd: dir },
    { signal: abort.signal, progress: (p) => { if (p.status === 'completed') abort.abort(); } });
  const h = await hung;
  assert.equal(h.code, 130);
  assert.equal(h.runs.find((x) => x.run === 'r2')?.status, 'stopped');
  const cmd = analysisCommand('/py', '/ext/trainer', ['analyse', '--base', 'builtin:tiny'], '/w', { PATH: '/bin' });
  assert.deepEqual([cmd.command, cmd.args, cmd.env.PYTHONPATH, cmd.cwd], ['/py', ['-m', 'finetune_lab', 'analyse', '--base', 'builtin:tiny'], '/ext/trainer', '/w']);
});

async function capture(fn: () => Promise<number>): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const error = console.error;
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try { return { code: await fn(), err: err.join('\n') }; } finally { console.error = error; }
}

test('CLI: analyse and reduce-intruders refuse bad input with exit 2 before starting Python', async () => {
  const dir = tmpDir();
  const runs = path.join(dir, 'runs');
  fs.mkdirSync(path.join(dir, 'adapter'));
  let r = await capture(() => main(['analyse', '--base', 'gpt2', '--adapter', path.join(dir, 'adapter'), '--runs-dir', runs]));
  assert.equal(r.code, 2);
  assert.match(r.err, /error: --base "gpt2": expected builtin:tiny/);
  r = await capture(() => main(['analyse', '--base', 'builtin:tiny', '--adapter', path.join(dir, 'nope'), '--runs-dir', runs]));
  assert.equal(r.code, 2);
  assert.match(r.err, /--adapter .*nope: no such folder/);
  r = await capture(() => main(['reduce-intruders', '../etc', '--runs-dir', runs]));
  assert.equal(r.code, 2);
  assert.match(r.err, /not a run id: "\.\.\/etc"/);
  r = await capture(() => main(['reduce-intruders', 'absent', '--runs-dir', runs, '--lambda', '0.5']));
  assert.match(r.err, /no run absent in/);
  r = await capture(() => main(['reduce-intruders', 'absent', '--runs-dir', runs, '--lambda', '3']));
  assert.match(r.err, /between 0 and 1/);
  await assert.rejects(main(['analyse', '--adapter', dir]), /missing --base/);
  await assert.rejects(main(['analyse', '--base', 'builtin:tiny', '--adapter', dir, '--bogus']), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
  await assert.rejects(main(['reduce-intruders']), /expected one <run-id>/);
  assert.equal(fs.existsSync(runs), false);
  assert.deepEqual(analysisArgv('analyse', ['--base', 'builtin:tiny', '--model', dir], 'r').slice(0, 5), ['analyse', '--base', 'builtin:tiny', '--model', dir]);
});

test('CLI: resume refuses an analysis run (its config is not an experiment; nothing was trained)', async () => {
  const runs = tmpDir();
  const dir = path.join(runs, 'a');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ v: 1, run_id: 'a', experiment_name: 'x', created: 1, kind: 'analysis' }));
  fs.writeFileSync(path.join(dir, 'status.json'), JSON.stringify({ v: 1, state: 'failed', step: 0, total_steps: 3 }));
  const r = await capture(() => main(['resume', 'a', '--runs-dir', runs]));
  assert.equal(r.code, 1);
  assert.match(r.err, /a is an analysis run: nothing to resume/);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['meta.json', 'status.json']);
});
