#!/usr/bin/env node
// End-to-end tests: the packaged extension (VSIX from `npm run package`) in code-server, a real
// VS Code, driven through its UI by Debian's Chromium with playwright-core. See README.md here.
//
//   node test/e2e/run.mjs            (npm run test:e2e runs the setup first)
//   FINETUNE_LAB_E2E_VSIX=x.vsix     use a VSIX already built instead of `npm run package`
//   FINETUNE_LAB_E2E_ONLY=regex      run only the scenarios whose name matches (others are not run
//                                    and the summary says so; for local iteration, never in CI)
//   FINETUNE_LAB_E2E_KEEP=1          keep the temporary folder (workspace, user data, logs)
//
// Screenshots of every step and, on failure, the extension host log go to test-results/e2e/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { e2eSetup, cacheDir } from '../../scripts/e2eSetup.mjs';
import { startCluster, stopCluster } from '../../scripts/slurmCluster.mjs';
import { CodeServer, Shots, Workbench, launchBrowser, rmrf, saveLogs } from './harness.mjs';
import { writeWorkspace } from './fixtures.mjs';
import { Runner } from './runner.mjs';
import { defineAnalysisScenarios, defineScenarios, defineUntrustedScenarios } from './scenarios.mjs';
import { defineReliabilityScenarios, defineUntrustedReliabilityScenarios } from './reliabilityScenarios.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const resultsDir = join(root, 'test-results', 'e2e');
const t0 = Date.now();
const secs = () => ((Date.now() - t0) / 1000).toFixed(0);
function say(msg) { console.log(`[e2e ${secs()}s] ${msg}`); }
function die(msg) { console.error(`\n[e2e] ${msg}\n\n0 passed, 1 failed`); process.exit(1); }

// Everything we start is registered here and torn down on every way out.
const cleanups = [];
async function cleanup() {
  while (cleanups.length) { const f = cleanups.pop(); try { await f(); } catch (e) { console.error(`[e2e] cleanup: ${e.message}`); } }
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, async () => { await cleanup(); process.exit(130); });

// 1. Prerequisites (quick when installed; never skipped).
let tools;
try { tools = e2eSetup({ quiet: true }); } catch (e) { die(`end-to-end prerequisites missing: ${e.message}\nRun: node scripts/e2eSetup.mjs`); }

// 2. The trainer's interpreter, as a user would set it: finetuneLab.pythonPath.
const python = process.env.FINETUNE_LAB_PYTHON || join(root, '.venv', 'bin', 'python');
{
  const r = spawnSync(python, ['-c', 'import torch, transformers, peft, safetensors'], { encoding: 'utf8' });
  if (r.status !== 0) die(`the trainer's Python (${python}) cannot import torch, transformers, peft, safetensors:\n${(r.stderr || r.error?.message || '').slice(-1500)}\nRun: node scripts/ensure.mjs python`);
}

// 3. The VSIX, built the way a release is.
let vsix = process.env.FINETUNE_LAB_E2E_VSIX ? resolve(process.env.FINETUNE_LAB_E2E_VSIX) : null;
if (!vsix) {
  say('building the VSIX (npm run package)…');
  const r = spawnSync('npm', ['run', 'package'], { cwd: root, encoding: 'utf8' });
  vsix = join(root, 'finetune-lab.vsix');
  if (r.status !== 0 || !existsSync(vsix)) die(`npm run package failed (exit ${r.status}):\n${`${r.stdout}\n${r.stderr}`.slice(-4000)}`);
}
if (!existsSync(vsix)) die(`no VSIX at ${vsix}`);

// 4. A fresh temporary world: workspace, user data, extensions. The trainer's cache (pretrained
//    built-in bases) is reused between runs so the tiny base is pretrained once per machine.
const tmp = mkdtempSync(join(tmpdir(), 'finetune-lab-e2e-'));
if (!process.env.FINETUNE_LAB_E2E_KEEP) cleanups.push(() => rmrf(tmp));
else say(`keeping ${tmp}`);
rmrf(resultsDir);
mkdirSync(resultsDir, { recursive: true });
const trainerCache = join(cacheDir(), 'trainer-cache');
mkdirSync(trainerCache, { recursive: true });
const settings = {
  'finetuneLab.pythonPath': python,
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'git.enabled': false,
  'files.autoSave': 'off',
  'window.commandCenter': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'chat.disableAIFeatures': true,
};
const env = { FINETUNE_LAB_CACHE: trainerCache };
// A single-node Slurm for the Slurm scenario (scripts/slurmCluster.mjs; set-up installed it):
// the extension host finds sbatch/squeue on PATH and this cluster through SLURM_CONF.
try {
  const cluster = await startCluster(join(tmp, 'slurm'));
  env.SLURM_CONF = cluster.SLURM_CONF;
  cleanups.push(() => stopCluster(cluster.dir));
  say(`Slurm: single-node cluster on ${cluster.node}, partition ${cluster.partition}`);
} catch (e) { die(`the test Slurm cluster did not start: ${e.message}\nRun: node scripts/slurmSetup.mjs (as root)`); }

