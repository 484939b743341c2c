"""The built-in models: Llama configs sized by builtin_models.json over the byte tokenizer.

Imported by model.py (loading a run's base) and pretrain.py (pretraining and caching the
bases); neither imports the other for these definitions.
"""

from __future__ import annotations

import json

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from .paths import PACKAGE_DIR
from .tokenizer import ByteTokenizer

ATTN_IMPLEMENTATION = "sdpa"  # every model the trainer builds or loads (built-in and hf:)


def builtin_spec(size: str) -> dict:
    """The builtin_models.json entry for ``size``.

    Args:
        size (str): tiny | small | 125m | 350m.

    Returns:
        dict: {"model": LlamaConfig keyword arguments, "pretrain": default pretraining settings}.
    """
    specs = json.loads((PACKAGE_DIR / "builtin_models.json").read_text(encoding="utf-8"))
    if size not in specs or size.startswith("_"):
        raise ValueError(f"unknown built-in model '{size}'")
    return specs[size]


def builtin_config(size: str) -> LlamaConfig:
    """A LlamaConfig sized by builtin_models.json, over the byte tokenizer's vocabulary.

    Args:
        size (str): tiny | small | 125m | 350m.

    Returns:
        LlamaConfig: untied embeddings, ``ATTN_IMPLEMENTATION`` attention.
    """
    tok = ByteTokenizer()
    config = LlamaConfig(
        vocab_size=tok.vocab_size, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=False, **builtin_spec(size)["model"])
    config._attn_implementation = ATTN_IMPLEMENTATION
    return config


def build_builtin(size: str, seed: int = 0) -> LlamaForCausalLM:
    """A freshly initialised built-in model.

    Args:
        size (str): tiny | small | 125m | 350m.
        seed (int): seeds torch's global RNG before the weights are initialised.

    Returns:
        LlamaForCausalLM: fp32 on CPU.
    """
    torch.manual_seed(seed)
    return LlamaForCausalLM(builtin_config(size))
