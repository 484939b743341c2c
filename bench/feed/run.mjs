// Builds and runs the feed replay benchmark: node bench/feed/run.mjs (see bench.ts).
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
await esbuild.build({ entryPoints: ['bench/feed/bench.ts'], outfile: 'out/bench/feed/bench.js', bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['vscode'], logLevel: 'warning' });
execFileSync(process.execPath, ['--max-old-space-size=4096', 'out/bench/feed/bench.js'], { stdio: 'inherit' });
