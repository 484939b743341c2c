"""Speed against what users would run instead: Finetune Lab's trainer beside Hugging Face Trainer +
PEFT on the same model, batch, sequence length and precision, measured in the same run and
reported as ratios: tokens/s, MFU and peak memory. On CUDA also the precision modes, gradient
checkpointing, torch.compile (FINETUNE_LAB_COMPILE=1) and, with several GPUs, FSDP vs DDP.

    trainer/bench/gpu.sh                                         # CUDA: every GPU check, one call
    .venv/bin/python trainer/bench/bench_scale.py --device cpu   # the CPU comparison (heavy lock)

Each measurement is its own process, so peak memory and caches never carry over. Ours runs as a
user runs it (``python -m finetune_lab run --run-dir DIR``; tokens/s from its train events);
theirs is ``transformers.Trainer`` on the model our loader returns (``model.load_base``), LoRA
through ``peft.get_peft_model`` with the same rank, alpha, dropout and targets, fed the very
batches our data pipeline makes. Throughput is timed between two synchronised points, after
``warmup`` steps and at the last step, on both sides.

MFU = model FLOPs per second / (GPUs x the GPU's dense bf16 peak). Model FLOPs per token (PaLM,
Chowdhery et al. 2022, appendix B; nanoGPT's estimate_mfu): full finetuning 6·N + 12·L·d·T, N
the parameters that multiply (the input embedding is a lookup: left out unless tied to the
head), L layers, d the attention width, T the sequence length (attention counted without the
causal halving, as both references do). LoRA: the frozen weights need no weight gradient, so
4·N_frozen + 6·N_trainable + 12·L·d·T.

Writes trainer/bench/results/scale-<date>-<device>.json and .md (``--out`` to change).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAINER = HERE.parent
sys.path.insert(0, str(TRAINER))

# Dense bf16 peak (TFLOP/s, no sparsity) by GPU name, from the vendors' data sheets.
PEAK_BF16_TFLOPS = [
    (r"H100.*PCIe", 756.0), (r"H100|H200|GH200", 989.0), (r"B200", 2250.0), (r"A100", 312.0),
    (r"L40S", 362.0), (r"A10G", 125.0), (r"RTX 4090", 165.0), (r"L4\b", 121.0),
]
# Llama shapes measured from a config (random weights). "1b" is Llama-3.2-1B's (1.24B parameters
# with its 128,256 vocabulary and tied embeddings); "100m" a GPT-2-small-sized Llama (100M with a
# 32,000 vocabulary, tied).
LLAMA_SIZES = {
    "100m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=4, max_position_embeddings=4096, vocab_size=32000, tie_word_embeddings=True),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, max_position_embeddings=8192, vocab_size=128256, tie_word_embeddings=True,
               rope_theta=500000.0),
}
LORA = {"rank": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all", "variant": "lora"}
LR = {"lora": 2e-4, "full": 2e-5}


@dataclass
class Case:
    """One measurement."""
    side: str                 # ours | hf
    model: str                # builtin:<size> | llama-<size> (a random-weight Llama config)
    method: str               # lora | full
    precision: str = "bf16-mixed"
    batch: int = 8
    seq: int = 1024
    steps: int = 13
    warmup: int = 3           # steps before the timed window (compilation, allocator warm-up)
    gc: bool = False
    compile: bool = False
    nproc: int = 1
    sharding: str = "none"
    group: str = "compare"    # compare | precision | checkpointing | compile | fsdp

    @property
    def label(self) -> str:
        extra = [self.precision] + (["gc"] if self.gc else []) + (["compile"] if self.compile else [])
        if self.nproc > 1:
            extra.append(f"{self.nproc}x {'fsdp' if self.sharding == 'fsdp' else 'ddp'}")
        return f"{self.side} {self.model} {self.method} {' '.join(extra)}"


@dataclass
class Result:
    case: Case
    ok: bool
    error: str | None = None
    tokens_per_s: float | None = None
    peak_mib: float | None = None
    losses_finite: bool | None = None
    last_loss: float | None = None
    params_total: int | None = None
    params_trainable: int | None = None
    flops_per_token: float | None = None
    mfu: float | None = None
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- plans

def gpu_plan(n_gpus: int) -> list[Case]:
    """Everything for one call on a CUDA machine, most important first (the time budget cuts
    from the end). 350m: batch 16 x 1024; 1B (Llama-3.2-1B's shape, 128k vocabulary): 8 x 1024."""
    big = dict(model="llama-1b", batch=8, seq=1024)
    mid = dict(model="builtin:350m", batch=16, seq=1024)
    plan = []
    for shape in (mid, big):
        for method in ("full", "lora"):
            plan += [Case("ours", method=method, **shape), Case("hf", method=method, **shape)]
    plan += [Case("ours", method="full", precision="fp32", group="precision", **mid),
             Case("ours", method="full", precision="bf16-true", group="precision", **mid),
             Case("ours", method="full", gc=True, group="checkpointing", **big),
             Case("hf", method="full", gc=True, group="checkpointing", **big),
             Case("ours", method="lora", gc=True, group="checkpointing", **big),
             Case("ours", method="full", compile=True, group="compile", **mid)]
    if n_gpus > 1:
        n = min(n_gpus, 8)
        plan += [Case("ours", method="full", nproc=n, sharding=s, group="fsdp", **big) for s in ("none", "fsdp")]
    return plan


def cpu_plan(rounds: int) -> list[Case]:
    """builtin:small (the demo's size) and a ~100M Llama, fp32 (bf16 is slow on most CPUs),
    rounds interleaved so drift on a shared machine hits both sides alike."""
    small = dict(model="builtin:small", batch=16, seq=128, steps=14, warmup=4, precision="fp32")
    big = dict(model="llama-100m", batch=4, seq=128, steps=6, warmup=2, precision="fp32")
    return [Case(side, method=method, **shape)
            for _ in range(rounds) for shape in (small, big) for method in ("full", "lora") for side in ("ours", "hf")]


def smoke_plan() -> list[Case]:
    """The harness itself on builtin:tiny, seconds: what tests/test_bench_scale.py runs."""
    tiny = dict(model="builtin:tiny", batch=2, seq=32, steps=4, warmup=1, precision="fp32")
    return [Case(side, method=method, **tiny) for method in ("full", "lora") for side in ("ours", "hf")]


# ----------------------------------------------------------------------------- models and data

def prepare(cases: list[Case], root: Path, device: str) -> dict:
    """Build what the cases need under ``root``: the random Llama folders, the data file.
    Returns {"bases": {model: base reference}, "data": path, "configs": {model: dims}}."""
    import torch

    from finetune_lab.data import stdlib_documents
    from finetune_lab.offline_models import byte_bpe_tokenizer, save_model_folder

    docs = [text for _, text in stdlib_documents()]
    data, size = root / "data.jsonl", 0
    with open(data, "w", encoding="utf-8") as f:
        for text in docs:  # ~3 MB of Python: several epochs of every case's batches are not needed
            f.write(json.dumps({"text": text}) + "\n")
            size += len(text)
            if size > 3_000_000:
                break
    bases, configs = {}, {}
    tokenizer = None
    for model in sorted({c.model for c in cases}):
        if model.startswith("builtin:"):
            from finetune_lab.builtin import builtin_config
            bases[model] = model
            configs[model] = dims(builtin_config(model.split(":")[1]).to_dict())
            continue
        if tokenizer is None:
            tokenizer = byte_bpe_tokenizer(docs[:50], vocab_size=2000)
        size_name = model.removeprefix("llama-")
        t0 = time.time()
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        folder = save_model_folder(root / model, "llama", tokenizer, dtype=dtype, device=device,
                                   **LLAMA_SIZES[size_name])
        print(f"[bench] built {model} in {time.time() - t0:.0f}s", flush=True)
        bases[model] = f"hf:{folder}"
        configs[model] = dims(json.loads((folder / "config.json").read_text()))
        if device == "cuda":
            torch.cuda.empty_cache()  # the measurements run in other processes: give them the memory
    return {"bases": bases, "data": str(data), "configs": configs}


def dims(config: dict) -> dict:
    """What the FLOPs count needs from a transformers config dict."""
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    return {"layers": config["num_hidden_layers"], "attn_width": heads * head_dim,
            "vocab": config["vocab_size"], "hidden": config["hidden_size"],
            "tied": bool(config.get("tie_word_embeddings", False))}


def flops_per_token(d: dict, params_total: int, params_trainable: int, method: str, seq: int) -> float:
    """Model FLOPs per trained token (module docstring): 6·N (full) or 4·N_frozen + 6·N_trainable
    (LoRA), N without the input embedding's lookup unless it is tied to the head, plus attention's
    12·L·d·T."""
    matmul = params_total - (0 if d["tied"] else d["vocab"] * d["hidden"])
    attention = 12 * d["layers"] * d["attn_width"] * seq
    if method == "full":
        return 6 * matmul + attention
    return 4 * matmul + 2 * params_trainable + attention


def peak_flops(gpu_name: str) -> float | None:
    for pattern, tflops in PEAK_BF16_TFLOPS:
        if re.search(pattern, gpu_name):
            return tflops * 1e12
    return None


# ----------------------------------------------------------------------------- ours

def run_ours(case: Case, env: dict, prepared: dict, work: Path, device: str, timeout: int) -> Result:
    """``python -m finetune_lab run`` on a run folder, as the extension starts it."""
    import yaml
    run_dir = work / re.sub(r"[^A-Za-z0-9.-]+", "-", case.label)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    model = {"base": prepared["bases"][case.model]}
    if case.model.startswith("builtin:"):
        model["pretrain_steps"] = 0  # random weights, as the hf: side: speed does not need pretraining
    launcher = {"kind": "torchrun", "nproc_per_node": case.nproc, "sharding": case.sharding} if case.nproc > 1 else {"kind": "local"}
    cfg = {"name": "bench", "model": model, "data": {"train": prepared["data"], "seq_len": case.seq},
           "method": case.method, "train": {
               "steps": case.steps, "batch_size": case.batch, "lr": LR[case.method], "warmup_steps": 2,
               "precision": case.precision, "gradient_checkpointing": case.gc, "device": device,
               "log_every_steps": case.warmup, "seed": 0},
           "spectra": {"every_steps": 0}, "checkpoint": {"every_steps": 0, "keep_last": 1}, "launcher": launcher}
    if case.method == "lora":
        cfg["lora"] = dict(LORA)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    env = {**env, **({"FINETUNE_LAB_COMPILE": "1"} if case.compile else {})}
    t0 = time.time()
    with open(run_dir / "train.log", "w") as log:
        try:
            proc = subprocess.run([sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(run_dir)],
                                  stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    wall = time.time() - t0
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()] \
        if (run_dir / "events.jsonl").exists() else []
    train = {e["step"]: e for e in events if e["type"] == "train"}
    tail = (run_dir / "train.log").read_text()[-1500:]
    shutil.rmtree(run_dir, ignore_errors=True)  # a full 1B checkpoint is 15 GB: the disk is not the bench's
    if code != 0 or case.steps not in train or case.warmup not in train:
        return Result(case, False, error=f"exit {code}: {tail}", wall_s=wall)
    a, b = train[case.warmup], train[case.steps]
    started = next(e for e in events if e["type"] == "run_started")
    losses = [e["loss"] for e in train.values()]
    return Result(case, True, tokens_per_s=(b["tokens"] - a["tokens"]) / (b["time"] - a["time"]),
                  peak_mib=b["memory_mb"], losses_finite=all(math.isfinite(x) for x in losses),
                  last_loss=b["loss"], params_total=started["params"]["total"],
                  params_trainable=started["params"]["trainable"], wall_s=wall,
                  extra={"precision_reported": started["precision"], "device": started["device"]})


# ----------------------------------------------------------------------------- theirs

def run_hf(case: Case, env: dict, prepared: dict, work: Path, device: str, timeout: int) -> Result:
    """This file's ``worker`` subcommand in a fresh process."""
    spec = {"case": asdict(case), "base": prepared["bases"][case.model], "data": prepared["data"],
            "device": device, "work": str(work)}
    t0 = time.time()
    try:
        proc = subprocess.run([sys.executable, __file__, "worker", json.dumps(spec)], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Result(case, False, error="timeout", wall_s=time.time() - t0)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return Result(case, False, error=f"exit {proc.returncode}: {(proc.stdout + proc.stderr)[-1500:]}",
                      wall_s=time.time() - t0)
    got = json.loads(lines[-1][len("RESULT "):])
    return Result(case, True, wall_s=time.time() - t0, **got)


def hf_worker(spec: dict) -> dict:
    """Hugging Face Trainer + PEFT as its users set it up: bf16=True (autocast over fp32 master
    weights, as our bf16-mixed), the fused AdamW on CUDA, LoRA through get_peft_model over a base
    loaded in bf16. The model and the batches are ours, so both sides train the same thing."""
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from finetune_lab import precision as prec
    from finetune_lab.data import make_batches
    from finetune_lab.model import load_base

    case = Case(**spec["case"])
    device = spec["device"]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    dtype = prec.base_dtype(case.precision, case.method)
    model, tok = load_base(spec["base"], 0 if case.model.startswith("builtin:") else None, None, dtype)
    if case.method == "lora":
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=LORA["rank"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                                 target_modules="all-linear", task_type="CAUSAL_LM"))
    params_total = sum(p.numel() for p in model.parameters())
    params_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    batches = make_batches({"train": spec["data"], "format": "text", "seq_len": case.seq}, tok, case.batch, 0, Path("."))
    rows = [{"input_ids": x, "labels": x} for i in range(case.steps) for x in batches.batch(i)[0]]
    marks: dict[int, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in (case.warmup, case.steps):
                if device == "cuda":
                    torch.cuda.synchronize()
                marks[state.global_step] = time.perf_counter()

    args = TrainingArguments(
        output_dir=str(Path(spec["work"]) / "hf-out"), per_device_train_batch_size=case.batch, max_steps=case.steps,
        learning_rate=LR[case.method], lr_scheduler_type="cosine", warmup_steps=2, weight_decay=0.0, max_grad_norm=1.0,
        bf16=case.precision != "fp32", optim="adamw_torch_fused" if device == "cuda" else "adamw_torch",
        logging_strategy="no", save_strategy="no", report_to="none", remove_unused_columns=False,
        use_cpu=device == "cpu", seed=0, disable_tqdm=True, dataloader_num_workers=0,
        gradient_checkpointing=case.gc, gradient_checkpointing_kwargs={"use_reentrant": False})
    out = Trainer(model=model, args=args, train_dataset=rows, callbacks=[Clock()]).train()
    tokens = case.batch * case.seq * (case.steps - case.warmup)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"tokens_per_s": tokens / (marks[case.steps] - marks[case.warmup]), "peak_mib": peak,
            "losses_finite": math.isfinite(out.training_loss), "last_loss": out.training_loss,
            "params_total": params_total, "params_trainable": params_trainable}


# ----------------------------------------------------------------------------- the run

def environment(device: str) -> dict:
    import torch

    from finetune_lab.doctor import doctor
    info = doctor()
    env = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "device": device,
           "host": platform.node(), "torch": torch.__version__, "libraries": info.get("libraries"),
           "cpu_threads": torch.get_num_threads(), "load": os.getloadavg()}
    if device == "cuda":
        env["gpus"] = info["gpus"]
        for gpu in info["gpus"]:  # the memory estimate reads doctor's memory_mb: check the shape on a real GPU
            assert {"index", "name", "memory_mb", "capability"} <= set(gpu) and gpu["memory_mb"] > 0, gpu
        env["gpu_name"] = info["gpus"][0]["name"]
        env["peak_bf16_flops"] = peak_flops(env["gpu_name"])
    return env


