"""Models: every model is a transformers causal LM.

``builtin:<size>`` loads the cached pretrained weights of a built-in model (builtin.py defines
them, pretrain.py trains and caches them); ``hf:<name or folder>`` loads a user's model.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from .builtin import ATTN_IMPLEMENTATION
from .pretrain import pretrained_builtin
from .tokenizer import ByteTokenizer, HFTokenizer

hf_logging.disable_progress_bar()  # train.log is for our progress lines, not tqdm bars


def load_hf(name: str, dtype: torch.dtype = torch.float32):
    """Load ``hf:<name or local folder>`` in ``dtype``: a local folder first, else the Hub (or its
    cache; transformers honours HF_HUB_OFFLINE=1). Returns (model, tokenizer adapter)."""
    source = str(Path(name).expanduser()) if Path(name).expanduser().is_dir() else name
    local_only = os.environ.get("HF_HUB_OFFLINE") == "1" or Path(source).is_dir()
    # Weights only as safetensors, and never a model's own Python code: a folder or a Hub repo is
    # data (pickled .bin weights and trust_remote_code would run what it ships).
    tok = AutoTokenizer.from_pretrained(source, local_files_only=local_only, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(
        source, attn_implementation=ATTN_IMPLEMENTATION, dtype=dtype, local_files_only=local_only,
        use_safetensors=True, trust_remote_code=False)
    return model, HFTokenizer(tok)


def load_base(base: str, pretrain_steps: int | None = None, on_progress=None,
              dtype: torch.dtype = torch.float32):
    """The run's base model and tokenizer.

    Args:
        base: ``builtin:<size>`` or ``hf:<name or folder>`` (schema: model.base).
        pretrain_steps: built-in only; overrides the size's default pretraining steps.
        on_progress: ``f(step, total_steps, loss, cached)`` for pretraining progress.
        dtype: the dtype of the weights (precision.base_dtype): an ``hf:`` model is loaded in it
            directly, so a bf16 base never takes an fp32 copy's host memory.
    Returns:
        (model in ``dtype`` on CPU, tokenizer with encode/decode and special ids)
    """
    kind, _, name = base.partition(":")
    if kind == "hf":
        return load_hf(name, dtype)
    if kind != "builtin":
        raise ValueError(f"model.base must be builtin:<size> or hf:<name>, got '{base}'")
    model = pretrained_builtin(name, steps=pretrain_steps, on_progress=on_progress)  # cached in fp32
    return model.to(dtype), ByteTokenizer()


def count_params(model: torch.nn.Module) -> dict:
    """{"total": all parameters, "trainable": those with requires_grad}."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": int(total), "trainable": int(trainable)}


def enable_gradient_checkpointing(model) -> None:
    """``train.gradient_checkpointing``: transformers' own activation checkpointing of every
    decoder layer, non-reentrant (``torch.utils.checkpoint(use_reentrant=False)``), so each layer's
    activations are recomputed in the backward pass instead of kept. Called on the transformers
    model before PEFT wraps it. For a frozen base (LoRA) transformers also calls
    ``enable_input_require_grads`` (as PEFT advises); non-reentrant checkpointing would not need it.
    Dropout masks are the same in the recomputation (the RNG state is restored), so the losses
    are those of a run without it.
    """
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers 5.x's name; the old one warns
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks of a transformers model (LlamaDecoderLayer, GPT2Block, ...): the
    classes its ``_no_split_modules`` names, which transformers itself keeps whole when it splits
    a model over devices."""
    root = getattr(model, "get_base_model", lambda: model)()
    names = set(getattr(root, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(f"cannot find the decoder layers of {type(root).__name__} (its _no_split_modules "
                         "is empty): launcher.sharding fsdp and FINETUNE_LAB_COMPILE need them")
    return layers


def compile_layers(model) -> None:
    """``FINETUNE_LAB_COMPILE=1`` (experimental, off by default): ``torch.compile`` each decoder
    layer in place, as torchtitan does (one graph per layer class, reused by every layer; works
    under FSDP2 and activation checkpointing). Whether it pays is measured by bench/gpu.sh."""
    for layer in decoder_layers(model):
        layer.compile()
