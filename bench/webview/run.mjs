// Builds the webview bundles and the harness, then runs it: node bench/webview/run.mjs [shots|bench]
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
execFileSync(process.execPath, ['esbuild.mjs'], { stdio: 'inherit' });
await esbuild.build({ entryPoints: ['bench/webview/harness.ts'], outfile: 'out/bench/webview/harness.js', bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['playwright-core'], logLevel: 'warning' });
execFileSync(process.execPath, ['out/bench/webview/harness.js', ...process.argv.slice(2)], { stdio: 'inherit' });
