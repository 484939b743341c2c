"""A model's sizes from its config alone: the model is built on PyTorch's meta device (shapes and
dtypes, no storage), so an ``hf:`` folder holding only config.json is enough, and an 8B model costs
milliseconds and no memory. LoRA is applied to the meta model by PEFT itself, so the adapters
counted are exactly the ones a run trains (the same target resolution, ``all-linear`` included).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch


@dataclass(frozen=True)
class ModelShape:
    """What the memory estimate needs to know about a model.

    Attributes:
        model_type (str): the transformers architecture name (llama, qwen2, gpt2, ...).
        hidden (int): d_model.
        intermediate (int): the MLP's inner width.
        layers (int): decoder layers.
        heads (int): attention (query) heads.
        kv_heads (int): key/value heads (fewer than ``heads`` under grouped-query attention).
        head_dim (int): width of one head.
        vocab (int): rows of the output head.
        params (int): parameters, shared ones (tied embeddings) counted once.
        layer_params (int): parameters of the largest decoder layer (what FSDP gathers at once).
        matmul_params (int): weights of the linear layers, the output head included (what bf16
            autocast keeps a bf16 copy of during the forward and backward).
        head_params (int): parameters of the output head (its gradient is the first one made).
        largest_param (int): elements of the largest single parameter.
    """

    model_type: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    params: int
    layer_params: int
    matmul_params: int
    head_params: int
    largest_param: int

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim


@dataclass(frozen=True)
class LoraShape:
    """The adapters PEFT adds, summed over the whole model.

    Attributes:
        params (int): adapter parameters (what trains).
        adapters (int): adapted modules.
        in_features (int): sum of the adapted modules' input widths (each has its own dropout).
        shared_in_features (int): the same sum counting once the modules that read one input
            (q, k and v read the same normed hidden state; gate and up another).
        ranks (int): sum of the adapters' ranks (the width of lora_A's outputs).
        params_matmul (int): adapter weights that bf16 autocast copies.
    """

    params: int
    adapters: int
    in_features: int
    shared_in_features: int
    ranks: int
    params_matmul: int


def _config_int(config, *names: str, default: int | None = None) -> int:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    if default is None:
        raise ValueError(f"the model config has none of {', '.join(names)}")
    return default


def hf_source(name: str, base_dir: Path | None = None) -> str:
    """``hf:<name or folder>``'s folder when it is one (relative to ``base_dir``, then the
    current folder), else the Hub name as written."""
    for root in ([Path(base_dir)] if base_dir else []) + [Path.cwd()]:
        path = (root / Path(name).expanduser()).resolve()
        if path.is_dir():
            return str(path)
    return name


@lru_cache(maxsize=16)
def load_config(base: str, base_dir: str | None = None):
    """The transformers config of ``model.base`` (built-in: builtin_models.json; ``hf:``: only
    its config.json is read, from a local folder or the Hub cache).

    Raises:
        ValueError: naming model.base when the config cannot be found or read.
    """
    kind, _, name = base.partition(":")
    if kind == "builtin":
        from .builtin import builtin_config
        return builtin_config(name)
    if kind != "hf":
        raise ValueError(f"model.base must be builtin:<size> or hf:<name>, got '{base}'")
    from transformers import AutoConfig
    source = hf_source(name, Path(base_dir) if base_dir else None)
    local_only = os.environ.get("HF_HUB_OFFLINE") == "1" or Path(source).is_dir()
    try:
        return AutoConfig.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as e:
        raise ValueError(f"model.base {base}: cannot read its config.json ({str(e).splitlines()[0]})") from e


def meta_model(config):
    """The causal LM for ``config`` on the meta device: every parameter with its shape and dtype,
    no storage."""
    from transformers import AutoModelForCausalLM
    from .builtin import ATTN_IMPLEMENTATION
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AutoModelForCausalLM.from_config(config, attn_implementation=ATTN_IMPLEMENTATION)


def _decoder_layers(model, layers: int) -> torch.nn.ModuleList | None:
    """The ModuleList of decoder layers: the longest ModuleList whose length is ``layers``."""
    found = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == layers]
    return found[0] if found else None


def _is_linear(module) -> bool:
    return isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"


@lru_cache(maxsize=16)
def model_shape(base: str, base_dir: str | None = None) -> ModelShape:
    """The sizes of ``model.base`` from its config and a meta-device build."""
    config = load_config(base, base_dir)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = _config_int(text, "hidden_size", "n_embd", "d_model")
    heads = _config_int(text, "num_attention_heads", "n_head")
    layers = _config_int(text, "num_hidden_layers", "n_layer")
    model = meta_model(config)
    unique = {id(p): p for p in model.parameters()}
    decoder = _decoder_layers(model, layers)
    layer_params = max((sum(p.numel() for p in layer.parameters()) for layer in decoder), default=0) if decoder else 0
    head = model.get_output_embeddings()
    return ModelShape(
        model_type=getattr(config, "model_type", "unknown"),
        hidden=hidden,
        intermediate=_config_int(text, "intermediate_size", "n_inner", "ffn_dim", default=4 * hidden),
        layers=layers,
        heads=heads,
        kv_heads=_config_int(text, "num_key_value_heads", default=heads),
        head_dim=_config_int(text, "head_dim", default=hidden // heads),
        vocab=_config_int(text, "vocab_size"),
        params=sum(p.numel() for p in unique.values()),
        layer_params=layer_params,
        matmul_params=sum(m.weight.numel() for m in model.modules() if _is_linear(m)),
        head_params=head.weight.numel() if head is not None else 0,
        largest_param=max(p.numel() for p in unique.values()),
    )


def _lora_key(lora_cfg: dict) -> tuple:
    targets = lora_cfg["target_modules"]
    return (lora_cfg["rank"], tuple(targets) if isinstance(targets, list) else targets, lora_cfg["variant"])


def lora_shape(base: str, lora_cfg: dict, base_dir: str | None = None) -> LoraShape:
    """The adapters that ``lora_cfg`` (the run's ``lora`` section) puts on ``model.base``."""
    return _lora_shape(base, base_dir, _lora_key(lora_cfg))


@lru_cache(maxsize=32)
def _lora_shape(base: str, base_dir: str | None, key: tuple) -> LoraShape:
    from peft.tuners.lora import LoraLayer
    from .lora import apply_method
    rank, targets, variant = key
    cfg = {"rank": rank, "alpha": 2 * rank, "dropout": 0.0, "variant": variant,
           "target_modules": list(targets) if isinstance(targets, tuple) else targets}
    model = apply_method(meta_model(load_config(base, base_dir)), "lora", cfg, seed=0)
    adapters = [m for m in model.modules() if isinstance(m, LoraLayer) and m.lora_A]
    shared = set()
    in_features = ranks = 0
    for name, m in model.named_modules():
        if isinstance(m, LoraLayer) and m.lora_A:
            r = m.r[next(iter(m.lora_A))]
            in_features += m.in_features
            ranks += r
            shared.add((name.rsplit(".", 1)[0], m.in_features))  # one input per parent and width
    trainable = [p for p in model.parameters() if p.requires_grad]
    return LoraShape(
        params=sum(p.numel() for p in trainable),
        adapters=len(adapters),
        in_features=in_features,
        shared_in_features=sum(width for _, width in shared),
        ranks=ranks,
        params_matmul=sum(p.numel() for p in trainable if p.dim() == 2),
    )
