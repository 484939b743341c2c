// The generation playground's browser side (paper §4.5): a prompt, the sampling controls, and one
// column per export (base, LoRA, full) with its samples as they arrive and a small table of their
// diversity, so base vs LoRA vs full is read across the row of tables. Messages are those of
// src/core/playgroundProtocol.ts, checked on receipt; prompt, settings and the last results are kept
// with setState, so a hidden or reloaded panel comes back as it was.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textarea/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import css from './playground.css';
import { adoptCss, el } from '../common/dom';
import {
  DEFAULT_SETTINGS, LIMITS, MAX_PROMPT, assertNever, isHostToPlayground,
  type GenSettings, type HostToPlayground, type PlaygroundModel, type PlaygroundRestore, type PlaygroundToHost,
} from '../../src/core/playgroundProtocol';
import type { Diversity } from '../../src/core/diversity';

const vscode = acquireVsCodeApi<State>();
const post = (m: PlaygroundToHost): void => vscode.postMessage(m);

interface SampleView { index: number; seed: number; text: string; tokens: number; stop: 'eos' | 'length' }
interface ColumnResult { samples: SampleView[]; diversity?: Diversity; seconds?: number; tokensPerS?: number; error?: string; running?: boolean }
interface State {
  restore: PlaygroundRestore;
  prompt: string;
  settings: GenSettings;
  excluded: string[];
  /** Results of the last generation, by model id; `shownPrompt` is the prompt they answer. */
  results: Record<string, ColumnResult>;
  shownPrompt: string;
}

const saved = vscode.getState() as Partial<State> | undefined;
const state: State = {
  restore: { runs: [] }, prompt: 'def fibonacci(n):', settings: { ...DEFAULT_SETTINGS }, excluded: [], results: {}, shownPrompt: '',
  ...(saved && typeof saved === 'object' ? saved : {}),
};
state.settings = { ...DEFAULT_SETTINGS, ...state.settings };
const save = (): void => { vscode.setState(state); };

let models: PlaygroundModel[] = [];
let job: number | null = null;

// ---- DOM ------------------------------------------------------------------------------------

adoptCss(css);

type ValueEl = HTMLElement & { value: string; disabled?: boolean };

const toolbar = el('div', 'toolbar');
const title = el('h1', '', 'Playground');
const generateBtn = el('vscode-button', '', 'Generate') as ValueEl;
const cancelBtn = el('vscode-button', '', 'Cancel') as ValueEl;
cancelBtn.setAttribute('secondary', '');
const status = el('span', 'status');
const ring = el('vscode-progress-ring', 'hidden');
toolbar.append(title, generateBtn, cancelBtn, ring, status);

const promptBox = el('vscode-textarea', 'prompt') as ValueEl & { rows: number; monospace: boolean; maxLength: number };
promptBox.rows = 4;
promptBox.monospace = true;
promptBox.maxLength = MAX_PROMPT;
promptBox.setAttribute('placeholder', 'A prompt: each model continues it (instruction runs see it inside their template).');
promptBox.setAttribute('aria-label', 'Prompt');
promptBox.value = state.prompt;
promptBox.addEventListener('input', () => { state.prompt = promptBox.value; save(); });

// Steps count from min in the browser's number validation (0.95 with min 0.01 and step 0.05 is "invalid"): 0.01 for real values.
const FIELDS: { key: keyof GenSettings; label: string; step: number; hint: string }[] = [
  { key: 'temperature', label: 'Temperature', step: 0.01, hint: '0 = greedy' },
  { key: 'topP', label: 'Top-p', step: 0.01, hint: '1 = off' },
  { key: 'topK', label: 'Top-k', step: 1, hint: '0 = off' },
  { key: 'maxNewTokens', label: 'Max new tokens', step: 1, hint: 'per sample' },
  { key: 'samples', label: 'Samples per model', step: 1, hint: 'same seeds in every column' },
  { key: 'seed', label: 'Seed', step: 1, hint: 'sample i uses seed + i' },
];
const controls = el('div', 'controls');
const inputs = new Map<keyof GenSettings, ValueEl & { invalid: boolean }>();
for (const f of FIELDS) {
  const wrap = el('label', 'control');
  const name = el('span', 'control-label', f.label);
  const input = el('vscode-textfield') as ValueEl & { invalid: boolean };
  input.setAttribute('type', 'number');
  input.setAttribute('min', String(LIMITS[f.key][0]));
  input.setAttribute('max', String(LIMITS[f.key][1]));
  input.setAttribute('step', String(f.step));
  input.setAttribute('aria-label', f.label);
  input.value = String(state.settings[f.key]);
  input.addEventListener('input', () => readSettings());
  wrap.append(name, input);
  if (f.hint) wrap.append(el('span', 'control-hint', f.hint));
  controls.append(wrap);
  inputs.set(f.key, input);
}

