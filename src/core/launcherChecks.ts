// Launcher settings the schema cannot check alone: a multi-machine torchrun needs a rendezvous
// endpoint and a node rank below nnodes; Slurm's and torchrun's keys do nothing under another kind,
// which is worth a warning (a `partition:` under `kind: local` trains here, not on the cluster);
// FSDP sharding needs several processes and full finetuning.
import type { ExperimentConfig } from './generated/experiment';
import type { Diagnostic } from './diagnostics';
import { rangeOf, type YamlSource } from './yamlPositions';

/** Keys that only one launcher kind reads. */
export const SLURM_ONLY = ['partition', 'account', 'qos', 'nodes', 'gpus_per_node', 'cpus_per_task', 'mem', 'time', 'constraint', 'extra_sbatch', 'setup', 'port', 'array', 'max_running'] as const;
export const TORCHRUN_ONLY = ['nnodes', 'node_rank', 'rdzv_endpoint'] as const;

export function launcherDiagnostics(raw: Record<string, unknown>, value: ExperimentConfig, src: YamlSource): Diagnostic[] {
  const written = (raw.launcher && typeof raw.launcher === 'object' ? raw.launcher : {}) as Record<string, unknown>;
  const l = value.launcher ?? {};
  const kind = l.kind ?? 'local';
  const out: Diagnostic[] = [];
  const at = (key: string, on: 'key' | 'value' = 'value') => rangeOf(src, key ? ['launcher', key] : ['launcher'], on);
  if (kind === 'torchrun' && (l.nnodes ?? 1) > 1) {
    if (!l.rdzv_endpoint) {
      out.push({
        severity: 'error', ...at('nnodes'), path: 'launcher.rdzv_endpoint', code: 'launcher-rdzv-endpoint',
        message: `launcher.nnodes is ${l.nnodes}: set launcher.rdzv_endpoint to host:port where the ${l.nnodes} machines meet (node 0's address, e.g. node001:29500)`,
      });
    }
    if ((l.node_rank ?? 0) >= (l.nnodes ?? 1)) {
      out.push({
        severity: 'error', ...at('node_rank'), path: 'launcher.node_rank', code: 'launcher-node-rank',
        message: `launcher.node_rank ${l.node_rank} must be below launcher.nnodes (${l.nnodes}): ranks are 0..${(l.nnodes ?? 1) - 1}`,
      });
    }
  }
  const unused = (keys: readonly string[], owner: string): void => {
    for (const k of keys) {
      if (!(k in written)) continue;
      out.push({
        severity: 'warning', ...at(k, 'key'), path: `launcher.${k}`, code: 'launcher-unused',
        message: `launcher.${k} is only read when launcher.kind is ${owner} (it is ${kind}): it changes nothing here`,
      });
    }
  };
  if (kind !== 'slurm') unused(SLURM_ONLY, 'slurm');
  if (kind !== 'torchrun') unused(TORCHRUN_ONLY, 'torchrun');
  out.push(...shardingDiagnostics(value, kind, at));
  return out;
}

/** launcher.sharding: fsdp shards over torchrun's processes (Slurm runs torchrun too), and shards
 * full finetuning only: LoRA's frozen bf16 base is replicated (DDP). The trainer applies the same
 * rules (trainer/finetune_lab/config.py, check_sharding). */
function shardingDiagnostics(value: ExperimentConfig, kind: string, at: (key: string, on?: 'key' | 'value') => ReturnType<typeof rangeOf>): Diagnostic[] {
  if (value.launcher?.sharding !== 'fsdp') return [];
  const out: Diagnostic[] = [];
  if (kind === 'local') {
    out.push({
      severity: 'error', ...at('sharding'), path: 'launcher.sharding', code: 'launcher-sharding-local',
      message: 'launcher.sharding fsdp shards the model over several processes: set launcher.kind to torchrun (with nproc_per_node) or slurm, or sharding to none',
    });
  }
  const swept = (value.sweep as Record<string, unknown> | undefined)?.method;
  const methods = Array.isArray(swept) ? swept : [value.method];
  if (methods.includes('lora')) {
    out.push({
      severity: 'error', ...at('sharding'), path: 'launcher.sharding', code: 'launcher-sharding-lora',
      message: `launcher.sharding fsdp is for full finetuning; LoRA${Array.isArray(swept) ? ' (swept in method)' : ''} keeps its frozen base in bf16 on every GPU (DDP): set sharding to none, or method to full`,
    });
  }
  for (const role of ['learning', 'forgetting'] as const) {
    (value.evals?.[role] ?? []).forEach((task, i) => {
      if (!UNSHARDED_EVAL_TYPES.has(task.type)) return;
      out.push({
        severity: 'error', ...at('sharding'), path: `evals.${role}[${i}].type`, code: 'launcher-sharding-eval',
        message: `evals.${role}[${i}] (${task.type}) does not run on an FSDP-sharded model yet: use launcher.sharding none, or score the saved checkpoint with finetune-lab analyse`,
      });
    });
  }
  return out;
}

/** Eval types that need the whole model in one process: lm-eval drives the model itself, and
 * kl_to_base keeps the base's top-k in one process (the trainer's config.py, UNSHARDED_EVAL_TYPES). */
const UNSHARDED_EVAL_TYPES = new Set<string>(['lm_eval', 'kl_to_base']);
