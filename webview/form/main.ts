// The Experiment Form's browser side: controls for the settings that decide LoRA vs full finetuning,
// each with the paper's guidance beside it. The YAML document stays the truth: every change is sent
// to the host as one `set` (the host edits the text), and every document change comes back as a
// `document` message that refreshes the controls (except the one being typed in).
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import css from './form.css';
import { adoptCss, el } from '../common/dom';
import { isHostToForm, type FormToHost, type HostToForm, type PathSeg } from '../../src/core/formProtocol';

const vscode = acquireVsCodeApi();
const post = (m: FormToHost): void => vscode.postMessage(m);

type Doc = Extract<HostToForm, { type: 'document' }>;
type Obj = Record<string, unknown>;
type ValueEl = HTMLElement & { value: string };

adoptCss(css);

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
function get(o: unknown, path: readonly PathSeg[]): unknown {
  let cur = o;
  for (const seg of path) cur = isObj(cur) || Array.isArray(cur) ? (cur as Obj)[seg as string] : undefined;
  return cur;
}

/** "2e-4" → 0.0002; "" → remove the key; anything else stays text (the schema then says what is wrong). */
function parseScalar(text: string, numeric: boolean): { value?: unknown; remove?: boolean } {
  const t = text.trim();
  if (t === '') return { remove: true };
  if (numeric && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return { value: Number(t) };
  return { value: t };
}

function parseList(text: string): unknown[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const p = parseScalar(s, true);
    return p.value === 'true' ? true : p.value === 'false' ? false : p.value;
  });
}

const display = (v: unknown): string => (v === undefined || v === null ? '' : Array.isArray(v) ? v.join(', ') : String(v));

// ---- fields ----------------------------------------------------------------------------------

interface FieldSpec {
  path: PathSeg[];
  label: string;
  kind: 'text' | 'number' | 'select';
  options?: string[];
  guide: string;
  /** Shown only when this returns true for the document's config. */
  when?: (cfg: Obj) => boolean;
}

const usesLora = (c: Obj): boolean => c.method === 'lora' || (Array.isArray(get(c, ['sweep', 'method'])) && (get(c, ['sweep', 'method']) as unknown[]).includes('lora'));

