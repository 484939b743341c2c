"""What one spectrum pass costs at 7B, from real-size matrices timed on this machine's CPU.

    flock /tmp/finetune-heavy.lock .venv/bin/python trainer/bench/bench_spectra_7b.py [--threads N] [--device cuda]

Times, per shape (the faster of two tries), the decompositions a pass runs per matrix (spectra_math.matrix_spectrum):
``svdvals`` of ΔW (full finetuning only; LoRA's σ come from an r×r QR shortcut), the reduced SVD of
W_tuned and of W_base (intruders: their left singular vectors). Also one whole ``matrix_spectrum``
of a 4096×4096 full-finetuning change (to check that the parts add up) and the peak resident memory
one matrix's analysis adds (the high-water mark, reset first), in a fresh process per shape.
Then extrapolates — extrapolated, not measured — to the 224 matrices of a 7B Llama-architecture
model: Mistral-7B / Llama-3-8B (per block 2×4096², 2×1024×4096 (k, v: GQA), 2×14336×4096 (gate,
up), 1×4096×14336 (down)) and Llama-2-7B (4×4096², 3×11008-wide, scaled from the 14336 time by
the SVD's O(m·n²) cost).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TRAINER = Path(__file__).resolve().parents[1]

ONE = r"""
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
from finetune_lab.spectra_math import matrix_spectrum
torch.set_num_threads(int(sys.argv[4]))
out, inp, whole, dev = int(sys.argv[2]), int(sys.argv[3]), sys.argv[5] == "1", torch.device(sys.argv[6])
g = torch.Generator().manual_seed(0)
w_base = (0.02 * torch.randn(out, inp, generator=g)).to(dev)
w_tuned = w_base + 1e-3 * torch.randn(out, inp, generator=g).to(dev)
torch.linalg.svd(torch.randn(64, 32, device=dev), full_matrices=False)  # LAPACK / cuSOLVER loaded before the mark is reset
sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
if dev.type == "cuda":
    torch.cuda.reset_peak_memory_stats()
kib = lambda f: int(next(l for l in open("/proc/self/status") if l.startswith(f)).split()[1])
open("/proc/self/clear_refs", "w").write("5")
rss = kib("VmRSS")
r = {}
def best(fn, repeats=2):  # the faster of two: on a shared machine the slower one measures the neighbours
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); sync(); times.append(time.perf_counter() - t)
    return min(times)
r["svdvals_s"] = best(lambda: torch.linalg.svdvals(w_tuned - w_base))
r["svd_s"] = best(lambda: torch.linalg.svd(w_tuned, full_matrices=False))
if whole:
    t = time.perf_counter(); matrix_spectrum(w_base, w_tuned=w_tuned, top_k=64); sync(); r["matrix_spectrum_s"] = time.perf_counter() - t
r["peak_extra_mib"] = (torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else (kib("VmHWM") - rss) / 1024)
r["matrix_mib"] = out * inp * 4 / 2**20
print(json.dumps(r))
"""


def measure(out: int, inp: int, threads: int, whole: bool, device: str) -> dict:
    p = subprocess.run([sys.executable, "-c", ONE, str(TRAINER), str(out), str(inp), str(threads), "1" if whole else "0", device],
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="cpu", help="cpu | cuda (on CUDA the peak is torch's allocated device memory)")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"{args.device}: torch threads {args.threads}, {os.cpu_count()} CPUs, load average {load:.1f} at start")
    shapes = [(4096, 4096), (1024, 4096), (14336, 4096), (4096, 14336)]
    r = {}
    for out, inp in shapes:
        r[(out, inp)] = m = measure(out, inp, args.threads, (out, inp) == (4096, 4096), args.device)
        print(f"{out:>5}x{inp:<5}  svdvals {m['svdvals_s']:7.1f} s  svd {m['svd_s']:7.1f} s"
              + (f"  matrix_spectrum (full) {m['matrix_spectrum_s']:7.1f} s" if "matrix_spectrum_s" in m else "")
              + f"  peak +{m['peak_extra_mib']:.0f} MiB (one fp32 matrix {m['matrix_mib']:.0f} MiB)")
    full = {k: v["svdvals_s"] + 2 * v["svd_s"] for k, v in r.items()}   # ΔW σ + SVD of W_tuned and W_base
    lora = {k: 2 * v["svd_s"] for k, v in r.items()}                     # σ by QR (ms); the two SVDs remain
    layer = [(4096, 4096)] * 2 + [(1024, 4096)] * 2 + [(14336, 4096)] * 2 + [(4096, 14336)]
    per_pass_full = 32 * sum(full[s] for s in layer)
    per_pass_lora = 32 * sum(lora[s] for s in layer)
    # Llama-2-7B: 4x4096^2 and 3 matrices 11008 wide, scaled from 14336 by the SVD's m*n^2 cost (n = 4096).
    scale = 11008 / 14336
    l2_full = 32 * (4 * full[(4096, 4096)] + 2 * scale * full[(14336, 4096)] + scale * full[(4096, 14336)])
    l2_lora = 32 * (4 * lora[(4096, 4096)] + 2 * scale * lora[(14336, 4096)] + scale * lora[(4096, 14336)])
    peak = max(v["peak_extra_mib"] for v in r.values())
    print(f"extrapolated, 224 matrices, this {args.device}: Mistral-7B/Llama-3-8B full {per_pass_full / 60:.0f} min, LoRA {per_pass_lora / 60:.0f} min;"
          f" Llama-2-7B full {l2_full / 60:.0f} min, LoRA {l2_lora / 60:.0f} min; memory: one matrix at a time, peak +{peak:.0f} MiB")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
