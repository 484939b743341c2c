"""Models: every model is a transformers causal LM.

``builtin:<size>`` loads the cached pretrained weights of a built-in model (builtin.py defines
them, pretrain.py trains and caches them); ``hf:<name or folder>`` loads a user's model.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from .builtin import ATTN_IMPLEMENTATION
from .pretrain import pretrained_builtin
from .tokenizer import ByteTokenizer, HFTokenizer

hf_logging.disable_progress_bar()  # train.log is for our progress lines, not tqdm bars


def load_hf(name: str):
    """Load ``hf:<name or local folder>``: a local folder first, else the Hub (or its cache;
    transformers honours HF_HUB_OFFLINE=1). Returns (model, tokenizer adapter)."""
    source = str(Path(name).expanduser()) if Path(name).expanduser().is_dir() else name
    local_only = os.environ.get("HF_HUB_OFFLINE") == "1" or Path(source).is_dir()
    # Weights only as safetensors, and never a model's own Python code: a folder or a Hub repo is
    # data (pickled .bin weights and trust_remote_code would run what it ships).
    tok = AutoTokenizer.from_pretrained(source, local_files_only=local_only, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(
        source, attn_implementation=ATTN_IMPLEMENTATION, torch_dtype=torch.float32,
        local_files_only=local_only, use_safetensors=True, trust_remote_code=False)
    return model, HFTokenizer(tok)


def load_base(base: str, pretrain_steps: int | None = None, on_progress=None):
    """The run's base model and tokenizer.

    Args:
        base: ``builtin:<size>`` or ``hf:<name or folder>`` (schema: model.base).
        pretrain_steps: built-in only; overrides the size's default pretraining steps.
        on_progress: ``f(step, total_steps, loss, cached)`` for pretraining progress.
    Returns:
        (model in fp32 on CPU, tokenizer with encode/decode and special ids)
    """
    kind, _, name = base.partition(":")
    if kind == "hf":
        return load_hf(name)
    if kind != "builtin":
        raise ValueError(f"model.base must be builtin:<size> or hf:<name>, got '{base}'")
    return pretrained_builtin(name, steps=pretrain_steps, on_progress=on_progress), ByteTokenizer()


def count_params(model: torch.nn.Module) -> dict:
    """{"total": all parameters, "trainable": those with requires_grad}."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": int(total), "trainable": int(trainable)}