const SECTIONS: { title: string; fields: FieldSpec[]; when?: (c: Obj) => boolean }[] = [
  {
    title: 'Experiment',
    fields: [
      { path: ['name'], label: 'Name', kind: 'text', guide: 'Run folders are named after it.' },
      { path: ['model', 'base'], label: 'Base model', kind: 'text', guide: 'builtin:tiny | small | 125m | 350m (pretrained on English, so there is something to forget), or hf:<name or folder>.' },
      { path: ['data', 'train'], label: 'Training data', kind: 'text', guide: 'The target domain: builtin:python-stdlib (code), builtin:arithmetic (instructions), or a .jsonl file.' },
      { path: ['data', 'format'], label: 'Format', kind: 'select', options: ['text', 'instruction'], guide: 'The paper found LoRA closer to full finetuning on instruction data than on continued pretraining (text).' },
    ],
  },
  {
    title: 'Method',
    fields: [
      { path: ['method'], label: 'Method', kind: 'select', options: ['lora', 'full'], guide: 'LoRA learns less on the new domain and forgets less of the old one; full finetuning the reverse. Which is better depends on where on that curve you want to be.' },
    ],
  },
  {
    title: 'LoRA',
    when: usesLora,
    fields: [
      { path: ['lora', 'rank'], label: 'Rank r', kind: 'number', guide: 'Full finetuning\'s weight change is 10-100x higher rank than typical LoRA. Paper: 256 where memory allows; 16-64 is often not enough for code.' },
      { path: ['lora', 'alpha'], label: 'Alpha', kind: 'number', guide: 'Best practice: alpha = 2·rank (left empty, that is the default).' },
      { path: ['lora', 'target_modules'], label: 'Target modules', kind: 'select', options: ['all', 'mlp', 'attention'], guide: 'all ≥ mlp > attention: the MLP modules matter most; attention-only LoRA learns least.' },
      { path: ['lora', 'dropout'], label: 'Dropout', kind: 'number', guide: 'A small dropout (0.05) regularises the adapter.' },
      { path: ['lora', 'variant'], label: 'Variant', kind: 'select', options: ['lora', 'rslora', 'dora'], guide: 'rslora scales by alpha/√r, which keeps high ranks stable.' },
    ],
  },
  {
    title: 'Training',
    fields: [
      { path: ['train', 'lr'], label: 'Learning rate', kind: 'number', guide: 'LoRA\'s best LR is about 10x full finetuning\'s (default 2e-4 vs 2e-5). LoRA is also more sensitive to it: sweep [1e-5, 5e-4] and take the highest stable one.' },
      { path: ['train', 'steps'], label: 'Steps', kind: 'number', guide: 'Optimizer steps. Full finetuning\'s weight change keeps gaining rank as training goes on.' },
      { path: ['train', 'batch_size'], label: 'Batch size', kind: 'number', guide: 'Sequences per step (times grad_accum).' },
      { path: ['train', 'schedule'], label: 'Schedule', kind: 'select', options: ['cosine', 'constant', 'inverse_sqrt'], guide: 'Cosine decay after warmup, as in the paper.' },
      { path: ['train', 'warmup_steps'], label: 'Warmup steps', kind: 'number', guide: 'Linear warmup before the schedule.' },
    ],
  },
  {
    title: 'Evaluation',
    fields: [
      { path: ['evals', 'every_steps'], label: 'Evaluate every', kind: 'number', guide: 'Steps between evaluations; step 0 (the base) is always evaluated, so forgetting is relative to it.' },
    ],
  },
  {
    title: 'Spectra',
    fields: [
      { path: ['spectra', 'every_steps'], label: 'Spectra every', kind: 'number', guide: 'Singular values of ΔW every N steps (0: off). Shows full finetuning\'s high-rank change against LoRA\'s rank.' },
    ],
  },
];

interface Bound { spec: FieldSpec; control: ValueEl; row: HTMLElement; diag: HTMLElement }
const bound: Bound[] = [];
let current: Doc | undefined;

/** Sends on change, and while typing after a pause (edits show in the text at once). */
function wire(control: ValueEl, send: () => void): void {
  let t: ReturnType<typeof setTimeout> | undefined;
  control.addEventListener('input', () => { clearTimeout(t); t = setTimeout(send, 400); });
  control.addEventListener('change', () => { clearTimeout(t); send(); });
}

/**
 * Names a control for assistive technology: the vscode-elements controls put their `label` on the
 * inner <input>/combobox (the element that takes focus); an aria-label on the host alone is not read.
 */
function labelled<T extends HTMLElement>(control: T, name: string): T {
  control.setAttribute('aria-label', name);
  (control as T & { label: string }).label = name; // a property only: vscode-textfield has no label attribute
  return control;
}

function select(options: string[], extra?: string): ValueEl {
  const s = el('vscode-single-select') as ValueEl;
  for (const o of [...options, ...(extra ? [extra] : [])]) {
    const opt = el('vscode-option', '', o) as ValueEl;
    opt.setAttribute('value', o);
    s.append(opt);
  }
  return s;
}

function textfield(placeholder = ''): ValueEl {
  const t = el('vscode-textfield') as ValueEl;
  if (placeholder) t.setAttribute('placeholder', placeholder);
  return t;
}

