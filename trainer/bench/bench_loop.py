"""Instrumented training loop (finetune_lab.train.Recipe) vs a bare PyTorch loop on the same
model, data and optimizer: tokens/s with evals and spectra off. Target: ratio >= 0.97.

    .venv/bin/python trainer/bench/bench_loop.py --model small --method full --steps 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from finetune_lab.data import make_batches  # noqa: E402
from finetune_lab.events import read_events  # noqa: E402
from finetune_lab.lora import apply_method  # noqa: E402
from finetune_lab.pretrain import pretrained_builtin  # noqa: E402
from finetune_lab.tokenizer import ByteTokenizer  # noqa: E402
from finetune_lab.train import run  # noqa: E402

DATA = str(Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "code.jsonl")


def config(a) -> dict:
    return {"name": "bench", "model": {"base": f"builtin:{a.model}", "pretrain_steps": 0},
            "data": {"train": DATA, "seq_len": a.seq}, "method": a.method,
            "lora": {"rank": 16, "dropout": 0.0},
            "train": {"steps": a.steps, "batch_size": a.batch, "warmup_steps": 2, "lr": 1e-3},
            "spectra": {"every_steps": 0}, "checkpoint": {"every_steps": 0, "keep_last": 1}}


def bare(a) -> list[float]:
    """The loop with nothing around it: batch, forward, loss, backward, clip, step."""
    cfg = config(a)
    model = pretrained_builtin(a.model, steps=0)
    model = apply_method(model, a.method, {**cfg["lora"], "alpha": 32, "target_modules": "all", "variant": "lora"}, 0)
    model.train()
    batches = make_batches({"train": DATA, "format": "text", "seq_len": a.seq}, ByteTokenizer(), a.batch, 0, Path("."))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    rates = []
    for step in range(a.steps):
        t0 = time.perf_counter()
        x, y = batches.batch(step)
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        rates.append(x.numel() / (time.perf_counter() - t0))
    return rates


def instrumented(a) -> list[float]:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.yaml").write_text(yaml.safe_dump(config(a)))
        assert run(d) == 0
        return [e["tokens_per_s"] for e in read_events(d) if e["type"] == "train"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="tiny")
    p.add_argument("--method", default="full", choices=["full", "lora"])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--rounds", type=int, default=2, help="alternate bare/instrumented this many times")
    a = p.parse_args()
    os.environ.setdefault("FINETUNE_LAB_CACHE", tempfile.mkdtemp(prefix="ftl-bench-"))
    torch.manual_seed(0)
    b, i = [], []
    for _ in range(a.rounds):  # alternate, so background load hits both alike
        b += bare(a)[3:]  # skip warm-up steps
        i += instrumented(a)[3:]
    mb, mi = statistics.median(b), statistics.median(i)
    print(f"model={a.model} method={a.method} batch={a.batch} seq={a.seq} steps={a.steps} "
          f"threads={torch.get_num_threads()}")
    print(f"bare         {mb:10,.0f} tok/s (median)")
    print(f"instrumented {mi:10,.0f} tok/s (median)")
    print(f"ratio        {mi / mb:.3f}")


if __name__ == "__main__":
    main()
