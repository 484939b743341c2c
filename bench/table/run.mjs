// Builds the webview bundles and the runs-table benchmark, then runs it: node bench/table/run.mjs [N ...] (see bench.ts).
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
execFileSync(process.execPath, ['esbuild.mjs'], { stdio: 'inherit' });
await esbuild.build({ entryPoints: ['bench/table/bench.ts'], outfile: 'out/bench/table/bench.js', bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['playwright-core', 'vscode'], logLevel: 'warning' });
execFileSync(process.execPath, ['out/bench/table/bench.js', ...process.argv.slice(2)], { stdio: 'inherit' });
