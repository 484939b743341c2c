#!/usr/bin/env node
// Installs what `npm run demo` and `npm test` need, and is quick when it is there already:
// npm packages, the bundles, the trainer's Python environment (.venv), and for the end-to-end
// tests code-server + Chromium (scripts/e2eSetup.mjs), and Slurm for the cluster tests (scripts/slurmSetup.mjs). Plain Node with no dependencies, so it
// runs on a fresh clone before `npm install`. Stops with a message naming what is missing.
//
//   node scripts/ensure.mjs [build|python|demo|test|e2e]
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync, statfsSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv } from './childEnv.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mode = process.argv[2] ?? 'build';
const stampDir = join(root, 'node_modules', '.finetune-lab');

function say(msg) { console.log(`[setup] ${msg}`); }
function fail(msg) { console.error(`\n[setup] ${msg}\n`); process.exit(1); }
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: childEnv(), ...opts });
  if (r.error) return { ok: false, error: r.error.message };
  return { ok: r.status === 0, status: r.status };
}
/** Like run, but says every 20 s that the command is still going (pip's install phase prints nothing for a minute or more). */
function runWithHeartbeat(cmd, args, what) {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: 'inherit', env: childEnv() });
    const beat = setInterval(() => say(`${what}: still working (${Math.round((Date.now() - t0) / 1000)} s)…`), 20_000);
    child.on('error', (e) => { clearInterval(beat); resolve({ ok: false, error: e.message }); });
    child.on('close', (code) => { clearInterval(beat); resolve({ ok: code === 0, status: code }); });
  });
}
function hashOf(files, extra = '') {
  const h = createHash('sha256');
  for (const f of [].concat(files)) h.update(existsSync(join(root, f)) ? readFileSync(join(root, f)) : '');
  h.update(extra);
  return h.digest('hex').slice(0, 16);
}
// Each stamp lives inside what it describes (node_modules/, .venv/), so `npm ci` wiping
// node_modules does not also make the .venv look stale.
const stampFile = (name) => (name === 'venv' ? join(root, '.venv', '.finetune-lab-stamp') : join(stampDir, name));
function stampOk(name, hash) {
  const p = stampFile(name);
  return existsSync(p) && readFileSync(p, 'utf8') === hash;
}
function writeStamp(name, hash) { mkdirSync(dirname(stampFile(name)), { recursive: true }); writeFileSync(stampFile(name), hash); }

const GB = 1024 ** 3;
/** Free bytes on the filesystem holding `dir` (null where statfs is unsupported). */
function freeBytes(dir) {
  try { const st = statfsSync(dir); return st.bavail * st.bsize; } catch { return null; }
}
/** Stops before a step that would run out of disk half-way, naming the folders and the sizes. */
function ensureDiskSpace(neededGB, what, dirs) {
  for (const dir of dirs) {
    const free = freeBytes(dir);
    if (free === null || free >= neededGB * GB) continue;
    fail(`Not enough free disk for ${what}: ${(free / GB).toFixed(1)} GB free on the filesystem of ${dir}, about ${neededGB} GB needed.\n` +
      'Free some space (df -h shows where it went; old clones or temp folders in /tmp are typical) and run this again.');
  }
}

function ensureNodeModules() {
  // The lock file names every installed package (the root's dependencies included), and
  // allowScripts decides which install scripts run: editing a script in package.json does not
  // need a reinstall.
  const allow = JSON.stringify(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).allowScripts ?? null);
  const hash = hashOf('package-lock.json', allow);
  if (existsSync(join(root, 'node_modules')) && stampOk('npm', hash)) return;
  const [major] = process.versions.node.split('.').map(Number);
  if (major < 20) fail(`Node ${process.versions.node} is too old: Node 20 or newer is needed (https://nodejs.org or your package manager).`);
  say('installing npm packages (npm ci)…');
  const t = Date.now();
  // onnxruntime-node's install script downloads CUDA binaries and fails offline: CPU is enough here.
  const r = run('npm', ['ci', '--no-audit', '--no-fund'], { env: childEnv({ ONNXRUNTIME_NODE_INSTALL: 'skip' }) });
  if (!r.ok) fail('npm ci failed (see above). It needs the npm registry; check your network or proxy (npm config get registry).');
  writeStamp('npm', hash);
  say(`npm packages installed in ${((Date.now() - t) / 1000).toFixed(0)} s`);
}

function ensureBuild() {
  const r = run(process.execPath, ['esbuild.mjs']);
  if (!r.ok) fail('the build failed (node esbuild.mjs): see the errors above.');
}

const trainerImports = 'import torch, transformers, peft, safetensors, yaml, jsonschema, lm_eval';

