"""One-time source-domain pretraining of the built-in bases, cached on disk.

A finetuning run needs a base that knows something to forget: each built-in size is trained
on builtin:brown (train split) once, then every run loads it. The cache key hashes the model
config and every pretraining setting, the folder is written atomically (temp dir + rename),
and a lock file makes parallel runs wait for the first one instead of pretraining twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import torch
from transformers import LlamaForCausalLM

from . import data
from .builtin import ATTN_IMPLEMENTATION, build_builtin, builtin_config, builtin_spec
from .losses import lm_loss
from .optim import build_optimizer, get_lr, set_lr
from .paths import cache_dir
from .tokenizer import ByteTokenizer


def pretrain_settings(size: str, steps: int | None = None) -> dict:
    settings = dict(builtin_spec(size)["pretrain"], data="builtin:brown", data_version=data.DATA_VERSION)
    if steps is not None:
        settings["steps"] = steps
    return settings


def cache_key(size: str, settings: dict) -> str:
    blob = json.dumps({"model": builtin_config(size).to_dict(), "pretrain": settings},
                      sort_keys=True, default=str)
    return f"{size}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def pretrained_builtin(size: str, steps: int | None = None, on_progress=None,
                       device: torch.device | None = None) -> LlamaForCausalLM:
    """The cached pretrained built-in base (pretraining it first if needed).

    Args:
        size: tiny | small | 125m | 350m.
        steps: override of the size's default pretraining steps (model.pretrain_steps).
        on_progress: ``f(step, total_steps, loss, cached)``, called during pretraining and once
            with cached=True when the weights came from the cache.
        device: where to pretrain (default: CUDA if available, else CPU).
    Returns:
        the model in fp32 on CPU.
    """
    settings = pretrain_settings(size, steps)
    folder = cache_dir() / "bases" / cache_key(size, settings)
    folder.parent.mkdir(parents=True, exist_ok=True)
    cached = (folder / "model.safetensors").exists()
    if not cached:
        with open(folder.parent / f"{folder.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be pretraining this base
            cached = (folder / "model.safetensors").exists()
            if not cached:
                model = _pretrain(size, settings, on_progress, device)
                tmp = folder.parent / f".tmp-{folder.name}-{os.getpid()}"
                shutil.rmtree(tmp, ignore_errors=True)
                model.save_pretrained(tmp)
                (tmp / "pretrain.json").write_text(json.dumps(settings, indent=2))
                os.rename(tmp, folder)
    model = LlamaForCausalLM.from_pretrained(folder, attn_implementation=ATTN_IMPLEMENTATION, torch_dtype=torch.float32)
    if cached and on_progress is not None:
        on_progress(settings["steps"], settings["steps"], None, True)
    return model


def _pretrain(size: str, s: dict, on_progress, device) -> LlamaForCausalLM:
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_builtin(size, seed=s["seed"]).to(device)
    if s["steps"] == 0:
        return model.cpu()
    texts = data.load_texts("builtin:brown", Path("."))
    batches = data.PackedText(texts, ByteTokenizer(), s["seq_len"], s["batch_size"], s["seed"])
    opt = build_optimizer(model.parameters(), "adamw", s["lr"], 0.1, device)
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    report_every = max(1, s["steps"] // 50)
    t0 = time.time()
    for step in range(s["steps"]):
        set_lr(opt, get_lr(step, s["lr"], s["steps"], s["warmup_steps"], "cosine"))
        x, y = (t.to(device) for t in batches.batch(step))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(input_ids=x).logits
        loss = lm_loss(logits, y)  # packed text: every target is a token id, none ignored
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if (step + 1) % report_every == 0 or step + 1 == s["steps"]:
            value = loss.item()
            print(f"pretrain {size} step {step + 1}/{s['steps']} loss {value:.4f} "
                  f"({time.time() - t0:.0f}s)", flush=True)
            if on_progress is not None:
                on_progress(step + 1, s["steps"], value, False)
    return model.cpu()


def pretrained_builtin_path(size: str, steps: int | None = None) -> str:
    """Warm the cache for ``size`` (CLI ``pretrain``); returns the cached folder."""
    pretrained_builtin(size, steps=steps)
    return str(cache_dir() / "bases" / cache_key(size, pretrain_settings(size, steps)))