const only = process.env.FINETUNE_LAB_E2E_ONLY ? new RegExp(process.env.FINETUNE_LAB_E2E_ONLY, 'i') : null;
const shots = new Shots(resultsDir);
let totals = { passed: 0, failed: 0 };
let notRun = 0;

async function group(name, { trust, files, define }) {
  const runner = new Runner();
  define(runner);
  if (only) { const before = runner.list.length; runner.list = runner.list.filter((s) => only.test(s.name)); notRun += before - runner.list.length; }
  if (runner.list.length === 0) return;
  const ws = writeWorkspace(join(tmp, `${name}-workspace`), files);
  const server = new CodeServer({ tools, root: tmp, name, workspace: ws, vsix, settings, env, trust });
  let wb;
  runner.onFailure = async (s) => {
    if (wb?.page) await wb.shot('FAILED');
    const saved = saveLogs(server, join(resultsDir, 'logs'), name);
    console.log(`      artifacts: ${saved.length} log(s) in ${join('test-results', 'e2e', 'logs')}`);
  };
  say(`${name}: installing the VSIX into a fresh code-server…`);
  server.installExtension();
  await server.start();
  cleanups.push(() => server.stop());
  cleanups.push(() => killTrainers(ws));
  say(`${name}: code-server on 127.0.0.1:${server.port} (${trust ? 'trusted' : 'untrusted'} workspace ${ws})`);
  const browser = await launchBrowser(tools.chromium);
  cleanups.push(() => browser.close());
  wb = new Workbench({ browser, server, shots });
  await wb.open();
  say(`${name}: workbench ready`);
  const state = {};
  const r = await runner.run(async (s) => { shots.scenario = s.name.split(/[:;,]/)[0].trim().replace(/\s+/g, '-').slice(0, 40); return { wb, server, ws, state, shots }; });
  totals.passed += r.passed; totals.failed += r.failed;
  await wb.close();
}

/** Trainers are detached (they survive the editor by design): stop the ones our runs left. */
function killTrainers(ws) {
  const runs = join(ws, '.finetune', 'runs');
  if (!existsSync(runs)) return;
  for (const id of readdirSync(runs)) {
    let st; try { st = JSON.parse(readFileSync(join(runs, id, 'status.json'), 'utf8')); } catch { continue; }
    if (!st?.pid || !['running', 'queued'].includes(st.state)) continue;
    for (const target of [-st.pid, st.pid]) { try { process.kill(target, 'SIGKILL'); } catch { /* gone */ } }
  }
}

let crashed = null;
try {
  await group('trusted', { trust: true, files: undefined, define: (r) => { defineScenarios(r); defineReliabilityScenarios(r); } });
  await group('untrusted', { trust: false, files: ['quick-lora.finetune.yaml'], define: (r) => { defineUntrustedScenarios(r); defineUntrustedReliabilityScenarios(r); } });
  // Analysis runs (issue 14) in a workspace of their own: an adapter made by PEFT, nothing trained.
  await group('analysis', { trust: true, files: ['quick-lora.finetune.yaml'],
    define: (r) => defineAnalysisScenarios(r, { python, trainerCache, trainerDir: join(root, 'trainer') }) });
} catch (e) {
  crashed = e;
  console.error(`[e2e] the harness failed: ${e.stack}`);
} finally {
  await cleanup();
}
const nShots = existsSync(resultsDir) ? readdirSync(resultsDir).filter((f) => f.endsWith('.png')).length : 0;
console.log(`\n[e2e] ${nShots} screenshots in test-results/e2e/ (look at them: a blank chart is a failure). Suite ${secs()} s.`);
if (notRun) console.log(`[e2e] FINETUNE_LAB_E2E_ONLY: ${notRun} scenario(s) not run`);
if (crashed) totals.failed += 1;
console.log(`${totals.passed} passed, ${totals.failed} failed`);
process.exit(totals.failed > 0 || (totals.passed === 0) ? 1 : 0);
