"""Instrumented training loop (finetune_lab.train.Recipe) vs a bare PyTorch loop on the same
model, data and optimizer: tokens/s with evals and spectra off. Target: ratio >= 0.97.
Both sides are timed step end to step end (median gap), rounds interleaved, threads fixed.

    .venv/bin/python trainer/bench/bench_loop.py --model small --method full --steps 20 --rounds 4
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from finetune_lab.data import make_batches  # noqa: E402
from finetune_lab.events import read_events  # noqa: E402
from finetune_lab.lora import apply_method  # noqa: E402
from finetune_lab.pretrain import pretrained_builtin  # noqa: E402
from finetune_lab.tokenizer import ByteTokenizer  # noqa: E402
from finetune_lab import train as train_module  # noqa: E402
from finetune_lab.events import EventWriter  # noqa: E402
from finetune_lab.train import run  # noqa: E402

DATA = str(Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "code.jsonl")


def config(a) -> dict:
    return {"name": "bench", "model": {"base": f"builtin:{a.model}", "pretrain_steps": 0},
            "data": {"train": DATA, "seq_len": a.seq}, "method": a.method,
            "lora": {"rank": 16, "dropout": 0.0},
            "train": {"steps": a.steps, "batch_size": a.batch, "warmup_steps": 2, "lr": 1e-3, "device": "cpu",
                      "log_every_steps": 1},
            "spectra": {"every_steps": 0}, "checkpoint": {"every_steps": 0, "keep_last": 1}}


def clocks() -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds): CPU time counts the work done, so it is far
    less disturbed than wall time by other processes on a shared machine."""
    return time.time(), time.process_time()


def bare(a) -> list[tuple[float, float]]:
    """The loop with nothing around it: batch, forward, loss, backward, clip, step. Returns the
    clocks at the end of each step."""
    cfg = config(a)
    model = pretrained_builtin(a.model, steps=0)
    model = apply_method(model, a.method, {**cfg["lora"], "alpha": 32, "target_modules": "all", "variant": "lora"}, 0)
    model.train()
    batches = make_batches({"train": DATA, "format": "text", "seq_len": a.seq}, ByteTokenizer(), a.batch, 0, Path("."))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    ends = []
    for step in range(a.steps):
        x, y = batches.batch(step)
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        ends.append(clocks())
    return ends


class ClockedEvents(EventWriter):
    """The recipe's EventWriter, also noting the clocks as each ``train`` event is written."""
    ends: list = []

    def emit(self, type: str, **fields) -> dict:
        if type == "train":
            ClockedEvents.ends.append(clocks())
        return super().emit(type, **fields)


def instrumented(a) -> list[tuple[float, float]]:
    """finetune_lab.train.run on the same model and data; a step ends when its ``train`` event
    (logged every step) is written, so the gaps include everything the recipe does per step
    (event line, status, stdout, eval/spectra/checkpoint checks)."""
    ClockedEvents.ends = []
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.yaml").write_text(yaml.safe_dump(config(a)))
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), \
                mock.patch.object(train_module, "EventWriter", ClockedEvents):
            assert run(d) == 0
        assert len(read_events(d)) and len(ClockedEvents.ends) == a.steps
    return ClockedEvents.ends


def rate(ends: list[tuple[float, float]], tokens_per_step: int, skip: int) -> tuple[float, float]:
    """Median tokens/s over the step-to-step gaps after ``skip`` warm-up steps: (wall, CPU)."""
    out = []
    for k in (0, 1):
        gaps = [b[k] - a[k] for a, b in zip(ends[skip:], ends[skip + 1:])]
        out.append(tokens_per_step / statistics.median(gaps))
    return out[0], out[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="tiny")
    p.add_argument("--method", default="full", choices=["full", "lora"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--rounds", type=int, default=4, help="bare/instrumented pairs, order alternating")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (fixed for both sides)")
    a = p.parse_args()
    os.environ.setdefault("FINETUNE_LAB_CACHE", tempfile.mkdtemp(prefix="ftl-bench-"))
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    tokens, skip = a.batch * a.seq, 2
    res = {"bare": [], "instrumented": []}
    ratios = {"wall": [], "cpu": []}
    for r in range(a.rounds):  # interleaved, order alternating, so background load hits both alike
        sides = [("bare", bare), ("instrumented", instrumented)]
        got = dict((name, rate(fn(a), tokens, skip)) for name, fn in (sides if r % 2 == 0 else sides[::-1]))
        for name in res:
            res[name].append(got[name])
        for k, clock in enumerate(ratios):
            ratios[clock].append(got["instrumented"][k] / got["bare"][k])
        print(f"round {r + 1}: wall tok/s bare {got['bare'][0]:8,.0f} instrumented {got['instrumented'][0]:8,.0f} "
              f"ratio {ratios['wall'][-1]:.3f} | CPU-time ratio {ratios['cpu'][-1]:.3f} | "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"model={a.model} method={a.method} batch={a.batch} seq={a.seq} steps={a.steps} rounds={a.rounds} "
          f"threads={torch.get_num_threads()} load={' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for k, clock in enumerate(ratios):
        b = statistics.median(x[k] for x in res["bare"])
        i = statistics.median(x[k] for x in res["instrumented"])
        rs = ratios[clock]
        print(f"{clock:4s}: bare {b:8,.0f} tok/s, instrumented {i:8,.0f} tok/s (medians of rounds); "
              f"ratio {statistics.median(rs):.3f} (median of per-round ratios; min {min(rs):.3f}, max {max(rs):.3f})")


if __name__ == "__main__":
    main()
