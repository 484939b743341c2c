"""The memory estimate (finetune_lab/memory.py) against what the real trainer uses.

Each case trains a few steps with ``finetune_lab.train.Recipe`` (the trainer itself, in a child
process of its own) on a model with random weights and measures, per part:

- weights: the parameters' bytes after set-up;
- gradients: the gradients' bytes just before the optimizer step;
- optimizer: the optimizer states' bytes after training;
- activations: what autograd saved in one micro-batch's forward (``saved_tensors_hooks``,
  storages counted once, parameters left out; autocast's weight copies included, as the
  estimate counts them with the weights: compared with saved activations + those copies);
- total: the peak of all tensor memory during training. CUDA: ``torch.cuda.max_memory_allocated``.
  CPU: torch's own accounting of CPU tensor allocations (``torch.profiler`` with
  ``profile_memory=True``: the allocator's running total), plus the weights allocated before.

The final checkpoint is not written (it is not training memory). Run from the repo root:

    .venv/bin/python trainer/bench/memory_check.py --device cpu --models llama100m \\
        --methods full lora --precisions fp32 --batch 4 --seq 256 --out trainer/bench/results/memory_cpu

    # CUDA (trainer/bench/gpu.sh): builtin:350m and a ~1B Llama, bf16 modes, checkpointing off/on
    .venv/bin/python trainer/bench/memory_check.py --device cuda --models builtin:350m llama1b \\
        --methods full lora --precisions bf16-mixed bf16-true --checkpointing off on \\
        --batch 8 --seq 1024 --out trainer/bench/results/memory_cuda

Writes OUT.json (every case, estimate and measurement in GiB, error in %) and OUT.md (a table).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TRAINER = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRAINER))

GIB = 2 ** 30
# Llama-architecture configs with random weights (grouped-query attention, untied head).
MODELS = {
    "llama100m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                      num_key_value_heads=4, vocab_size=16384, max_position_embeddings=4096),
    "llama1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                    num_key_value_heads=4, vocab_size=32000, max_position_embeddings=4096),  # TinyLlama-1.1B's shape
}
PARTS = ("weights", "gradients", "optimizer", "activations", "total")


def model_base(name: str, work: Path) -> str:
    """``model.base`` for a case: a built-in (random weights: pretrain_steps 0) or one of MODELS
    saved once as an hf: folder under ``work``."""
    if name.startswith("builtin:"):
        return name
    folder = work / name
    if not (folder / "config.json").exists():
        from finetune_lab.offline_models import save_model_folder
        save_model_folder(folder, "llama", tie_word_embeddings=False, **MODELS[name])
    return f"hf:{folder}"


def data_file(work: Path) -> Path:
    """A JSONL of text rows: plenty of tokens for a few batches."""
    path = work / "text.jsonl"
    if not path.exists():
        from finetune_lab.offline_models import SAMPLE_TEXT
        rows = [{"text": " ".join(SAMPLE_TEXT[(i + j) % len(SAMPLE_TEXT)] for j in range(8))} for i in range(3000)]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def case_config(case: dict, base: str, data: Path) -> dict:
    return {
        "name": "memory-check", "model": {"base": base, **({"pretrain_steps": 0} if base.startswith("builtin:") else {})},
        "data": {"train": str(data), "format": "text", "seq_len": case["seq"]},
        "method": case["method"], "lora": {"rank": 16, "target_modules": "all"},
        "train": {"steps": case["steps"], "batch_size": case["batch"], "grad_accum": case.get("accum", 1),
                  "warmup_steps": 0, "lr": 1e-4,
                  "device": case["device"], "precision": case["precision"],
                  "gradient_checkpointing": case["checkpointing"], "log_every_steps": 1},
        "spectra": {"every_steps": 0}, "checkpoint": {"every_steps": 0, "keep_last": 1},
    }


def _cpu_peak(prof) -> int:
    """Peak of the CPU allocator's running total over a profile, relative to its start."""
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(trace))
        events = [e["args"] for e in json.loads(trace.read_text())["traceEvents"]
                  if e.get("name") == "[memory]" and e.get("args", {}).get("Device Type") == 0]
    if not events:
        return 0
    start = events[0]["Total Allocated"] - events[0]["Bytes"]
    return max(e["Total Allocated"] for e in events) - start