function pythonWorks(py) {
  const r = spawnSync(py, ['-c', trainerImports], { stdio: 'ignore' });
  return r.status === 0;
}

/** The trainer's interpreter: $FINETUNE_LAB_PYTHON if set, else the repo's .venv (created here). */
async function ensurePython() {
  const override = process.env.FINETUNE_LAB_PYTHON;
  if (override) {
    if (!pythonWorks(override)) fail(`FINETUNE_LAB_PYTHON=${override} cannot import torch, transformers, peft, safetensors, yaml, jsonschema and lm_eval.\nInstall them there (pip install -r trainer/requirements.txt) or unset FINETUNE_LAB_PYTHON to let this script make .venv.`);
    return override;
  }
  const venvPy = join(root, '.venv', 'bin', 'python');
  const reqs = 'trainer/requirements.txt';
  const hash = hashOf(reqs);
  if (existsSync(venvPy) && stampOk('venv', hash) && pythonWorks(venvPy)) return venvPy;

  // Measured on this machine kind: .venv 6.4 GB (PyPI's torch brings its CUDA libraries) and pip's
  // cache about 3 GB. Without this check pip stops half-way with "[Errno 28] No space left on device".
  ensureDiskSpace(10, "the trainer's environment (.venv, about 6.5 GB, and pip's download cache, about 3 GB)", [root, homedir()]);
  if (!existsSync(venvPy)) {
    const base = ['python3', '/usr/bin/python3'].find((p) => spawnSync(p, ['-c', 'import sys, venv; assert sys.version_info >= (3, 9)'], { stdio: 'ignore' }).status === 0);
    if (!base) fail('No Python 3.9+ with the venv module was found.\nInstall one: apt-get install -y python3 python3-venv (Debian/Ubuntu), then run this again.');
    say(`creating the trainer's virtual environment .venv with ${base}…`);
    const r = run(base, ['-m', 'venv', '.venv']);
    if (!r.ok) fail('python3 -m venv .venv failed. On Debian/Ubuntu: apt-get install -y python3-venv');
  }
  say('installing the trainer\'s requirements into .venv (torch, transformers, peft, safetensors, lm-eval…).');
  say('The first time this downloads about 3 GB (PyPI\'s torch brings its CUDA libraries) and took 3–4 minutes here; pip names each package as it fetches it. Later runs reuse pip\'s cache.');
  const t = Date.now();
  const r = await runWithHeartbeat(venvPy, ['-m', 'pip', 'install', '--disable-pip-version-check', '--progress-bar', 'off', '-r', reqs], 'pip install');
  const freeAfter = freeBytes(root);
  if (!r.ok && freeAfter !== null && freeAfter < 1 * GB) fail(`pip could not install trainer/requirements.txt into .venv: the disk is full (${(freeAfter / GB).toFixed(2)} GB left on the filesystem of ${root}).\nFree space and run this again; delete .venv first if pip left it half-installed.`);
  if (!r.ok) fail('pip could not install trainer/requirements.txt into .venv (see above).\nIt needs the Python package index (https://pypi.org) or a mirror (pip config set global.index-url URL).\nOr point FINETUNE_LAB_PYTHON at an interpreter that already has torch, transformers, peft and safetensors.');
  if (!pythonWorks(venvPy)) fail('.venv was installed but cannot import the trainer\'s libraries; delete .venv and run again.');
  writeStamp('venv', hash);
  say(`trainer environment ready in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  return venvPy;
}

function ensureSlurm() {
  const r = run(process.execPath, ['scripts/slurmSetup.mjs']);
  if (!r.ok) fail('Slurm (Debian packages slurm-wlm, munge) could not be installed for the Slurm tests (see above).');
}

function ensureE2E() {
  const r = run(process.execPath, ['scripts/e2eSetup.mjs']);
  if (!r.ok) fail('the end-to-end prerequisites could not be installed (see above).');
}

switch (mode) {
  case 'build': ensureNodeModules(); ensureBuild(); break;
  case 'python': ensureNodeModules(); await ensurePython(); break;
  case 'demo': ensureNodeModules(); ensureBuild(); await ensurePython(); break;
  // The tests' run folders, checkpoints and code-server profiles live in the temp folder.
  case 'test': ensureNodeModules(); ensureBuild(); await ensurePython(); ensureSlurm(); ensureDiskSpace(2, "the tests' run folders and checkpoints", [tmpdir()]); break;
  case 'e2e': ensureNodeModules(); ensureBuild(); await ensurePython(); ensureSlurm(); ensureE2E(); break;
  default: fail(`unknown mode '${mode}': use build | python | demo | test | e2e`);
}
