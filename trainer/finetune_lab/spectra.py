"""Spectra of the weight change ΔW = W_tuned − W_base, per target matrix.

What "LoRA Learns Less and Forgets Less" (Biderman et al., TMLR 2024, arXiv 2405.09673, §5)
measured: full finetuning's ΔW is high rank (rank90, the rank that explains 90% of its
σ² "variance", is 10–100× typical LoRA ranks), LoRA's is at most r. And what Shuttleworth et
al. (arXiv 2410.21228) added: LoRA's W_tuned has "intruder dimensions", top singular vectors
almost orthogonal to every singular vector of W_base.

All matrices here are in the [out_features, in_features] orientation of ``nn.Linear.weight``
(GPT-2's ``Conv1D`` stores [in, out] and is transposed on read). Every SVD runs in fp32:
``torch.linalg.svd``/``svdvals`` do not support fp16/bf16 (peft's ``lora/intruders.py``
upcasts for the same reason), and σ² sums over thousands of values want the precision.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
from torch import nn

Kind = str  # "attention" | "mlp"

# Short module names per architecture. GPT-2's c_proj is in both blocks: the parent decides.
_ATTENTION = {"q_proj", "k_proj", "v_proj", "o_proj", "c_attn", "qkv_proj", "query_key_value",
              "out_proj", "Wqkv", "query", "key", "value"}
_MLP = {"gate_proj", "up_proj", "down_proj", "c_fc", "fc1", "fc2", "gate_up_proj", "w1", "w2", "w3",
        "dense_h_to_4h", "dense_4h_to_h"}
_LAYER_RE = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer|block)\.(\d+)(?:\.|$)")
# Prefixes that wrappers add in front of the transformers module names: PEFT, DDP, torch.compile.
_WRAPPER_PREFIXES = ("base_model.model.", "module.", "_orig_mod.")


# --------------------------------------------------------------------------- pure functions

def delta_weight_full(w_base: torch.Tensor, w_tuned: torch.Tensor) -> torch.Tensor:
    """Weight change of a fully finetuned (or DoRA-merged) matrix, in fp32.

    Args:
        w_base (torch.Tensor): base weight, shape [out, in], any float dtype, any device.
        w_tuned (torch.Tensor): tuned weight, same shape.

    Returns:
        torch.Tensor: ΔW = W_tuned − W_base, shape [out, in], fp32 on ``w_tuned``'s device.
    """
    if w_base.shape != w_tuned.shape:
        raise ValueError(f"shape mismatch: base {tuple(w_base.shape)} vs tuned {tuple(w_tuned.shape)}")
    return w_tuned.detach().float() - w_base.detach().to(w_tuned.device).float()


def lora_delta_singular_values(A: torch.Tensor, B: torch.Tensor, scale: float) -> torch.Tensor:
    """Singular values of LoRA's ΔW = scale·B·A without forming the [out, in] matrix.

    With the reduced QR factorisations B = Q_B R_B and Aᵀ = Q_A R_A, ΔW = scale·Q_B (R_B R_Aᵀ) Q_Aᵀ,
    and Q_B, Q_A have orthonormal columns, so σ(ΔW) = σ(scale·R_B R_Aᵀ): an r×r SVD instead of an
    out×in one, and exact. ``scale`` is PEFT's ``scaling[adapter]``: alpha/r, or
    alpha/√r for rsLoRA (Kalajdzievski 2023, arXiv 2312.03732).

    Args:
        A (torch.Tensor): ``lora_A.weight``, shape [r, in].
        B (torch.Tensor): ``lora_B.weight``, shape [out, r].
        scale (float): the LoRA scale s.

    Returns:
        torch.Tensor: the min(r, out, in) singular values of ΔW, descending, fp32 (the rest are 0).
    """
    if A.dim() != 2 or B.dim() != 2 or A.shape[0] != B.shape[1]:
        raise ValueError(f"expected A [r, in] and B [out, r], got {tuple(A.shape)} and {tuple(B.shape)}")
    # fp32: torch.linalg.qr/svdvals have no half-precision kernels.
    _, r_b = torch.linalg.qr(B.detach().float(), mode="reduced")      # [min(out, r), r]
    _, r_a = torch.linalg.qr(A.detach().float().T, mode="reduced")    # [min(in, r), r]
    core = float(scale) * (r_b @ r_a.T)                               # [min(out, r), min(in, r)]
    return torch.linalg.svdvals(core).abs()


def singular_values(delta: torch.Tensor) -> torch.Tensor:
    """All singular values of a dense matrix, descending, computed in fp32.

    Args:
        delta (torch.Tensor): shape [out, in].

    Returns:
        torch.Tensor: shape [min(out, in)], fp32.
    """
    return torch.linalg.svdvals(delta.detach().float())


def rank90(singular_values: torch.Tensor | list[float], threshold: float = 0.9) -> int:
    """Smallest k with Σ_{i≤k} σ_i² ≥ threshold·Σ σ_i² (Biderman et al. 2024, §5.1).

    Args:
        singular_values (torch.Tensor | list[float]): all singular values (any order), shape [n].
        threshold (float): fraction of the total σ² to explain. Default 0.9.

    Returns:
        int: k in [1, n], or 0 when the matrix is zero (no change: nothing to explain).
    """
    s = torch.as_tensor(singular_values, dtype=torch.float64).flatten()
    energy = torch.sort(s * s, descending=True).values
    total = float(energy.sum())
    if total <= 0.0:
        return 0
    cum = torch.cumsum(energy, 0)
    # A hair of tolerance so that exactly-at-threshold spectra (e.g. 9 equal of 10) are not
    # pushed one further by rounding.
    return int(torch.searchsorted(cum, threshold * total * (1 - 1e-12)).item()) + 1


def left_singular_vectors(w: torch.Tensor) -> torch.Tensor:
    """Left singular vectors of W (reduced SVD, fp32), columns sorted by descending σ.

    Args:
        w (torch.Tensor): shape [out, in].

    Returns:
        torch.Tensor: U, shape [out, min(out, in)].
    """
    u, _, _ = torch.linalg.svd(w.detach().float(), full_matrices=False)
    return u


def max_abs_cos(vectors: torch.Tensor, u_base: torch.Tensor) -> torch.Tensor:
    """For each unit column of ``vectors``, its largest |cos| with any column of ``u_base``.

    Args:
        vectors (torch.Tensor): unit vectors as columns, shape [out, k].
        u_base (torch.Tensor): orthonormal columns, shape [out, m].

    Returns:
        torch.Tensor: shape [k].
    """
    return (vectors.T.float() @ u_base.to(vectors.device).float()).abs().max(dim=1).values


def intruder_count(w_base: torch.Tensor, w_tuned: torch.Tensor, k: int = 10, eps: float = 0.5,
                   u_base: torch.Tensor | None = None) -> int:
    """Intruder dimensions (Shuttleworth et al. 2024, "LoRA vs Full Fine-tuning: An Illusion of
    Equivalence", arXiv 2410.21228): among the top ``k`` left singular vectors of W_tuned, those
    whose max |cos| with every left singular vector of W_base is below ``eps``. Follows peft's
    ``lora/intruders.py`` (reduced SVDs of both, fp32).

    Args:
        w_base (torch.Tensor): shape [out, in].
        w_tuned (torch.Tensor): shape [out, in].
        k (int): how many top singular vectors of W_tuned to test. Default 10.
        eps (float): |cos| threshold. Default 0.5.
        u_base (torch.Tensor | None): W_base's left singular vectors if already known
            (shape [out, min(out, in)]), to skip that SVD.

    Returns:
        int: intruder count in [0, k].
    """
    if u_base is None:
        u_base = left_singular_vectors(w_base)
    u_tuned = left_singular_vectors(w_tuned)[:, :k]
    return int((max_abs_cos(u_tuned, u_base) < eps).sum().item())


_RANDOM_RANK90: dict[tuple[int, int, int], int] = {}


def random_rank90(shape: tuple[int, int] | list[int], seed: int = 0) -> int:
    """rank90 of a standard Gaussian matrix of ``shape``: the reference line of a change with no
    low-rank structure at all (≈66 for 128×128, ≈98 for 128×512 at seed 0; tests/test_spectra.py
    checks both). Cached per (shape, seed); the matrix comes from a private generator, so global
    RNG state is untouched.

    Args:
        shape (tuple[int, int]): [out, in].
        seed (int): generator seed.

    Returns:
        int: rank90 of the Gaussian matrix.
    """
    key = (int(shape[0]), int(shape[1]), int(seed))
    if key not in _RANDOM_RANK90:
        g = torch.Generator().manual_seed(seed)
        _RANDOM_RANK90[key] = rank90(torch.linalg.svdvals(torch.randn(key[0], key[1], generator=g)))
    return _RANDOM_RANK90[key]


def random_intruder_count(u_base: torch.Tensor, k: int = 10, eps: float = 0.5, seed: int = 0) -> int:
    """The intruder count that ``k`` random directions would score against W_base: draws ``k``
    isotropic unit vectors in R^out and counts those with max |cos| < ``eps`` against every
    column of ``u_base``. At small widths random vectors already have max |cos| ≈ 0.2–0.35
    (≈√(2 ln 2m / out) for m base vectors), so at ε = 0.5 this is often k: the intruder count of
    a real matrix means "structure" only where it is well below this baseline.

    Args:
        u_base (torch.Tensor): W_base's left singular vectors, shape [out, m].
        k (int): number of random directions. Default 10.
        eps (float): |cos| threshold. Default 0.5.
        seed (int): generator seed.

    Returns:
        int: count in [0, k].
    """
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(u_base.shape[0], k, generator=g)
    v = v / v.norm(dim=0, keepdim=True)
    return int((max_abs_cos(v, u_base.cpu()) < eps).sum().item())


# --------------------------------------------------------------------------- module naming

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


def module_kind(name: str) -> Kind | None:
    """``attention`` | ``mlp`` from a module name, or None for anything else (embeddings, head).

    Llama: ``self_attn.{q,k,v,o}_proj`` / ``mlp.{gate,up,down}_proj``; GPT-2: ``attn.c_attn``,
    ``attn.c_proj`` / ``mlp.c_fc``, ``mlp.c_proj``; plus the common names of other families.
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
    return None


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


def _is_conv1d(m: nn.Module) -> bool:
    # transformers' GPT-2 Conv1D: weight [in, out]. Checked by name to avoid importing it.
    return type(m).__name__ == "Conv1D" and hasattr(m, "nf")


def full_weight(weight: torch.Tensor) -> torch.Tensor:
    """A weight as one whole tensor. FSDP2 keeps a shard of it on each rank (a DTensor), which
    ``full_tensor()`` all-gathers: a collective, so every rank must gather the same matrices in
    the same order (train.py walks ``iter_matrices`` on the ranks that compute nothing). A plain
    tensor comes back as it is."""
    gather = getattr(weight, "full_tensor", None)
    return gather() if gather is not None else weight


def _dense_weight(m: nn.Module) -> torch.Tensor:
    """A Linear/Conv1D weight, whole, in [out, in] orientation (a view, not a copy, unless sharded)."""
    w = full_weight(m.weight)
    return w.T if _is_conv1d(m) else w


def _is_lora_layer(m: nn.Module) -> bool:
    return hasattr(m, "base_layer") and hasattr(m, "lora_A") and hasattr(m, "scaling")


def _unwrap(model: nn.Module) -> nn.Module:
    # DDP keeps the real model in .module.
    return model.module if isinstance(getattr(model, "module", None), nn.Module) else model


def _active_adapter(m: nn.Module) -> str | None:
    active = getattr(m, "active_adapters", None) or ["default"]
    for a in active:
        if a in m.lora_A:
            return a
    return None


def iter_matrices(model: nn.Module, method: str, modules: str | list[str]):
    """(raw name, module, weight [out, in]) for every matrix ``spectra.modules`` selects, in model
    order, one at a time: an FSDP2-sharded weight is gathered as it is reached (``full_weight``)
    and can be freed before the next one.

    Args:
        model (nn.Module): plain transformers, PEFT-wrapped, DDP or FSDP2-sharded.
        method (str): ``lora`` (matrices with an active adapter; their frozen base weight) |
            ``full`` (every selected Linear/Conv1D).
        modules (str | list[str]): the ``spectra.modules`` setting.
    """
    root = _unwrap(model)
    for raw, m in root.named_modules():
        name = canonical_name(raw)
        if not selects(modules, name, module_kind(name)):
            continue
        if method == "lora":
            if _is_lora_layer(m) and _active_adapter(m) is not None:
                base = m.get_base_layer() if hasattr(m, "get_base_layer") else m.base_layer
                yield raw, m, _dense_weight(base)
        elif isinstance(m, nn.Linear) or _is_conv1d(m):
            yield raw, m, _dense_weight(m)


# --------------------------------------------------------------------------- the tracker

@dataclass
class _Target:
    module: str            # canonical name
    name: str              # short name
    layer: int
    kind: Kind
    shape: tuple[int, int]  # [out, in]
    w_base: torch.Tensor   # fp32, CPU, [out, in]
    u_base: torch.Tensor | None      # W_base's left singular vectors (fp32, CPU) when intruders are on
    random_intruders: int | None
    random_rank90: int | None


class SpectraTracker:
    """Snapshots W_base of every target matrix before training; ``compute`` returns one
    ``spectrum`` event payload per matrix (schemas/events.schema.json).

    Full finetuning: ΔW = W_tuned − W_base, dense ``svdvals``. LoRA: σ(ΔW) from the QR of the
    factors (``lora_delta_singular_values``), never the dense ΔW; W_base is the frozen
    ``base_layer`` weight. DoRA: the dense ΔW = W_merged − W_base, because DoRA rescales every
    output row by m/‖W + sBA‖, which is not a low-rank change, so the QR shortcut does not apply.
    Intruders need the SVD of the dense W_tuned in every method (the SVD of W, not of ΔW);
    W_base's SVD is taken once here. In LoRA runs, matrices without an adapter are skipped:
    their ΔW is exactly zero.

    Memory: an fp32 CPU copy of every target W_base (plus its U when intruders are on). SVDs of
    W_tuned run on the model's device. FSDP2-sharded weights are gathered one matrix at a time
    (``iter_matrices``).

    Args:
        model (nn.Module): the model as trained (plain transformers, PEFT-wrapped, or DDP).
        method (str): ``lora`` | ``full``.
        spectra_cfg (dict): the experiment's ``spectra`` section (modules, top_k, intruder_k,
            intruder_epsilon; every_steps is the train loop's business).
        lora_cfg (dict | None): the ``lora`` section (its ``variant`` is informational; the
            layer itself says whether it is DoRA and what its scale is).
        seed (int): seed of the random baselines.
    """

    def __init__(self, model: nn.Module, method: str, spectra_cfg: dict, lora_cfg: dict | None,
                 seed: int = 0):
        self.method = method
        self.modules = spectra_cfg.get("modules", "all")
        self.top_k = int(spectra_cfg.get("top_k", 64))
        self.intruder_k = int(spectra_cfg.get("intruder_k", 10))
        self.eps = float(spectra_cfg.get("intruder_epsilon", 0.5))
        self.lora_cfg = lora_cfg or {}
        self.seed = seed
        self.targets: list[_Target] = []
        with torch.no_grad():
            for i, (raw, m, weight) in enumerate(self._matrices(model)):
                w_base = weight.detach().float().cpu().clone()
                u_base = left_singular_vectors(w_base) if self.intruder_k > 0 else None
                name = canonical_name(raw)
                self.targets.append(_Target(
                    module=name, name=name.split(".")[-1], layer=layer_index(name),
                    kind=module_kind(name), shape=(w_base.shape[0], w_base.shape[1]),
                    w_base=w_base, u_base=u_base,
                    random_intruders=(random_intruder_count(u_base, self.intruder_k, self.eps, seed + i)
                                      if u_base is not None else None),
                    random_rank90=random_rank90(tuple(w_base.shape), seed)))

    def _matrices(self, model: nn.Module):
        """(raw name, module, weight [out, in]) for every selected matrix, in model order."""
        return iter_matrices(model, self.method, self.modules)

    def _lora_parts(self, m: nn.Module):
        """(A [r, in], B [out, r], scale, rank, dora magnitude [out] or None) of the active adapter."""
        a = _active_adapter(m)
        A, B = m.lora_A[a].weight, m.lora_B[a].weight
        scale = float(m.scaling[a])  # alpha/r, or alpha/sqrt(r) with use_rslora (peft update_layer)
        mag = None
        if getattr(m, "use_dora", {}).get(a, False):
            mag = m.lora_magnitude_vector[a].weight
        return A, B, scale, int(A.shape[0]), mag

    @torch.no_grad()
    def compute(self, model: nn.Module, step: int) -> list[dict]:
        """One ``spectrum`` payload per target matrix (no v/type/time: the events writer adds them).

        Args:
            model (nn.Module): the same model the tracker was built from, at ``step``.
            step (int): optimizer step (0 = base).

        Returns:
            list[dict]: payloads with step, module, name, layer, kind, shape, singular_values
            (top ``top_k``, descending), rank90, energy (Σσ² = ‖ΔW‖_F²), intruders,
            random_rank90, random_intruders, lora_rank. Matrices whose ΔW is not finite
            (a diverged run) are left out.
        """
        events = []
        # in the order the targets were taken, one matrix at a time (a sharded one is gathered here)
        for t, (raw, m, weight) in zip(self.targets, self._matrices(model), strict=True):
            assert canonical_name(raw) == t.module, (raw, t.module)
            dev = weight.device
            w_base = t.w_base.to(dev)
            lora_rank = None
            if self.method == "lora":
                A, B, scale, lora_rank, mag = self._lora_parts(m)
                delta_lr = scale * (B.float() @ A.float())  # [out, in]; dense only for W_tuned
                if not torch.isfinite(delta_lr).all():
                    continue  # a diverged run: no spectrum (the train events already show it)
                if mag is None:
                    sv = lora_delta_singular_values(A, B, scale)
                    w_tuned = w_base + delta_lr
                else:
                    # DoRA (Liu et al. 2024, arXiv 2402.09353), as peft's DoraLinearVariant.merge:
                    # W' = m / ||W + sBA||_row * (W + sBA); the row rescaling makes ΔW full rank.
                    v = w_base + delta_lr
                    w_tuned = (mag.float() / v.norm(dim=1)).view(-1, 1) * v
                    sv = singular_values(delta_weight_full(w_base, w_tuned))
            else:
                w_tuned = weight.float()
                if not torch.isfinite(w_tuned).all():
                    continue
                sv = singular_values(delta_weight_full(w_base, w_tuned))
            sv = sv.cpu().double()
            intruders = None
            if t.u_base is not None:
                intruders = (0 if float(sv.abs().max() if sv.numel() else 0) == 0.0 else
                             intruder_count(w_base, w_tuned, self.intruder_k, self.eps, u_base=t.u_base))
            events.append({
                "step": int(step), "module": t.module, "name": t.name, "layer": t.layer,
                "kind": t.kind, "shape": [t.shape[0], t.shape[1]],
                "singular_values": [_round(x) for x in sv[: self.top_k].tolist()],
                "rank90": rank90(sv), "energy": _round(float((sv * sv).sum())),
                "intruders": intruders, "random_rank90": t.random_rank90,
                "random_intruders": t.random_intruders, "lora_rank": lora_rank,
            })
        return events


def _round(x: float) -> float:
    """6 significant digits: plenty for a plot, and keeps events.jsonl small."""
    x = float(x)
    return 0.0 if x == 0.0 or not math.isfinite(x) else float(f"{abs(x):.6g}")