function buildField(parent: HTMLElement, spec: FieldSpec): void {
  const row = el('div', 'row');
  const label = el('div', 'label');
  label.append(el('span', '', spec.label), el('br'), el('code', '', spec.path.join('.')));
  const controlBox = el('div', 'control');
  const control = spec.kind === 'select' ? select(spec.options ?? []) : textfield();
  labelled(control, spec.label);
  controlBox.append(control);
  if (spec.path.join('.') === 'lora.alpha') {
    const b = el('vscode-button', '', '= 2·rank');
    b.setAttribute('secondary', '');
    b.title = 'Set alpha to twice the rank (the paper\'s best practice)';
    b.addEventListener('click', () => {
      const rank = Number(get(current?.config, ['lora', 'rank']) ?? get(current?.defaults, ['lora', 'rank']) ?? 16);
      post({ type: 'set', path: ['lora', 'alpha'], value: 2 * rank });
    });
    controlBox.append(b);
  }
  const guide = el('div', 'guide', spec.guide);
  const diag = el('span', 'diag hidden');
  guide.append(diag);
  row.append(label, controlBox, guide);
  parent.append(row);
  wire(control, () => {
    const p = parseScalar(control.value, spec.kind === 'number');
    post({ type: 'set', path: spec.path, ...p });
  });
  bound.push({ spec, control, row, diag });
}

// ---- eval task lists and sweep axes ----------------------------------------------------------

function taskList(parent: HTMLElement, which: 'learning' | 'forgetting', guide: string): (doc: Doc) => void {
  const row = el('div', 'row');
  const label = el('div', 'label');
  label.append(el('span', '', which === 'learning' ? 'Learning tasks' : 'Forgetting tasks'), el('br'), el('code', '', `evals.${which}`));
  const box = el('div', 'tasks');
  const add = el('vscode-button', '', which === 'learning' ? 'Add learning task' : 'Add forgetting task');
  add.setAttribute('secondary', '');
  add.addEventListener('click', () => {
    const tasks = (get(current?.config, ['evals', which]) as unknown[] | undefined) ?? [];
    const task = which === 'learning'
      ? { name: 'target', type: 'loss', data: `${String(get(current?.config, ['data', 'train']) ?? 'builtin:python-stdlib')}${String(get(current?.config, ['data', 'train']) ?? '').startsWith('builtin:') ? '#heldout' : ''}` }
      : { name: 'english', type: 'loss', data: 'builtin:brown#heldout' };
    post({ type: 'set', path: ['evals', which, tasks.length], value: task });
  });
  const side = el('div', 'guide', guide);
  const mid = el('div');
  mid.append(box, add);
  mid.style.gridColumn = '2 / -1';
  row.append(label, mid);
  parent.append(row);
  const note = el('div', 'row');
  note.append(el('div'), el('div'), side);
  parent.append(note);
  let signature = '';
  return (doc) => {
    const tasks = (get(doc.config, ['evals', which]) as unknown[] | undefined) ?? [];
    // the third field is what the task's type reads: an lm_eval task's lm-eval task name, else its data
    const what = (t: unknown): 'task' | 'data' => (get(t, ['type']) === 'lm_eval' ? 'task' : 'data');
    const sig = tasks.map(what).join();
    if (sig !== signature && !box.contains(document.activeElement)) {
      signature = sig;
      box.replaceChildren();
      tasks.forEach((t, i) => {
        const line = el('div', 'task');
        const name = textfield('name');
        const type = select(EVAL_TYPES);
        const key = what(t);
        const data = textfield(key === 'task' ? 'hellaswag' : 'builtin:brown#heldout');
        data.classList.add('data');
        const remove = el('vscode-button', '', 'Remove');
        remove.setAttribute('secondary', '');
        remove.addEventListener('click', () => post({ type: 'set', path: ['evals', which, i], remove: true }));
        for (const [k, c] of [['name', name], ['data', data]] as const) {
          const field = k === 'data' ? key : k;
          c.dataset.key = field;
          labelled(c, `${which} task ${i + 1} ${field}`);
          wire(c, () => post({ type: 'set', path: ['evals', which, i, field], ...parseScalar(c.value, false) }));
        }
        type.dataset.key = 'type';
        labelled(type, `${which} task ${i + 1} type`);
        // each type has its own keys (the schema's shapes): a new type starts the task afresh, keeping its name
        wire(type, () => post({ type: 'set', path: ['evals', which, i], value: freshTask(String(get(t, ['name']) ?? which), type.value, which) }));
        line.append(name, type, data, remove);
        box.append(line);
      });
    }
    box.querySelectorAll<HTMLElement>('.task').forEach((line, i) => {
      line.querySelectorAll<ValueEl>('[data-key]').forEach((c) => {
        if (document.activeElement !== c) c.value = display(get(tasks[i], [c.dataset.key!]));
      });
    });
  };
}

