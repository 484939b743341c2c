"""LoRA through PEFT, and the choice of which modules it adapts.

LoRA (Hu et al. 2021, arXiv 2106.09685) adds W0x + s·B·A·x with s = alpha/r, or alpha/sqrt(r)
for rsLoRA (Kalajdzievski 2023, arXiv 2312.03732); DoRA (Liu et al. 2024, arXiv 2402.09353)
also learns a per-column magnitude. PEFT initialises B = 0, so step 0 is exactly the base.
"""

from __future__ import annotations

import re
import warnings

import torch
from peft import LoraConfig, get_peft_model

from .module_patterns import REGEX_CHARS

# Leaf names by architecture family: (attention, mlp). GPT-2 reuses c_proj in both, so its
# entries carry the parent (attn./mlp.) and are matched on the full module name.
MODULE_TABLE = {
    "llama": (["q_proj", "k_proj", "v_proj", "o_proj"], ["gate_proj", "up_proj", "down_proj"]),
    "phi3": (["qkv_proj", "o_proj"], ["gate_up_proj", "down_proj"]),  # fused q/k/v and gate/up
    "gpt2": (["attn.c_attn", "attn.c_proj"], ["mlp.c_fc", "mlp.c_proj"]),
    "gpt_neox": (["attention.query_key_value", "attention.dense"], ["mlp.dense_h_to_4h", "mlp.dense_4h_to_h"]),
    "opt": (["q_proj", "k_proj", "v_proj", "out_proj"], ["fc1", "fc2"]),
    "phi": (["q_proj", "k_proj", "v_proj", "dense"], ["fc1", "fc2"]),
}


def _linear_names(model: torch.nn.Module) -> list[str]:
    """Names of the linear-like leaf modules (nn.Linear, GPT-2's Conv1D) except the output head."""
    names = []
    for name, module in model.named_modules():
        is_linear = isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"
        if is_linear and not name.endswith(("lm_head", "embed_out", "output")):
            names.append(name)
    return names


def _matches(name: str, suffix: str) -> bool:
    return name == suffix or name.endswith("." + suffix)


def resolve_targets(model: torch.nn.Module, target) -> str | list[str]:
    """The config's target_modules as PEFT's ``target_modules``.

    Args:
        target: "all" (PEFT's "all-linear": every linear layer in the blocks, not the head),
            "attention" | "mlp" (resolved from module names with MODULE_TABLE), or a list of
            names (suffix match, PEFT's rule) and/or regexes (full match on module names).
    Returns:
        "all-linear", a list of leaf names, or one regex string (PEFT full-matches it).
    Raises:
        ValueError when nothing in the model matches.
    """
    if target == "all":
        return "all-linear"
    names = _linear_names(model)
    if target in ("attention", "mlp"):
        index = 0 if target == "attention" else 1
        # the family that names the most modules: Phi-3 shares o_proj/down_proj with Llama, so
        # the first family with any hit would miss its fused qkv_proj/gate_up_proj
        hits, wanted = max((([n for n in names if any(_matches(n, w) for w in attn_mlp[index])], attn_mlp[index])
                            for attn_mlp in MODULE_TABLE.values()), key=lambda found: len(found[0]))
        if hits:
            if all("." not in w for w in wanted):
                return sorted({w for w in wanted if any(_matches(n, w) for n in hits)})
            return "^(" + "|".join(re.escape(n) for n in hits) + ")$"
        raise ValueError(f"lora.target_modules: cannot find {target} modules in this architecture "
                         f"(linear layers: {', '.join(names[:8])}...); list them by name instead")
    target = list(target)
    if not any(REGEX_CHARS & set(t) for t in target):
        if not any(_matches(n, t) for n in names for t in target):
            raise ValueError(f"lora.target_modules: no module matches {target}")
        return target
    # a regex must match the end of the module name, from the start or after a dot
    pattern = "|".join(f"(?:.*\\.)?(?:{t if REGEX_CHARS & set(t) else re.escape(t)})" for t in target)
    if not any(re.fullmatch(pattern, n) for n in names):
        raise ValueError(f"lora.target_modules: no module matches {target}")
    return pattern


def lora_config(model: torch.nn.Module, lora_cfg: dict) -> LoraConfig:
    """PEFT LoraConfig from the run's ``lora`` section (rank, alpha, dropout, targets, variant)."""
    return LoraConfig(
        r=lora_cfg["rank"], lora_alpha=lora_cfg["alpha"], lora_dropout=lora_cfg["dropout"],
        target_modules=resolve_targets(model, lora_cfg["target_modules"]),
        use_rslora=lora_cfg["variant"] == "rslora", use_dora=lora_cfg["variant"] == "dora",
        # GPT-2's Conv1D stores [in, out]: PEFT needs to know (it would set this itself, with a warning)
        fan_in_fan_out=any(type(m).__name__ == "Conv1D" for m in model.modules()),
        bias="none", task_type="CAUSAL_LM")


def apply_method(model: torch.nn.Module, method: str, lora_cfg: dict | None, seed: int):
    """Wrap ``model`` for the run: a PEFT LoRA model (only adapters train) or, for full
    finetuning, the model itself with every parameter trainable."""
    if method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    torch.manual_seed(seed)  # lora_A's Kaiming init; resume then loads the trained values
    with warnings.catch_warnings():  # transformers 5 deprecation noise from inside peft
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, lora_config(model, lora_cfg))
