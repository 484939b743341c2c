"""Benchmark: LoRA ΔW singular values by the QR shortcut vs dense svdvals of s·B·A.

    .venv/bin/python trainer/bench/bench_spectra.py [--out 1024 --in 1024 --rank 16 --repeats 15]
    .venv/bin/python trainer/bench/bench_spectra.py --tracker   # SpectraTracker.compute, builtin:small shape

Prints median times (ms), the ratio, and the largest relative difference of the values; with
--tracker, the time of one ``compute`` over all 28 matrices of a builtin:small-shaped Llama
(d 128, MLP 512, 4 layers) in full and LoRA r16 mode.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from finetune_lab.spectra import SpectraTracker, lora_delta_singular_values  # noqa: E402


def bench_tracker(repeats: int) -> None:
    import peft
    import transformers

    cfg = transformers.LlamaConfig(vocab_size=259, hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                                   num_attention_heads=4, num_key_value_heads=4)
    spectra_cfg = {"modules": "all", "top_k": 64, "intruder_k": 10, "intruder_epsilon": 0.5}
    for method in ("full", "lora"):
        torch.manual_seed(0)
        model = transformers.LlamaForCausalLM(cfg)
        if method == "lora":
            model = peft.get_peft_model(model, peft.LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
        t0 = time.perf_counter()
        tracker = SpectraTracker(model, method, spectra_cfg, {"rank": 16}, seed=0)
        setup_ms = (time.perf_counter() - t0) * 1e3
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.requires_grad and p.dim() == 2:
                    p.add_(0.01 * torch.randn_like(p))
        ms = median_ms(lambda: tracker.compute(model, 1), repeats)
        ev = tracker.compute(model, 1)
        print(f"tracker {method:4s}: {len(ev)} matrices, setup {setup_ms:7.1f} ms, compute median {ms:7.1f} ms")


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (kernel selection, allocations)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=int, default=1024)
    ap.add_argument("--in", dest="in_", type=int, default=1024)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--tracker", action="store_true", help="time SpectraTracker.compute instead")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tracker:
        return bench_tracker(args.repeats)
    g = torch.Generator().manual_seed(0)
    A = torch.randn(args.rank, args.in_, generator=g) / args.in_ ** 0.5
    B = torch.randn(args.out, args.rank, generator=g) * 0.01
    scale = 2.0  # alpha / r with alpha = 2r

    qr_ms = median_ms(lambda: lora_delta_singular_values(A, B, scale), args.repeats)
    dense_ms = median_ms(lambda: torch.linalg.svdvals(scale * (B @ A)), args.repeats)
    qr = lora_delta_singular_values(A, B, scale)
    dense = torch.linalg.svdvals(scale * (B @ A))[: qr.numel()]
    err = float(((qr - dense).abs() / dense.abs().clamp_min(1e-30)).max())
    print(f"shape {args.out}x{args.in_} rank {args.rank}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.repeats} repeats")
    print(f"QR shortcut   median {qr_ms:9.3f} ms")
    print(f"dense svdvals median {dense_ms:9.3f} ms  (forming B@A included)")
    print(f"speed-up {dense_ms / qr_ms:.0f}x; max relative difference of the {qr.numel()} values {err:.1e}")


if __name__ == "__main__":
    main()