const EVAL_TYPES = ['loss', 'multiple_choice', 'exact_match', 'lm_eval', 'kl_to_base'];

/** A task of `type` with what it needs, for when the type changes (keys of another type would be errors). */
function freshTask(name: string, type: string, which: 'learning' | 'forgetting'): Record<string, unknown> {
  if (type === 'lm_eval') return { name, type, task: which === 'learning' ? 'gsm8k' : 'hellaswag', limit: 100 };
  if (type === 'kl_to_base') return { name, type, data: 'builtin:brown#heldout' };
  return { name, type, data: which === 'learning' ? 'builtin:python-stdlib#heldout' : 'builtin:brown#heldout' };
}

const SWEEPABLE = ['method', 'lora.rank', 'lora.alpha', 'lora.target_modules', 'lora.variant', 'train.lr', 'train.steps', 'train.seed', 'data.format'];

function sweepEditor(parent: HTMLElement): (doc: Doc) => void {
  const section = el('section');
  section.append(el('h2', '', 'Sweep'));
  section.append(el('div', 'guide', 'Every combination of the values becomes a run; runs that differ only in settings their method ignores (lora.* for full) are dropped. Sweep method × rank to see both ends of the learning-vs-forgetting curve; sweep the learning rate per method (LoRA\'s best is about 10x higher).'));
  const axes = el('div', 'axes');
  const addRow = el('div', 'axis');
  const key = select(SWEEPABLE);
  labelled(key, 'New sweep axis');
  const values = textfield('values, comma-separated: 4, 16, 64');
  values.classList.add('values');
  labelled(values, 'New sweep axis values');
  const add = el('vscode-button', '', 'Add axis');
  add.addEventListener('click', () => {
    const list = parseList(values.value);
    if (!list.length) return;
    post({ type: 'set', path: ['sweep', key.value], value: list });
    values.value = '';
  });
  addRow.append(key, values, add);
  const count = el('div', 'muted');
  section.append(axes, addRow, count);
  parent.append(section);
  let signature = '';
  return (doc) => {
    const sweep = get(doc.config, ['sweep']);
    const keys = isObj(sweep) ? Object.keys(sweep) : [];
    const sig = keys.join('\0');
    if (sig !== signature && !axes.contains(document.activeElement)) {
      signature = sig;
      axes.replaceChildren();
      for (const k of keys) {
        const line = el('div', 'axis');
        const kf = el('code', 'key', k);
        const vf = textfield();
        vf.classList.add('values');
        vf.dataset.key = k;
        labelled(vf, `Sweep values for ${k}`);
        wire(vf, () => {
          const list = parseList(vf.value);
          if (list.length) post({ type: 'set', path: ['sweep', k], value: list });
        });
        const remove = el('vscode-button', '', 'Remove');
        remove.setAttribute('secondary', '');
        remove.addEventListener('click', () => post({ type: 'set', path: keys.length === 1 ? ['sweep'] : ['sweep', k], remove: true }));
        line.append(kf, vf, remove);
        axes.append(line);
      }
    }
    axes.querySelectorAll<ValueEl>('vscode-textfield[data-key]').forEach((vf) => {
      if (document.activeElement !== vf) vf.value = display(get(sweep, [vf.dataset.key!]));
    });
    count.textContent = doc.runCount !== undefined ? `${doc.runCount} run${doc.runCount === 1 ? '' : 's'} planned.` : '';
  };
}

// ---- page ------------------------------------------------------------------------------------

