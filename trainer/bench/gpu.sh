#!/usr/bin/env bash
# Every GPU check of the trainer in one call (issue 12), for whoever has a CUDA machine; nothing to
# edit. Under ~8 minutes on one H100/H200:
#   - Finetune Lab beside Hugging Face Trainer + PEFT on builtin:350m and a ~1B Llama config (random
#     weights, no download), LoRA and full, bf16: tokens/s, MFU, peak memory, ratios measured here;
#   - precision modes (fp32, bf16-mixed, bf16-true) and gradient checkpointing: losses finite, memory;
#   - torch.compile per decoder layer (FINETUNE_LAB_COMPILE=1) against the same run without it;
#   - with more than one GPU, FSDP2 vs DDP over NCCL;
#   - the memory estimate against measured peaks (memory_check.py: builtin:350m and the ~1B config,
#     LoRA and full, bf16-mixed, gradient checkpointing off and on);
#   - one spectrum pass's decompositions on real 7B-size matrices on the GPU (bench_spectra_7b.py).
# Writes trainer/bench/results/scale-<date>-<gpu>.{json,md}, memory_cuda.{json,md} and prints the
# spectra timings. Each part has its own time limit, so the whole call stays under ~9.5 minutes and a
# part that overruns leaves the others' results. Without CUDA it stops at once, saying why.
#
#   trainer/bench/gpu.sh                  (or: npm run bench -- --gpu)
#   trainer/bench/gpu.sh scale            only the speed comparison (also: memory, spectra)
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
if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu.sh: no CUDA GPU: torch.cuda.is_available() is False here; run it on a machine with one (on the CPU: python trainer/bench/bench_scale.py --device cpu)" >&2
  exit 1
fi
export PYTHONPATH="$PWD/trainer${PYTHONPATH:+:$PYTHONPATH}"
parts=("$@"); [ ${#parts[@]} -eq 0 ] && parts=(scale memory spectra)
status=0
for part in "${parts[@]}"; do
  echo "=== gpu.sh: $part ($(date -u +%H:%M:%S))"
  case "$part" in
    # bench_scale.py checks the packages before building anything; --budget leaves time for the rest
    scale) timeout 330 "$py" trainer/bench/bench_scale.py --device cuda --budget 270 || status=1 ;;
    memory) timeout 170 "$py" trainer/bench/memory_check.py --device cuda --models builtin:350m llama1b \
              --methods full lora --precisions bf16-mixed --checkpointing off on --batch 8 --seq 1024 \
              --out trainer/bench/results/memory_cuda || status=1 ;;
    spectra) timeout 60 "$py" trainer/bench/bench_spectra_7b.py --device cuda || status=1 ;;
    *) echo "gpu.sh: unknown part '$part' (scale | memory | spectra)" >&2; exit 2 ;;
  esac
done
exit $status
