"""Per-stage cost of the demo on this machine, measured through the trainer's own modules.

    .venv/bin/python bench/demo/bench_steps.py [size] [seq_len] [batch]

Prints tokens/s of a training step (full and LoRA r4/16/64, all modules), the cost of one
evaluation (loss task, N sequences) and of one spectra pass, with the load average beside each.
Random-init weights: speed does not depend on what the model knows.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "trainer"))
import torch
import torch.nn.functional as F

from finetune_lab.model import build_builtin
from finetune_lab.lora import apply_method
from finetune_lab.optim import build_optimizer
from finetune_lab.spectra import SpectraTracker
from finetune_lab.evals import Evaluator
from finetune_lab.tokenizer import ByteTokenizer

size = sys.argv[1] if len(sys.argv) > 1 else "small"
T = int(sys.argv[2]) if len(sys.argv) > 2 else 128
B = int(sys.argv[3]) if len(sys.argv) > 3 else 16
load = lambda: open("/proc/loadavg").read().split()[0]


def steps_per_s(method, rank=16, n=12):
    model = build_builtin(size)
    lora = {"rank": rank, "alpha": 2 * rank, "dropout": 0.05, "target_modules": "all", "variant": "lora"}
    model = apply_method(model, method, lora if method == "lora" else None, 0)
    model.train()
    opt = build_optimizer([p for p in model.parameters() if p.requires_grad], "adamw", 1e-3, 0.0, torch.device("cpu"))
    x = torch.randint(0, 256, (B, T))
    for i in range(n + 2):
        if i == 2:
            t0 = time.perf_counter()
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), x.view(-1))
        loss.backward()
        opt.step(); opt.zero_grad(set_to_none=True)
    dt = (time.perf_counter() - t0) / n
    return model, dt


for method, rank in [("full", 0), ("lora", 4), ("lora", 16), ("lora", 64)]:
    model, dt = steps_per_s(method, rank or 16)
    print(f"{size} T{T} B{B} {method}{'-r%d' % rank if rank else ''}: {dt*1000:.0f} ms/step, {B*T/dt:,.0f} tok/s (load {load()})", flush=True)
    tracker = SpectraTracker(model, method, {"modules": "all"}, {"variant": "lora"}, 0)
    t0 = time.perf_counter(); tracker.compute(model, 1); dts = time.perf_counter() - t0
    print(f"   spectra pass ({len(tracker.targets)} matrices): {dts:.2f}s (load {load()})", flush=True)

for n in (32, 64):
    ev = Evaluator({"learning": [{"name": "code", "type": "loss", "data": "builtin:python-stdlib#heldout", "max_examples": n}],
                    "forgetting": [{"name": "english", "type": "loss", "data": "builtin:brown#heldout", "max_examples": n}]},
                   ByteTokenizer(), T, torch.device("cpu"), Path("."))
    model = build_builtin(size).eval()
    ev.evaluate(model, 0)
    t0 = time.perf_counter(); ev.evaluate(model, 1); dte = time.perf_counter() - t0
    print(f"eval code+english, {n} seqs each: {dte:.2f}s (load {load()})", flush=True)
