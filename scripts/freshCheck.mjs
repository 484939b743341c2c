#!/usr/bin/env node
// The fresh-machine check: the README's test command (`npm test`) on a copy of this working tree,
// with HOME pointed at an empty temporary folder (only ~/.npmrc copied, which the machine image
// provides), so npm's, pip's, the built-in bases' and code-server's caches all start empty — as
// on a new machine. A green CI on a machine that has those caches proves nothing about set-up.
// What it cannot empty: Debian packages (chromium, build headers), which are system-wide.
//
//   npm run test:fresh [-- --keep] [-- --command "npm run demo"]
//
// Prints the time of each stage (npm ci, .venv, type check, unit, pytest, e2e set-up, e2e) and
// writes them to test-results/fresh/stages.json; record them in bench/fresh/RESULTS.md.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { childEnv } from './childEnv.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const keep = args.includes('--keep');
const commandAt = args.indexOf('--command');
const command = commandAt >= 0 ? args[commandAt + 1] : 'npm test';

/** Stage boundaries, as the set-up scripts and npm print them (first match names the stage that starts). */
export const STAGE_MARKERS = [
  [/^\[setup\] installing npm packages/, 'npm ci'],
  [/^\[setup\] creating the trainer's virtual environment|^\[setup\] installing the trainer's requirements/, 'trainer .venv (pip)'],
  [/^> \S+ check-types$/, 'type check'],
  [/^> \S+ test:unit$/, 'unit tests (node --test)'],
  [/^> \S+ test:py$/, 'pytest'],
  [/^> \S+ test:e2e$/, 'e2e set-up (apt, Node 24, code-server)'],
  [/^\[e2e \d+s\] building the VSIX/, 'e2e: VSIX'],
  [/^\[e2e \d+s\] trusted: installing the VSIX/, 'e2e: scenarios (trusted)'],
  [/^\[e2e \d+s\] untrusted: installing the VSIX/, 'e2e: scenarios (untrusted)'],
  [/^\[demo\]|^> \S+ demo$/, 'demo'],
];

/** Folds timestamped output lines into [{stage, seconds}] in the order they started. */
export function stagesOf(lines, end) {
  const stages = [];
  for (const { t, line } of lines) {
    const hit = STAGE_MARKERS.find(([re]) => re.test(line));
    if (!hit || stages.at(-1)?.stage === hit[1] || stages.some((s) => s.stage === hit[1])) continue;
    stages.push({ stage: hit[1], start: t });
  }
  return stages.map((s, i) => ({ stage: s.stage, seconds: Math.round(((stages[i + 1]?.start ?? end) - s.start) / 100) / 10 }));
}

/** The tracked and untracked-but-not-ignored files of the working tree (what a commit would hold). */
function copyWorkingTree(to) {
  const r = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ls-files failed: ${r.stderr}`);
  let n = 0;
  for (const rel of r.stdout.split('\0').filter(Boolean)) {
    const from = join(root, rel);
    if (!existsSync(from)) continue; // deleted but not yet committed
    mkdirSync(dirname(join(to, rel)), { recursive: true });
    copyFileSync(from, join(to, rel));
    n++;
  }
  return n;
}

/** The user's environment without caches' locations and without the outer npm's settings. */
function freshEnv(home) {
  const env = childEnv({ HOME: home, CI: process.env.CI ?? '' });
  for (const k of Object.keys(env)) {
    if (/^(FINETUNE_LAB_|XDG_|PIP_|HF_|TRANSFORMERS_|TORCH_HOME$|PLAYWRIGHT_)/.test(k)) delete env[k];
  }
  return env;
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'finetune-lab-fresh-'));
  const home = join(tmp, 'home');
  const repo = join(tmp, 'repo');
  mkdirSync(home, { recursive: true });
  if (existsSync(join(homedir(), '.npmrc'))) copyFileSync(join(homedir(), '.npmrc'), join(home, '.npmrc'));
  const files = copyWorkingTree(repo);
  console.log(`[fresh] ${files} files of the working tree in ${repo}; HOME=${home} (empty but ~/.npmrc)`);
  console.log(`[fresh] running: ${command}`);
  const t0 = Date.now();
  const lines = [];
  const child = spawn('bash', ['-c', command], { cwd: repo, env: freshEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push({ t: Date.now(), line });
      process.stdout.write(`${line}\n`);
    });
  }
  const code = await new Promise((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  const end = Date.now();
  const stages = stagesOf(lines, end);
  const total = Math.round((end - t0) / 1000);
  console.log(`\n[fresh] ${command}: exit ${code} after ${Math.floor(total / 60)}m${String(total % 60).padStart(2, '0')}s`);
  for (const s of stages) console.log(`[fresh]   ${s.stage.padEnd(40)} ${s.seconds.toFixed(0).padStart(5)} s`);
  const out = join(root, 'test-results', 'fresh');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'stages.json'), JSON.stringify({ command, exit: code, total_s: total, date: new Date(t0).toISOString(), stages }, null, 2) + '\n');
  if (keep) console.log(`[fresh] kept ${tmp} (HOME, the copy and its logs)`);
  else if (code === 0) rmSync(tmp, { recursive: true, force: true });
  else {
    // Keep what explains the failure, not the 7 GB of environments: leftovers of failed checks
    // once filled this machine's disk, and CI (which runs here) then failed in pip.
    for (const heavy of [join(repo, '.venv'), join(repo, 'node_modules'), join(repo, '.vscode-test'), join(home, '.cache'), join(home, '.npm')]) {
      rmSync(heavy, { recursive: true, force: true });
    }
    console.log(`[fresh] kept ${repo} without its .venv and node_modules (logs in test-results/); --keep keeps everything`);
  }
  process.exit(code);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
