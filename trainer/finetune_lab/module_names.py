"""What a weight matrix is, from its module name: attention or MLP, which block, and the same
name whatever wraps the model (PEFT, DDP, torch.compile) or whichever tool saved it.

Used by the spectra of training runs (spectra.py) and of finetunes made elsewhere
(analyse.py), so a matrix is named and classified the same way in both.
"""

from __future__ import annotations

import re

Kind = str  # "attention" | "mlp"

# Short module names per architecture. GPT-2's c_proj is in both blocks: the parent decides.
_ATTENTION = {"q_proj", "k_proj", "v_proj", "o_proj", "c_attn", "qkv_proj", "query_key_value",
              "out_proj", "Wqkv", "query", "key", "value"}
_MLP = {"gate_proj", "up_proj", "down_proj", "c_fc", "fc1", "fc2", "gate_up_proj", "w1", "w2", "w3",
        "dense_h_to_4h", "dense_4h_to_h"}
# Parent (block) names that say which kind an unlisted leaf belongs to, for architectures whose
# leaf names are their own (DeepSeek's q_a_proj, Mixtral's experts, ...).
_ATTENTION_PARENTS = ("attn", "attention")
_MLP_PARENTS = ("mlp", "ffn", "feed_forward", "experts", "moe")
_LAYER_RE = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer|block)\.(\d+)(?:\.|$)")
# Prefixes that wrappers add in front of the transformers module names: PEFT, DDP, torch.compile.
_WRAPPER_PREFIXES = ("base_model.model.", "module.", "_orig_mod.")


def canonical_name(name: str) -> str:
    """Strip wrapper prefixes (PEFT ``base_model.model.``, DDP ``module.``, torch.compile
    ``_orig_mod.``) so full and LoRA runs name the same matrix the same way, e.g.
    ``model.layers.0.self_attn.q_proj``."""
    changed = True
    while changed:
        changed = False
        for p in _WRAPPER_PREFIXES:
            if name.startswith(p):
                name, changed = name[len(p):], True
    return name


def _kind_from_parents(parents: list[str]) -> Kind | None:
    """The kind named by the nearest parent module (``self_attn``, ``mlp``, ``block_sparse_moe``...)."""
    for parent in reversed(parents):
        low = parent.lower()
        if any(p in low for p in _ATTENTION_PARENTS):
            return "attention"
        if any(p in low for p in _MLP_PARENTS):
            return "mlp"
    return None


def module_kind(name: str) -> Kind | None:
    """``attention`` | ``mlp`` from a module name, or None for anything else (embeddings, head).

    Llama: ``self_attn.{q,k,v,o}_proj`` / ``mlp.{gate,up,down}_proj``; GPT-2: ``attn.c_attn``,
    ``attn.c_proj`` / ``mlp.c_fc``, ``mlp.c_proj``; plus the common names of other families. A
    leaf name not listed takes the kind of its block (``self_attn.q_a_proj`` is attention,
    ``block_sparse_moe.experts.0.w1`` MLP), so adapters of any architecture are classified.
    """
    parts = name.split(".")
    short, parent = parts[-1], (parts[-2] if len(parts) > 1 else "")
    if short == "c_proj" or short == "dense":
        if "attn" in parent or "attention" in parent:
            return "attention"
        if "mlp" in parent or "ffn" in parent or "feed_forward" in parent:
            return "mlp"
        return None
    if short in _ATTENTION:
        return "attention"
    if short in _MLP:
        return "mlp"
    if _LAYER_RE.search(name) is None:
        return None  # outside the blocks: embeddings, the head, a final norm
    return _kind_from_parents(parts[:-1])


def layer_index(name: str) -> int:
    """Block index from ``layers.N.`` (Llama), ``h.N.`` (GPT-2) and similar; 0 if none."""
    m = _LAYER_RE.search(name)
    return int(m.group(1)) if m else 0


def selects(modules: str | list[str], name: str, kind: Kind | None) -> bool:
    """Whether the ``spectra.modules`` setting (all | attention | mlp | [names or regexes])
    selects module ``name`` (canonical). A list item matches a module whose short name equals
    it, whose name ends with ``.item``, or whose full name matches it as a regex."""
    if kind is None:
        return False
    if modules == "all":
        return True
    if modules in ("attention", "mlp"):
        return kind == modules
    for item in modules:
        if name == item or name.endswith("." + item):
            return True
        try:
            if re.fullmatch(item, name):
                return True
        except re.error:
            pass
    return False