def require_cuda() -> None:
    """Fail at once, saying why, on a machine without a usable CUDA GPU."""
    try:
        import torch
    except ImportError as e:
        sys.exit(f"bench_scale: torch is not importable ({e}): install the trainer's requirements first")
    if not torch.cuda.is_available():
        sys.exit("bench_scale: no CUDA GPU: torch.cuda.is_available() is False "
                 f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}). Run the GPU checks on a "
                 "machine with an NVIDIA GPU and a CUDA build of torch; `--device cpu` runs the CPU comparison.")
    missing = [m for m in ("transformers", "peft", "accelerate") if not _importable(m)]
    if missing:
        sys.exit(f"bench_scale: missing Python packages: {', '.join(missing)} (pip install -r trainer/requirements.txt)")


def _importable(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def run_plan(cases: list[Case], device: str, budget_s: float, timeout: int, threads: int | None) -> tuple[list[Result], dict]:
    work = Path(tempfile.mkdtemp(prefix="ftl-bench-"))
    env = {**os.environ, "PYTHONPATH": str(TRAINER) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "FINETUNE_LAB_CACHE": str(work / "cache"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    t_start = time.time()
    try:
        prepared = prepare(cases, work, device)
        results = []
        for i, case in enumerate(cases):
            elapsed = time.time() - t_start
            if elapsed > budget_s and case.group != "compare":
                results.append(Result(case, False, error=f"skipped: time budget ({budget_s:.0f}s) spent"))
                continue
            print(f"[bench] {i + 1}/{len(cases)} {case.label} ({elapsed:.0f}s in)", flush=True)
            runner = run_ours if case.side == "ours" else run_hf
            r = runner(case, env, prepared, work, device, timeout)
            if r.ok:
                d = prepared["configs"][case.model]
                r.flops_per_token = flops_per_token(d, r.params_total, r.params_trainable, case.method, case.seq)
            print(f"[bench]   {'ok' if r.ok else 'FAILED'} {r.tokens_per_s or 0:,.0f} tok/s, peak "
                  f"{(r.peak_mib or 0) / 1024:.2f} GiB, {r.wall_s:.0f}s" + ("" if r.ok else f": {r.error[-300:]}"),
                  flush=True)
            results.append(r)
        return results, {"wall_s": time.time() - t_start, "configs": prepared["configs"]}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def add_mfu(results: list[Result], peak: float | None) -> None:
    for r in results:
        if r.ok and peak and r.tokens_per_s:
            r.mfu = r.flops_per_token * r.tokens_per_s / (peak * r.case.nproc)


def comparisons(results: list[Result]) -> list[dict]:
    """Ours beside HF for each (model, method, precision, gc) both sides measured; medians over rounds."""
    rows = {}
    for r in results:
        if not r.ok or r.case.nproc > 1 or r.case.compile:
            continue
        key = (r.case.model, r.case.method, r.case.precision, r.case.gc, r.case.batch, r.case.seq)
        rows.setdefault(key, {"ours": [], "hf": []})[r.case.side].append(r)
    out = []
    for (model, method, precision, gc, batch, seq), sides in rows.items():
        if not sides["ours"] or not sides["hf"]:
            continue
        med = {s: {k: statistics.median(getattr(r, k) for r in rs) for k in ("tokens_per_s", "peak_mib")}
               for s, rs in sides.items()}
        mfu = {s: (statistics.median(r.mfu for r in rs) if all(r.mfu for r in rs) else None) for s, rs in sides.items()}
        ratios = [o.tokens_per_s / h.tokens_per_s for o, h in zip(sides["ours"], sides["hf"])]
        out.append({"model": model, "method": method, "precision": precision, "gradient_checkpointing": gc,
                    "batch": batch, "seq": seq, "rounds": len(ratios),
                    "ours_tokens_per_s": med["ours"]["tokens_per_s"], "hf_tokens_per_s": med["hf"]["tokens_per_s"],
                    "ratio": statistics.median(ratios), "ratios": ratios,
                    "ours_mfu": mfu["ours"], "hf_mfu": mfu["hf"],
                    "ours_peak_gib": med["ours"]["peak_mib"] / 1024, "hf_peak_gib": med["hf"]["peak_mib"] / 1024,
                    "memory_ratio": med["ours"]["peak_mib"] / med["hf"]["peak_mib"]})
    return out


def checks(results: list[Result]) -> list[dict]:
    """What must hold beside the speed: every measured loss finite, run_started naming the mode
    asked for, and memory dropping where it should (bf16-true below bf16-mixed, gradient
    checkpointing below none, FSDP below DDP per GPU), FSDP's losses near DDP's."""
    ours = {(r.case.model, r.case.method, r.case.precision, r.case.gc, r.case.nproc, r.case.sharding, r.case.compile): r
            for r in results if r.ok and r.case.side == "ours"}
    out = [{"check": f"{r.case.label}: losses finite", "ok": bool(r.losses_finite)} for r in results if r.ok]
    out += [{"check": f"{r.case.label}: run_started.precision is {r.case.precision}",
             "ok": r.extra.get("precision_reported") == r.case.precision} for r in ours.values()]

    def lower(name, a, b, field="peak_mib"):
        if a in ours and b in ours:
            x, y = getattr(ours[a], field), getattr(ours[b], field)
            out.append({"check": name, "ok": x < y, "detail": f"{x / 1024:.2f} GiB < {y / 1024:.2f} GiB"})

    for model in {r.case.model for r in results}:
        for method in ("full", "lora"):
            lower(f"{model} {method}: bf16-true peak memory below bf16-mixed",
                  (model, method, "bf16-true", False, 1, "none", False), (model, method, "bf16-mixed", False, 1, "none", False))
            lower(f"{model} {method}: gradient checkpointing lowers peak memory",
                  (model, method, "bf16-mixed", True, 1, "none", False), (model, method, "bf16-mixed", False, 1, "none", False))
    for key in [k for k in ours if k[5] == "fsdp"]:
        ddp = key[:5] + ("none", key[6])
        lower(f"{key[0]} {key[1]} x{key[4]}: FSDP peak memory per GPU below DDP's", key, ddp)
        if ddp in ours:
            a, b = ours[key].last_loss, ours[ddp].last_loss
            out.append({"check": f"{key[0]} {key[1]} x{key[4]}: FSDP's last loss near DDP's", "ok": abs(a - b) < 0.05 * abs(b),
                        "detail": f"{a:.4f} vs {b:.4f}"})
    compiled = [k for k in ours if k[6]]
    for key in compiled:
        plain = key[:6] + (False,)
        if plain in ours:
            a, b = ours[key].last_loss, ours[plain].last_loss
            out.append({"check": f"{key[0]} {key[1]}: compiled last loss near uncompiled", "ok": abs(a - b) < 0.02 * abs(b),
                        "detail": f"{a:.4f} vs {b:.4f}; {ours[key].tokens_per_s / ours[plain].tokens_per_s:.2f}x tokens/s"})
    return out


def write_report(results: list[Result], env: dict, meta: dict, out_dir: Path, tag: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", (env.get("gpu_name") or "cpu").lower()).strip("-")
    stem = out_dir / f"scale-{env['date'][:10]}-{slug}{tag}"
    table = comparisons(results)
    payload = {"environment": env, "wall_s": meta["wall_s"], "model_dims": meta["configs"], "comparisons": table,
               "checks": checks(results), "results": [{**asdict(r), "label": r.case.label} for r in results]}
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    stem.with_suffix(".md").write_text(markdown(payload, results, table))
    return stem


def markdown(payload: dict, results: list[Result], table: list[dict]) -> str:
    env = payload["environment"]
    pct = lambda x: "–" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    lines = [f"# Finetune Lab vs Hugging Face Trainer + PEFT, {env['date'][:10]}, "
             f"{env.get('gpu_name') or 'CPU'}", "",
             f"torch {env['torch']}, transformers {env['libraries'].get('transformers')}, peft "
             f"{env['libraries'].get('peft')}, accelerate {env['libraries'].get('accelerate')}; "
             f"{env['cpu_threads']} CPU threads, load {', '.join(f'{x:.1f}' for x in env['load'])}; "
             f"the whole run {payload['wall_s']:.0f}s. Ratio = ours / HF, measured in this run "
             "(median of the rounds' ratios). MFU against "
             + (f"{env['peak_bf16_flops'] / 1e12:.0f} TFLOP/s dense bf16 per GPU." if env.get("peak_bf16_flops")
                else "no peak (CPU or an unknown GPU)."), "",
             "| model | method | precision | batch x seq | ours tok/s | HF tok/s | ratio | ours MFU | HF MFU | ours peak GiB | HF peak GiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in table:
        lines.append(f"| {t['model']} | {t['method']}{' +gc' if t['gradient_checkpointing'] else ''} | {t['precision']} | "
                     f"{t['batch']} x {t['seq']} | {t['ours_tokens_per_s']:,.0f} | {t['hf_tokens_per_s']:,.0f} | "
                     f"**{t['ratio']:.2f}** | {pct(t['ours_mfu'])} | {pct(t['hf_mfu'])} | "
                     f"{t['ours_peak_gib']:.2f} | {t['hf_peak_gib']:.2f} |")
    lines += ["", "Checks:", ""] + [f"- {'ok' if c['ok'] else '**FAILED**'}: {c['check']}"
                                     + (f" ({c['detail']})" if c.get("detail") else "") for c in payload["checks"]]
    lines += ["", "Every measurement:", "", "| case | ok | tok/s | MFU | peak GiB | last loss | wall s | note |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results:
        note = "" if r.ok else (r.error or "").splitlines()[-1][:120].replace("|", "/")
        if r.ok and r.extra.get("precision_reported"):
            note = f"run_started.precision {r.extra['precision_reported']}"
        loss = f"{r.last_loss:.4f}" if r.last_loss is not None else "–"
        lines.append(f"| {r.case.label} | {'yes' if r.ok and r.losses_finite else 'NO'} | "
                     f"{r.tokens_per_s or 0:,.0f} | {pct(r.mfu)} | {(r.peak_mib or 0) / 1024:.2f} | {loss} | "
                     f"{r.wall_s:.0f} | {note} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        print("RESULT " + json.dumps(hf_worker(json.loads(argv[1]))), flush=True)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cuda", "cpu"], required=True)
    p.add_argument("--smoke", action="store_true", help="the harness on builtin:tiny (seconds), for its test")
    p.add_argument("--rounds", type=int, default=1, help="CPU: interleaved rounds")
    p.add_argument("--threads", type=int, default=None, help="OMP threads for every process (CPU: fix it)")
    p.add_argument("--budget", type=float, default=420, help="seconds after which only the ours-vs-HF "
                   "comparisons still run (GPU: the whole call should stay under ~8 minutes)")
    p.add_argument("--timeout", type=int, default=240, help="seconds per measurement")
    p.add_argument("--out", default=str(HERE / "results"))
    a = p.parse_args(argv)
    if a.device == "cuda":
        require_cuda()
        import torch
        cases = gpu_plan(torch.cuda.device_count())
    else:
        cases = smoke_plan() if a.smoke else cpu_plan(a.rounds)
    env = environment(a.device)
    results, meta = run_plan(cases, a.device, a.budget, a.timeout, a.threads)
    add_mfu(results, env.get("peak_bf16_flops"))
    stem = write_report(results, env, meta, Path(a.out), "-smoke" if a.smoke else "")
    print((Path(str(stem) + ".md")).read_text(), flush=True)
    print(f"[bench] wrote {stem}.json and .md", flush=True)
    failed = [r.case.label for r in results if not r.ok and not (r.error or "").startswith("skipped")]
    failed += [c["check"] for c in json.loads(Path(str(stem) + ".json").read_text())["checks"] if not c["ok"]]
    if failed:
        print(f"[bench] FAILED: {failed}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