const problems = el('div', 'banner hidden');
const columns = el('div', 'columns');
const empty = el('div', 'banner empty hidden');
document.body.append(toolbar, promptBox, controls, problems, empty, columns);

/** The settings as typed; fields out of bounds are marked and keep Generate off. */
function readSettings(): boolean {
  let ok = true;
  for (const f of FIELDS) {
    const input = inputs.get(f.key)!;
    const v = Number(input.value);
    const [lo, hi] = LIMITS[f.key];
    const good = input.value.trim() !== '' && Number.isFinite(v) && v >= lo && v <= hi && (f.key === 'temperature' || f.key === 'topP' || Number.isInteger(v));
    input.invalid = !good;
    if (good) state.settings[f.key] = v; else ok = false;
  }
  save();
  updateButtons(ok);
  return ok;
}

function updateButtons(settingsOk = true): void {
  const chosen = models.filter((m) => !state.excluded.includes(m.id));
  const running = job !== null;
  generateBtn.toggleAttribute('disabled', running || !settingsOk || chosen.length === 0);
  cancelBtn.toggleAttribute('disabled', !running);
  ring.classList.toggle('hidden', !running);
}

// ---- columns -------------------------------------------------------------------------------

/** The prompt's last line(s), muted before each continuation: enough to read where it starts. */
const promptTail = (p: string): string => (p.length > 80 ? `…${p.slice(-80)}` : p);

const fmt = (v: number | null | undefined, digits = 2): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));

function diversityTable(d: Diversity | undefined, r: ColumnResult): HTMLElement {
  const t = el('table', 'metrics');
  t.setAttribute('aria-label', 'Diversity of the samples');
  const rows: [string, string, string][] = [
    ['unique', d ? `${d.unique} / ${d.samples}` : '–', 'distinct samples (paper §4.5)'],
    ['distinct-1', fmt(d?.distinct1), 'unique words / words'],
    ['distinct-2', fmt(d?.distinct2), 'unique word pairs / pairs'],
    ['distinct-3', fmt(d?.distinct3), 'unique word triples / triples'],
    ['Jaccard', fmt(d?.meanJaccard), 'mean pairwise word overlap (lower = more diverse)'],
    ['tokens/s', r.tokensPerS !== undefined ? r.tokensPerS.toFixed(0) : '–', 'generation speed (CPU, no KV cache)'],
  ];
  for (const [k, v, tip] of rows) {
    const tr = el('tr');
    tr.title = tip;
    tr.append(el('th', '', k), el('td', '', v));
    t.append(tr);
  }
  return t;
}

function renderColumn(m: PlaygroundModel): HTMLElement {
  const r = state.results[m.id] ?? { samples: [] };
  const col = el('section', `column kind-${m.kind}`);
  const head = el('header', 'column-head');
  const include = el('vscode-checkbox') as HTMLElement & { checked: boolean };
  include.checked = !state.excluded.includes(m.id);
  include.toggleAttribute('checked', include.checked);
  include.setAttribute('aria-label', `Include ${m.run} ${m.kindLabel}`);
  include.title = 'Include this model in the next generation';
  include.addEventListener('change', () => {
    state.excluded = include.checked ? state.excluded.filter((x) => x !== m.id) : [...state.excluded, m.id];
    save(); updateButtons();
  });
  const name = el('div', 'column-title');
  name.append(el('span', `badge ${m.kind}`, m.kindLabel), el('span', 'step', m.kind === 'base' ? m.base : `step ${m.step ?? '?'}`));
  // The base column is shared by the runs built on that base: name the model, not one run.
  const run = el('div', 'column-run', m.kind === 'base' ? `before finetuning (exported with ${m.run})` : m.run);
  run.title = m.id;
  head.append(include, name);
  col.append(head, run);
  if (m.promptFormat === 'instruction') col.append(el('div', 'column-note', 'instruction format: the prompt goes into the run\'s template'));
  col.append(diversityTable(r.diversity, r));
  if (r.error) col.append(el('div', 'banner error', r.error));
  const list = el('ol', 'samples');
  for (const s of [...r.samples].filter(Boolean).sort((a, b) => a.index - b.index)) {
    const li = el('li', 'sample');
    const meta = el('div', 'sample-meta', `#${s.index} · seed ${s.seed} · ${s.tokens} tokens · ${s.stop === 'eos' ? 'ended (eos)' : 'hit max tokens'}`);
    const pre = el('pre', 'sample-text');
    pre.append(el('span', 'sample-prompt', promptTail(state.shownPrompt)), document.createTextNode(s.text || ''));
    if (!s.text) pre.append(el('span', 'sample-empty', '(nothing before eos)'));
    else if (!s.text.trim()) pre.append(el('span', 'sample-empty', `(whitespace only: ${s.text.length} characters)`));
    li.append(meta, pre);
    list.append(li);
  }
  if (r.running) list.append(el('li', 'sample pending', 'generating…'));
  col.append(list);
  return col;
}