const root = document.getElementById('form') ?? document.body;
const toolbar = el('div', 'toolbar');
const title = el('h1', '', 'Experiment');
const startBtn = el('vscode-button', '', 'Start run');
startBtn.addEventListener('click', () => post({ type: 'start' }));
const textBtn = el('vscode-button', '', 'Open as Text');
textBtn.setAttribute('secondary', '');
textBtn.addEventListener('click', () => post({ type: 'openText' }));
toolbar.append(title, el('span', 'spacer'), startBtn, textBtn);
const banner = el('div', 'banner hidden');
const problems = el('ul', 'problems');
problems.setAttribute('aria-label', 'Problems');
root.append(toolbar, banner, problems);

const sectionEls: { el: HTMLElement; when?: (c: Obj) => boolean }[] = [];
const updaters: ((doc: Doc) => void)[] = [];
for (const s of SECTIONS) {
  const section = el('section');
  section.append(el('h2', '', s.title));
  for (const f of s.fields) buildField(section, f);
  if (s.title === 'Evaluation') {
    updaters.push(taskList(section, 'learning', 'How much the run learned on the target domain (paper: HumanEval, GSM8K): use the held-out split of the training data.'));
    updaters.push(taskList(section, 'forgetting', 'How much it forgot of the source domain, relative to step 0 (paper: HellaSwag, WinoGrande, ARC). Without one there is no trade-off to see.'));
  }
  root.append(section);
  sectionEls.push({ el: section, when: s.when });
}
updaters.push(sweepEditor(root));

function render(doc: Doc): void {
  current = doc;
  const cfg = isObj(doc.config) ? doc.config : undefined;
  banner.classList.toggle('hidden', !!cfg);
  banner.textContent = cfg ? '' : 'The YAML does not parse as an experiment: fix it in the text editor (Open as Text); the form follows.';
  title.textContent = cfg && typeof cfg.name === 'string' ? `Experiment: ${cfg.name}` : 'Experiment';
  const errors = doc.diagnostics.filter((d) => d.severity === 'error').length;
  startBtn.textContent = doc.runCount && doc.runCount > 1 ? `Start sweep (${doc.runCount} runs)` : 'Start run';
  const disabled = !doc.trusted || errors > 0 || !cfg;
  startBtn.toggleAttribute('disabled', disabled);
  startBtn.title = !doc.trusted ? 'Restricted Mode: trust this workspace to start runs' : errors ? `Fix ${errors} error(s) first` : '';
  problems.replaceChildren(...doc.diagnostics.map((d) => {
    const li = el('li', d.severity, `line ${d.line}${d.path ? ` · ${d.path}` : ''}: ${d.message}`);
    return li;
  }));
  for (const s of sectionEls) s.el.classList.toggle('hidden', !cfg || (s.when ? !s.when(cfg) : false));
  for (const b of bound) {
    const v = get(cfg, b.spec.path);
    const fallback = get(doc.defaults, b.spec.path);
    if (document.activeElement !== b.control) {
      if (b.spec.kind === 'select') {
        const val = display(v ?? fallback);
        if (val && !b.spec.options?.includes(val)) {
          // A custom list of target modules: the text holds it; the form shows it read-only.
          b.control.setAttribute('disabled', '');
          b.control.title = `Set in the text: ${val}`;
        } else {
          b.control.removeAttribute('disabled');
          b.control.value = val;
        }
      } else {
        b.control.value = display(v);
        b.control.setAttribute('placeholder', fallback === undefined ? '' : `default: ${display(fallback)}`);
      }
    }
    const ds = doc.diagnostics.filter((d) => d.path === b.spec.path.join('.'));
    b.diag.classList.toggle('hidden', ds.length === 0);
    b.diag.className = `diag ${ds.some((d) => d.severity === 'error') ? 'error' : ''} ${ds.length ? '' : 'hidden'}`;
    b.diag.textContent = ds.map((d) => d.message).join(' ');
  }
  for (const u of updaters) u(doc);
}

window.addEventListener('message', (ev: MessageEvent<unknown>) => {
  if (isHostToForm(ev.data)) render(ev.data);
});
post({ type: 'ready' });
