#!/usr/bin/env node
// `npm run bench`: every benchmark, each recording its numbers in the repo (never timed assertions in
// tests). Pass names to run some: node bench/run.mjs spectra loop webview
//   spectra  trainer/bench/bench_spectra.py   QR spectrum vs dense svdvals (1024x1024, r16) -> trainer/bench/RESULTS.md
//   loop     trainer/bench/bench_loop.py      instrumented training loop vs a bare PyTorch loop -> trainer/bench/RESULTS.md
//   webview  bench/webview/run.mjs bench      dashboard first paint and update cost, 1M points -> bench/webview/RESULTS.md
//   feed     bench/feed/run.mjs               a 1M-event run read by the host's feed and replayed -> bench/feed/RESULTS.md
//   table    bench/table/run.mjs              runs table first paint, sort and scroll, 1,000 and 10,000 runs -> bench/table/RESULTS.md
//   scale    trainer/bench/bench_scale.py     ours vs Hugging Face Trainer + PEFT on the CPU (builtin:small, ~100M Llama) -> trainer/bench/results/
// `npm run bench -- --gpu` runs trainer/bench/gpu.sh alone: every GPU check in one call (CUDA needed; it says so at once otherwise).
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const python = process.env.FINETUNE_LAB_PYTHON || join(root, '.venv', 'bin', 'python');
const benches = {
  spectra: [python, ['trainer/bench/bench_spectra.py', '--threads', '1']],
  loop: [python, ['trainer/bench/bench_loop.py']],
  webview: [process.execPath, ['bench/webview/run.mjs', 'bench']],
  feed: [process.execPath, ['bench/feed/run.mjs']],
  table: [process.execPath, ['bench/table/run.mjs']],
  scale: [python, ['trainer/bench/bench_scale.py', '--device', 'cpu', '--threads', '2', '--rounds', '2']],
};
if (process.argv.includes('--gpu')) {
  const r = spawnSync('bash', [join(root, 'trainer', 'bench', 'gpu.sh')], { cwd: root, stdio: 'inherit', env: { ...process.env, ...(existsSync(python) ? { FINETUNE_LAB_PYTHON: python } : {}) } });
  process.exit(r.status ?? 1);
}
const pick = process.argv.slice(2);
let failed = 0;
for (const [name, [cmd, args]] of Object.entries(benches)) {
  if (pick.length && !pick.includes(name)) continue;
  console.log(`\n[bench] ${name}: ${[cmd, ...args].join(' ')}`);
  const load = readLoad();
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PYTHONPATH: join(root, 'trainer') } });
  process.stdout.write(r.stdout ?? '');
  if (r.status !== 0) { failed++; console.error(`[bench] ${name} failed (exit ${r.status})`); continue; }
  // Every run's output is kept, dated, with the load it ran under: numbers live in the repo.
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  appendFileSync(join(root, 'bench', 'results', `${name}.log`), `\n## ${new Date().toISOString()}  load ${load}  ${[cmd.replace(root + '/', ''), ...args].join(' ')}\n${r.stdout}`);
}
process.exit(failed ? 1 : 0);

function readLoad() {
  try { return spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.split(' ').slice(0, 3).join(' '); } catch { return '?'; }
}