function render(): void {
  columns.replaceChildren(...models.map(renderColumn));
  empty.classList.toggle('hidden', models.length > 0);
  updateButtons();
}

function renderProblems(list: string[]): void {
  problems.replaceChildren();
  problems.className = list.length ? 'banner warn' : 'banner hidden';
  if (!list.length) return;
  const ul = el('ul');
  for (const p of list) ul.append(el('li', '', p));
  const exportBtn = el('vscode-button', '', 'Export to ONNX…');
  exportBtn.setAttribute('secondary', '');
  exportBtn.addEventListener('click', () => post({ type: 'exportMissing' }));
  problems.append(ul, exportBtn);
}

// ---- messages ------------------------------------------------------------------------------

generateBtn.addEventListener('click', () => {
  if (job !== null || !readSettings()) return;
  const chosen = models.filter((m) => !state.excluded.includes(m.id)).map((m) => m.id);
  if (chosen.length) post({ type: 'generate', prompt: state.prompt, settings: { ...state.settings }, models: chosen });
});
cancelBtn.addEventListener('click', () => post({ type: 'cancel' }));

function onMessage(msg: HostToPlayground): void {
  switch (msg.type) {
    case 'init':
      models = msg.models;
      state.restore = msg.restore;
      for (const id of Object.keys(state.results)) if (!models.some((m) => m.id === id)) delete state.results[id];
      for (const r of Object.values(state.results)) r.running = false;
      job = null;
      empty.textContent = 'No ONNX exports for these runs yet. Export them (run context menu: Export to ONNX), then they appear here as columns.';
      renderProblems(msg.problems);
      save(); render();
      return;
    case 'started':
      job = msg.job;
      state.shownPrompt = state.prompt;
      for (const id of msg.models) state.results[id] = { samples: [], running: true };
      status.textContent = `Generating ${msg.settings.samples} sample${msg.settings.samples === 1 ? '' : 's'} × ${msg.models.length} model${msg.models.length === 1 ? '' : 's'}…`;
      save(); render();
      return;
    case 'sample': {
      if (msg.job !== job) return;
      const r = (state.results[msg.model] ??= { samples: [] });
      r.samples[msg.index] = { index: msg.index, seed: msg.seed, text: msg.text, tokens: msg.tokens, stop: msg.stop };
      save(); render();
      return;
    }
    case 'modelDone': {
      if (msg.job !== job) return;
      const r = (state.results[msg.model] ??= { samples: [] });
      Object.assign(r, { diversity: msg.diversity, seconds: msg.seconds, tokensPerS: msg.tokensPerS, running: false });
      save(); render();
      return;
    }
    case 'done':
      if (msg.job !== job) return;
      job = null;
      for (const r of Object.values(state.results)) r.running = false;
      status.textContent = msg.cancelled ? 'Cancelled.' : 'Done.';
      save(); render();
      return;
    case 'error':
      if (msg.model) {
        const r = (state.results[msg.model] ??= { samples: [] });
        r.error = msg.message; r.running = false;
      } else status.textContent = msg.message;
      save(); render();
      return;
    default:
      assertNever(msg);
  }
}

window.addEventListener('message', (ev: MessageEvent<unknown>) => {
  if (!isHostToPlayground(ev.data)) {
    post({ type: 'log', level: 'error', message: `playground dropped an invalid message: ${String((ev.data as { type?: unknown })?.type)}` });
    return;
  }
  onMessage(ev.data);
});

render();
readSettings();
post({ type: 'ready' });