def measure(run_dir: Path) -> dict:
    """Train the run in ``run_dir`` with the trainer's Recipe and measure each part, in bytes."""
    import torch
    from finetune_lab.train import Recipe

    recipe = Recipe(run_dir)
    recipe.setup()
    recipe._checkpoint = lambda: None  # the final checkpoint is not training memory
    model, device = recipe.model, recipe.device
    params = list({id(p): p for p in model.parameters()}.values())
    param_ptrs = {p.untyped_storage().data_ptr() for p in params}
    weights = sum(p.nbytes for p in params) + sum(b.nbytes for b in model.buffers())
    seen_max = {"activations": 0, "gradients": 0}

    loss_step = recipe._loss_step

    def measured_loss_step(x, y):
        saved: dict[int, int] = {}

        def pack(t):
            storage = t.untyped_storage()
            if storage.data_ptr() not in param_ptrs:
                saved.setdefault(storage.data_ptr(), storage.nbytes())
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = loss_step(x, y)
        seen_max["activations"] = max(seen_max["activations"], sum(saved.values()))
        return loss
    recipe._loss_step = measured_loss_step

    step = recipe.optimizer.step

    def measured_step(*args, **kwargs):
        grads = sum(p.grad.nbytes for p in params if p.grad is not None)
        seen_max["gradients"] = max(seen_max["gradients"], grads)
        return step(*args, **kwargs)
    recipe.optimizer.step = measured_step

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        recipe.train()
        torch.cuda.synchronize()
        total = torch.cuda.max_memory_allocated()
    else:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            recipe.train()
        total = weights + _cpu_peak(prof)
    optimizer = sum(t.nbytes for state in recipe.optimizer.state.values()
                    for t in state.values() if torch.is_tensor(t))
    recipe.cleanup("completed")
    return {"weights": weights, "gradients": seen_max["gradients"], "optimizer": optimizer,
            "activations": seen_max["activations"], "total": total}


def estimate(config: dict, case: dict) -> dict:
    """The estimate's parts in bytes, with the saved activations (what the measurement sees:
    activations without the backward's working set) next to the estimate's activations."""
    from finetune_lab.config import resolve
    from finetune_lab.estimate import estimate_bytes, plan_for
    from finetune_lab.memory import saved_activation_bytes
    from finetune_lab.model_shape import lora_shape, model_shape
    cfg = resolve(config)
    plan = plan_for(cfg, case["device"] == "cuda")
    parts = estimate_bytes(cfg, plan, None)
    shape = model_shape(cfg["model"]["base"])
    lora = lora_shape(cfg["model"]["base"], cfg["lora"]) if plan.method == "lora" else None
    # the measurement's activations include autocast's weight copies (saved tensors too)
    copies = parts["copies"]
    parts["saved"] = saved_activation_bytes(shape, lora, plan) + copies
    return parts


def run_case(case: dict, work: Path) -> dict:
    """One case in this process (called in a child: a fresh allocator and peak per case)."""
    base = model_base(case["model"], work)
    config = case_config(case, base, data_file(work))
    run_dir = Path(tempfile.mkdtemp(prefix="memcheck-", dir=work))
    import yaml
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    measured = measure(run_dir)
    est = estimate(config, case)
    return {"case": case, "estimate": {k: est[k] for k in PARTS} | {"saved_activations": est["saved"]},
            "measured": measured}


def error_pct(est: float, measured: float) -> float | None:
    return round(100 * (est - measured) / measured, 1) if measured else None


