"""Spectra of the weight change ΔW = W_tuned − W_base of a run while it trains, per target matrix.

What "LoRA Learns Less and Forgets Less" (Biderman et al., TMLR 2024, arXiv 2405.09673, §5)
measured: full finetuning's ΔW is high rank (rank90, the rank that explains 90% of its
σ² "variance", is 10–100× typical LoRA ranks), LoRA's is at most r. And what Shuttleworth et
al. (arXiv 2410.21228) added: LoRA's W_tuned has "intruder dimensions", top singular vectors
almost orthogonal to every singular vector of W_base. The numbers of one matrix are
spectra_math.py's; this module finds the matrices in a model and keeps W_base.

Memory is bounded by one matrix, whatever the model's size: no copy of every W_base is held.
LoRA's W_base is the frozen ``base_layer`` weight, read where it is. Full finetuning reads W_base
one matrix at a time from the base's own safetensors files, memory-mapped (checked equal to the
model's starting weights first), else from a private snapshot file written at the start. W_base's
singular vectors are recomputed per matrix when intruders are counted, never cached.

All matrices here are in the [out_features, in_features] orientation of ``nn.Linear.weight``
(GPT-2's ``Conv1D`` stores [in, out] and is transposed on read).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .base_weights import SnapshotWeights, WeightFiles, WeightsError
from .module_names import Kind, canonical_name, layer_index, module_kind, selects  # noqa: F401  (re-exported)
from .spectra_math import (  # noqa: F401  (re-exported: the tests and benchmarks import them from here)
    LoraFactors, delta_weight_full, intruder_count, left_singular_vectors, lora_delta_singular_values,
    matrix_spectrum, max_abs_cos, random_intruder_count, random_rank90, rank90, singular_values)


def _is_conv1d(m: nn.Module) -> bool:
    # transformers' GPT-2 Conv1D: weight [in, out]. Checked by name to avoid importing it.
    return type(m).__name__ == "Conv1D" and hasattr(m, "nf")


def full_weight(weight: torch.Tensor) -> torch.Tensor:
    """A weight as one whole tensor. FSDP2 keeps a shard of it on each rank (a DTensor), which
    ``full_tensor()`` all-gathers: a collective, so every rank must gather the same matrices in
    the same order (train.py has the ranks that compute nothing walk ``iter_matrices`` too). A
    plain tensor comes back as it is."""
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


# --------------------------------------------------------------------------- W_base of full finetuning

def _model_folder(root: nn.Module) -> Path | None:
    """The folder the model was loaded from (``from_pretrained``'s ``name_or_path``): a local
    folder, or the Hugging Face cache's snapshot of a Hub name; None for a model built in memory."""
    hf = root.base_model.model if hasattr(root, "peft_config") else root
    name = getattr(hf, "name_or_path", None) or getattr(getattr(hf, "config", None), "_name_or_path", None)
    if not name:
        return None
    if Path(name).expanduser().is_dir():
        return Path(name).expanduser()
    try:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        return None  # not a Hub name in the cache: the snapshot serves


class BaseWeights:
    """W_base of every target matrix of a full-finetuning run, read one matrix at a time.

    From the base's own weight files when each target's tensor there equals the model's weight
    at the start (the tensor cast to the model's dtype; checked one matrix at a time, so a base
    whose names or values changed on load is never trusted), else from a private snapshot file of
    the starting weights (base_weights.SnapshotWeights). Either way the values are exactly the
    model's starting weights, and memory holds one matrix.

    Args:
        targets (list[tuple[str, torch.Tensor]]): (state-dict key, weight as stored in the model).
        folder (Path | None): the folder the base was loaded from, if any.
    """

    def __init__(self, targets: list[tuple[str, torch.Tensor]], folder: Path | None):
        self.dtypes = {key: w.dtype for key, w in targets}
        self.files: WeightFiles | None = None
        self.keys: dict[str, str] = {}
        self.snapshot: SnapshotWeights | None = None
        try:
            files = WeightFiles.find(folder) if folder is not None else None
        except WeightsError:
            files = None
        if files is not None and self._matches(files, targets):
            self.files, self.source = files, f"files in {folder}"
            return
        self.keys = {}
        from .paths import cache_dir  # the snapshot can be large: not the (often RAM-backed) /tmp
        self.snapshot = SnapshotWeights([(k, tuple(w.shape), w.dtype) for k, w in targets],
                                        folder=cache_dir() / "spectra-snapshots")
        for key, w in targets:
            self.snapshot.write(key, w)
        self.source = "a snapshot of the starting weights"

    def _matches(self, files: WeightFiles, targets: list[tuple[str, torch.Tensor]]) -> bool:
        for key, w in targets:
            stored = files.resolve(key)
            if stored is None or files.shape(stored) != tuple(w.shape):
                return False
            if not torch.equal(files.get(stored).to(w.dtype), w.detach().cpu()):
                return False
            self.keys[key] = stored
        return True

    def get(self, key: str) -> torch.Tensor:
        """W_base for a state-dict key, as stored in the model (dtype and orientation), on the CPU."""
        if self.files is not None:
            return self.files.get(self.keys[key]).to(self.dtypes[key])
        return self.snapshot.get(key)


# --------------------------------------------------------------------------- the tracker

@dataclass
class _Target:
    module: str            # canonical name
    name: str              # short name
    layer: int
    kind: Kind
    shape: tuple[int, int]  # [out, in]
    key: str               # the weight's state-dict key (full finetuning reads W_base by it)
    transposed: bool       # stored [in, out] (GPT-2's Conv1D)
    random_intruders: int | None
    random_rank90: int | None


class SpectraTracker:
    """Finds the target matrices before training; ``compute`` returns one ``spectrum`` event
    payload per matrix (schemas/events.schema.json).

    Full finetuning: ΔW = W_tuned − W_base, dense ``svdvals``; W_base comes from ``BaseWeights``.
    LoRA: σ(ΔW) from the QR of the factors, never the dense ΔW; W_base is the frozen
    ``base_layer`` weight (PEFT never updates it). DoRA: the dense ΔW (spectra_math.matrix_spectrum).
    Intruders need the SVDs of the dense W_tuned and of W_base, taken per matrix at each pass. In
    LoRA runs, matrices without an adapter are skipped: their ΔW is exactly zero.

    Memory: one matrix at a time (W_base, W_tuned, ΔW and their singular vectors, in fp32 on the
    model's device), plus, for full finetuning of a model with no matching weight files, a
    snapshot file on disk. Under FSDP2 the tracker is built from the model before it is sharded,
    and ``compute`` gathers each sharded matrix as it reaches it (``iter_matrices``).

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
        self.base: BaseWeights | None = None
        found = list(self._matrices(model))
        with torch.no_grad():
            if method != "lora":
                self.base = BaseWeights([(raw + ".weight", m.weight) for raw, m, _ in found],
                                        _model_folder(_unwrap(model)))
            for i, (raw, m, weight) in enumerate(found):
                name = canonical_name(raw)
                shape = (int(weight.shape[0]), int(weight.shape[1]))
                random_intruders = None
                if self.intruder_k > 0:  # once per matrix, one at a time: W_base's SVD, then dropped
                    u_base = left_singular_vectors(weight.detach().float().cpu())
                    random_intruders = random_intruder_count(u_base, self.intruder_k, self.eps, seed + i)
                    del u_base
                self.targets.append(_Target(
                    module=name, name=name.split(".")[-1], layer=layer_index(name), kind=module_kind(name),
                    shape=shape, key=raw + ".weight", transposed=_is_conv1d(m) or _is_conv1d(_base_of(m)),
                    random_intruders=random_intruders, random_rank90=random_rank90(shape, seed)))

    def _matrices(self, model: nn.Module):
        """(raw name, module, weight [out, in]) for every selected matrix, in model order."""
        return iter_matrices(model, self.method, self.modules)

    @staticmethod
    def _adapter(m: nn.Module) -> str | None:
        active = getattr(m, "active_adapters", None) or ["default"]
        for a in active:
            if a in m.lora_A:
                return a
        return None

    def _lora_parts(self, m: nn.Module) -> LoraFactors:
        """The active adapter's A [r, in], B [out, r], scale and DoRA magnitude [out] (or None)."""
        a = self._adapter(m)
        mag = m.lora_magnitude_vector[a].weight if getattr(m, "use_dora", {}).get(a, False) else None
        # alpha/r, or alpha/sqrt(r) with use_rslora (peft update_layer)
        return LoraFactors(m.lora_A[a].weight, m.lora_B[a].weight, float(m.scaling[a]), mag)

    def _w_base(self, t: _Target, weight: torch.Tensor) -> torch.Tensor:
        """W_base [out, in] on ``weight``'s device: the frozen base layer (LoRA), else read back."""
        if self.base is None:
            return weight
        w = self.base.get(t.key).to(weight.device)
        return w.T if t.transposed else w

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
        # in the order the targets were found, one matrix at a time (a sharded one is gathered here)
        for t, (raw, m, weight) in zip(self.targets, self._matrices(model), strict=True):
            assert canonical_name(raw) == t.module, (raw, t.module)
            lora = self._lora_parts(m) if self.method == "lora" else None
            fields = matrix_spectrum(self._w_base(t, weight), w_tuned=None if lora else weight, lora=lora,
                                     top_k=self.top_k, intruder_k=self.intruder_k, eps=self.eps)
            if fields is None:
                continue  # a diverged run: no spectrum (the train events already show it)
            events.append({
                "step": int(step), "module": t.module, "name": t.name, "layer": t.layer,
                "kind": t.kind, "shape": [t.shape[0], t.shape[1]], **fields,
                "random_rank90": t.random_rank90, "random_intruders": t.random_intruders,
                "lora_rank": lora.rank if lora else None,
            })
        return events


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
    for raw, m in _unwrap(model).named_modules():
        name = canonical_name(raw)
        if not selects(modules, name, module_kind(name)):
            continue
        if method == "lora":
            if _is_lora_layer(m) and SpectraTracker._adapter(m) is not None:
                yield raw, m, _dense_weight(_base_of(m))
        elif isinstance(m, nn.Linear) or _is_conv1d(m):
            yield raw, m, _dense_weight(m)


def _base_of(m: nn.Module) -> nn.Module:
    """A PEFT layer's wrapped base layer (the module itself otherwise)."""
    if hasattr(m, "get_base_layer"):
        return m.get_base_layer()
    return getattr(m, "base_layer", m)
