// The trainer's `doctor` JSON as a readable Markdown report, with what to do about what is missing.
// Pure (no vscode import): tested in test/shell/doctorReport.test.ts.

export interface DoctorInfo {
  python?: string;
  executable?: string;
  platform?: string;
  torch?: string | null;
  error?: string;
  cuda?: { available: boolean; version?: string | null; bf16?: boolean };
  gpus?: { index: number; name: string; memory_mb: number; capability?: string }[];
  mps?: boolean;
  cpu_threads?: number;
  /** Total RAM: what a CPU run's memory estimate is checked against. */
  host_memory_mb?: number;
  libraries?: Record<string, string | null>;
}

export const REQUIRED = ['transformers', 'peft', 'safetensors'];

export interface ReportInput {
  info?: DoctorInfo;
  /** Which interpreter, and where it came from. */
  python?: { path: string; source: string };
  /** Candidates that were refused, with why. */
  tried: { path: string; source: string; problem: string }[];
  /** Why doctor itself could not run, if it could not. */
  failure?: string;
}

/** What is missing for training: torch and the required libraries. */
export function missingForTraining(info: DoctorInfo | undefined): string[] {
  if (!info) return ['torch', ...REQUIRED];
  const out: string[] = [];
  if (!info.torch) out.push('torch');
  for (const lib of REQUIRED) if (!info.libraries?.[lib]) out.push(lib);
  return out;
}

const gib = (mb: number): string => `${(mb / 1024).toFixed(1)} GiB`;
const cell = (s: unknown): string => String(s ?? '').replace(/\|/g, '\\|');

export function doctorMarkdown(r: ReportInput): string {
  const out: string[] = ['# Finetune Lab: environment', ''];
  const info = r.info;
  const missing = missingForTraining(info);
  out.push(missing.length ? `**Not ready to train:** missing ${missing.map((m) => `\`${m}\``).join(', ')}.` : '**Ready to train.**', '');
  out.push('| | |', '|---|---|');
  out.push(`| Python | ${cell(info?.python ?? '—')} ${r.python ? `(\`${cell(r.python.path)}\`, from ${cell(r.python.source)})` : ''} |`);
  if (info?.platform) out.push(`| Platform | ${cell(info.platform)} |`);
  out.push(`| PyTorch | ${cell(info?.torch ?? 'not installed')} |`);
  if (info?.cuda) out.push(`| CUDA | ${info.cuda.available ? `available, CUDA ${cell(info.cuda.version ?? '?')}${info.cuda.bf16 ? ', bf16' : ''}` : 'not available (training runs on CPU)'} |`);
  if (info?.mps) out.push('| Apple MPS | available |');
  if (info?.cpu_threads) out.push(`| CPU threads | ${info.cpu_threads} |`);
  if (info?.host_memory_mb) out.push(`| Host RAM | ${gib(info.host_memory_mb)} |`);
  out.push('');
  if (info?.gpus?.length) {
    out.push('## GPUs', '', '| # | Name | Memory | Compute capability |', '|---|---|---|---|');
    for (const g of info.gpus) out.push(`| ${g.index} | ${cell(g.name)} | ${gib(g.memory_mb)} | ${cell(g.capability ?? '')} |`);
    out.push('');
    if (info.gpus.length > 1) out.push(`With ${info.gpus.length} GPUs, set \`finetuneLab.maxConcurrentRuns\` to ${info.gpus.length} to train a sweep's runs side by side, one GPU each.`, '');
  } else if (info?.torch) {
    out.push('No GPU: the built-in models (`builtin:tiny`, `builtin:small`) train on CPU in minutes; `builtin:125m` and up want a GPU.', '');
  }
  if (info?.libraries) {
    out.push('## Libraries', '', '| Library | Version | Needed for |', '|---|---|---|');
    const why: Record<string, string> = {
      transformers: 'every model (required)', peft: 'LoRA (required)', safetensors: 'checkpoints (required)',
      yaml: 'reading config.yaml', numpy: 'spectra', jsonschema: 'validating events in tests', accelerate: 'large Hugging Face models',
      bitsandbytes: '8-bit optimizers (optional)', flash_attn: 'faster attention on GPUs (optional)', onnx: 'ONNX export (playground)',
      onnxruntime: 'ONNX export checks', lion_pytorch: 'optimizer: lion',
    };
    for (const [name, v] of Object.entries(info.libraries)) out.push(`| ${cell(name)} | ${v ? cell(v) : '—'} | ${cell(why[name] ?? '')} |`);
    out.push('');
  }
  if (r.failure) out.push('## Problem', '', '```text', r.failure, '```', '');
  if (info?.error) out.push(`Doctor says: ${info.error}`, '');
  if (r.tried.length) {
    out.push('## Interpreters tried', '');
    for (const t of r.tried) out.push(`- \`${t.path}\` (${t.source}): ${t.problem}`);
    out.push('');
  }
  if (missing.length) {
    out.push(
      '## How to fix', '',
      '1. **Create Python Environment**: makes `.venv` in this workspace and installs the trainer\'s requirements (`torch`, `transformers`, `peft`, `safetensors`) from the Python package index. Run it from the notification or the palette ("Finetune Lab: Create Python Environment (.venv)").',
      '2. Or point the user setting `finetuneLab.pythonPath` at a Python that has them, or select one with the Python extension ("Python: Select Interpreter").',
      '3. For a CUDA build of PyTorch, follow https://pytorch.org/get-started/locally/ inside that environment.',
      '',
    );
  }
  return out.join('\n');
}