def summarise(result: dict) -> dict:
    """GiB and errors: activations compare the saved tensors (estimate's saved part)."""
    est, meas = result["estimate"], result["measured"]
    compare = {k: (est[k], meas[k]) for k in ("weights", "gradients", "optimizer", "total")}
    compare["activations"] = (est["saved_activations"], meas["activations"])
    return {**result, "gib": {k: {"estimate": round(e / GIB, 3), "measured": round(m / GIB, 3),
                                  "error_pct": error_pct(e, m)} for k, (e, m) in compare.items()},
            "estimate_activations_gib": round(est["activations"] / GIB, 3)}


def markdown(results: list[dict], header: str) -> str:
    lines = [header, "",
             "| model | method | precision | ckpt | batch × seq × accum | " + " | ".join(
                 f"{p} est / measured GiB (err)" for p in PARTS) + " |",
             "|---|---|---|---|---|" + "---|" * len(PARTS)]
    for r in results:
        c = r["case"]
        if "error" in r:
            lines.append(f"| {c['model']} | {c['method']} | {c['precision']} | {c['checkpointing']} | "
                         f"{c['batch']} × {c['seq']} × {c.get('accum', 1)} | failed: {r['error']} |")
            continue
        cells = []
        for p in PARTS:
            g = r["gib"][p]
            err = "n/a" if g["error_pct"] is None else f"{g['error_pct']:+.1f}%"
            cells.append(f"{g['estimate']:.3f} / {g['measured']:.3f} ({err})")
        lines.append(f"| {c['model']} | {c['method']} | {c['precision']} | {'on' if c['checkpointing'] else 'off'} | "
                     f"{c['batch']} × {c['seq']} × {c.get('accum', 1)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--models", nargs="+", default=["llama100m"], help=f"builtin:<size> or one of {', '.join(MODELS)}")
    ap.add_argument("--methods", nargs="+", default=["full", "lora"])
    ap.add_argument("--precisions", nargs="+", default=["fp32"])
    ap.add_argument("--checkpointing", nargs="+", choices=["off", "on"], default=["off"])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=2, help="optimizer steps (the second has the optimizer states)")
    ap.add_argument("--grad-accum", type=int, nargs="+", default=[1], help="micro-batches per step (above 1 the "
                    "gradients stay while the next micro-batch's activations are made)")
    ap.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    ap.add_argument("--work", default=None, help="folder for models and runs (default: a temporary one)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a case as JSON: run it here
    a = ap.parse_args(argv)
    work = Path(a.work or tempfile.mkdtemp(prefix="memcheck-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FINETUNE_LAB_CACHE", str(work / "cache"))
    if a.one:
        print("RESULT " + json.dumps(run_case(json.loads(a.one), work)), flush=True)
        return 0
    results = []
    for model in a.models:
        for method in a.methods:
            for precision in a.precisions:
                for ckpt, accum in ((c, g) for c in a.checkpointing for g in a.grad_accum):
                    case = {"model": model, "method": method, "precision": precision, "checkpointing": ckpt == "on",
                            "batch": a.batch, "seq": a.seq, "accum": accum, "steps": a.steps, "device": a.device}
                    proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(case), "--work", str(work)],
                                          capture_output=True, text=True)
                    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
                    if line is None:
                        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                        results.append({"case": case, "error": tail[0][:200]})
                    else:
                        results.append(summarise(json.loads(line[len("RESULT "):])))
                    print(markdown(results[-1:], "").strip().splitlines()[-1], flush=True)
    import torch
    device_name = torch.cuda.get_device_name() if a.device == "cuda" else f"CPU ({os.cpu_count()} cores)"
    header = (f"## {datetime.date.today().isoformat()}, {device_name}, torch {torch.__version__}\n\n"
              f"Command: `{' '.join(['.venv/bin/python', 'trainer/bench/memory_check.py'] + (argv or sys.argv[1:]))}`")
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps({"device": device_name, "torch": torch.__version__,
                                                        "date": datetime.date.today().isoformat(),
                                                        "results": results}, indent=1) + "\n")
        out.with_suffix(".md").write_text(markdown(results, header))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
