// ONNX exports of a run (exports/<label>/export.json, schemas/export.schema.json): finding them,
// validating each manifest, and the trainer command that writes them. No vscode, no onnxruntime.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import exportSchema from '../../schemas/export.schema.json';
import type { ExportManifest } from './generated/export';
import { trainerModuleCommand, type TrainerCommand } from './trainerLaunch';

export type { ExportManifest };

/** A manifest that validated, with its files resolved to absolute paths. */
export interface ExportInfo {
  manifest: ExportManifest;
  /** The export.json file. */
  file: string;
  /** The ONNX graph beside it. */
  onnx: string;
  /** The run folder (two levels above the manifest). */
  runDir: string;
}

/** A manifest that could not be used: which file, which field, what is wrong. */
export class ExportManifestError extends Error {
  constructor(readonly file: string, readonly field: string, readonly problem: string) {
    super(`${file}: ${field ? `${field} ` : ''}${problem}`);
    this.name = 'ExportManifestError';
  }
}

let validator: ValidateFunction<ExportManifest> | undefined;
/** The export schema is draft 2020-12 (the others are draft-07): its own Ajv. */
export function validateExportManifest(): ValidateFunction<ExportManifest> {
  validator ??= new Ajv2020({ allErrors: true, strict: false }).compile<ExportManifest>(exportSchema as object);
  return validator;
}

/** '/tokenizer/eos_token_id' → 'tokenizer.eos_token_id'. */
const dotted = (pointer: string): string => pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).join('.');

/** An Ajv error as (field, problem), in words that name the field. */
export function describeError(e: ErrorObject): { field: string; problem: string } {
  const at = dotted(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required': return { field: [at, String(p.missingProperty)].filter(Boolean).join('.'), problem: 'is missing' };
    case 'additionalProperties': return { field: [at, String(p.additionalProperty)].filter(Boolean).join('.'), problem: 'is not a known field' };
    case 'const': return { field: at, problem: `must be ${JSON.stringify(p.allowedValue)}` };
    case 'enum': return { field: at, problem: `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    default: return { field: at || '(top level)', problem: e.message ?? 'is not valid' };
  }
}

/** Reads and validates one export.json; throws ExportManifestError naming the file and the field. */
export function readExport(file: string): ExportInfo {
  let raw: string;
  try { raw = fs.readFileSync(file, 'utf8'); } catch (e) { throw new ExportManifestError(file, '', `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  let data: unknown;
  try { data = JSON.parse(raw); } catch (e) { throw new ExportManifestError(file, '', `is not JSON (${(e as Error).message})`); }
  const v = validateExportManifest();
  if (!v(data)) {
    const { field, problem } = describeError(v.errors![0]);
    throw new ExportManifestError(file, field, problem);
  }
  const manifest = data;
  const dir = path.dirname(file);
  const onnx = path.resolve(dir, manifest.onnx);
  if (path.relative(dir, onnx).startsWith('..')) throw new ExportManifestError(file, 'onnx', 'must name a file inside the export folder');
  if (!fs.existsSync(onnx)) throw new ExportManifestError(file, 'onnx', `names ${manifest.onnx}, which does not exist`);
  if (manifest.tokenizer.kind !== 'bytes') throw new ExportManifestError(file, 'tokenizer.kind', `is ${manifest.tokenizer.kind}: the playground reads only byte-tokenizer exports (the built-in models) for now`);
  return { manifest, file, onnx, runDir: path.dirname(path.dirname(dir)) };
}

/** Every exports/<label>/export.json of a run: the valid ones (base first, then by step) and the errors. */
export function findExports(runDir: string): { exports: ExportInfo[]; errors: ExportManifestError[] } {
  const root = path.join(runDir, 'exports');
  let names: string[] = [];
  try { names = fs.readdirSync(root); } catch { return { exports: [], errors: [] }; }
  const exports: ExportInfo[] = [];
  const errors: ExportManifestError[] = [];
  for (const name of names.sort()) {
    const file = path.join(root, name, 'export.json');
    if (!fs.existsSync(file)) continue; // an export in progress, or another folder
    try { exports.push(readExport(file)); } catch (e) {
      if (e instanceof ExportManifestError) errors.push(e); else throw e;
    }
  }
  const rank = (e: ExportInfo): number => (e.manifest.kind === 'base' ? -1 : e.manifest.step ?? 0);
  exports.sort((a, b) => rank(a) - rank(b));
  return { exports, errors };
}

/** The newest export of a finetuned checkpoint, if any. */
export const latestTuned = (exports: readonly ExportInfo[]): ExportInfo | undefined =>
  [...exports].reverse().find((e) => e.manifest.kind !== 'base');

/** "base", "LoRA r16", "full": how the playground names what the weights are. */
export function kindLabel(m: ExportManifest): string {
  if (m.kind === 'lora') return m.lora?.rank ? `LoRA r${m.lora.rank}` : 'LoRA';
  return m.kind;
}

// ---- the trainer's export-onnx ------------------------------------------------------------------

/** `<python> -m finetune_lab export-onnx --run-dir DIR [--checkpoint base|step-NNNNNN]` (argv, no shell). */
export function exportCommand(python: string, trainerDir: string, runDir: string, checkpoint?: string, env: NodeJS.ProcessEnv = process.env): TrainerCommand {
  const args = ['export-onnx', '--run-dir', path.resolve(runDir), ...(checkpoint ? ['--checkpoint', checkpoint] : [])];
  return trainerModuleCommand(python, trainerDir, args, runDir, env);
}

/** Runs a command to its end; rejects with its stderr's last lines when it fails. */
export function runToEnd(cmd: TrainerCommand, signal?: AbortSignal): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    let stdout = '', stderr = '';
    const child = spawn(cmd.command, cmd.args, { cwd: cmd.cwd, env: cmd.env, stdio: ['ignore', 'pipe', 'pipe'], signal });
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); if (stderr.length > 200_000) stderr = stderr.slice(-100_000); });
    child.once('error', (e) => reject(new Error(`could not run ${cmd.command}: ${e.message}`)));
    child.once('close', (code, sig) => {
      if (code === 0) return resolve({ stdout, stderr });
      const tail = stderr.trim().split('\n').slice(-15).join('\n');
      reject(new Error(`${path.basename(cmd.command)} ${cmd.args.slice(0, 3).join(' ')} exited ${code ?? sig}${tail ? `:\n${tail}` : ''}`));
    });
  });
}
