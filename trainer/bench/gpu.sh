#!/usr/bin/env bash
# Every GPU check of the trainer in one call (issue 12), for whoever has a CUDA machine; nothing to
# edit. Under ~8 minutes on one H100/H200:
#   - Finetune Lab beside Hugging Face Trainer + PEFT on builtin:350m and a ~1B Llama config (random
#     weights, no download), LoRA and full, bf16: tokens/s, MFU, peak memory, ratios measured here;
#   - precision modes (fp32, bf16-mixed, bf16-true) and gradient checkpointing: losses finite, memory;
#   - torch.compile per decoder layer (FINETUNE_LAB_COMPILE=1) against the same run without it;
#   - with more than one GPU, FSDP2 vs DDP over NCCL.
# Writes trainer/bench/results/scale-<date>-<gpu>.json and .md. Without CUDA it stops at once, saying why.
#
#   trainer/bench/gpu.sh            (or: npm run bench -- --gpu)
#   FINETUNE_LAB_PYTHON=/path/to/python trainer/bench/gpu.sh   # another interpreter than .venv's
set -euo pipefail
cd "$(dirname "$0")/../.."

py="${FINETUNE_LAB_PYTHON:-}"
if [ -z "$py" ]; then
  if .venv/bin/python -c "" 2>/dev/null; then py=.venv/bin/python; else py=$(command -v python3 || true); fi
fi
if [ -z "$py" ]; then
  echo "gpu.sh: no Python found: create the venv (README: Install) or set FINETUNE_LAB_PYTHON" >&2
  exit 1
fi
echo "gpu.sh: $("$py" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
# Fail early and loudly: bench_scale.py checks CUDA and the packages before building anything.
exec env PYTHONPATH="$PWD/trainer${PYTHONPATH:+:$PYTHONPATH}" "$py" trainer/bench/bench_scale.py --device cuda "$@"
