"""The numbers of one weight matrix's change ΔW = W_tuned − W_base: its singular values, rank90,
energy and intruder dimensions, and the random references they are read against.

Shared by the spectra of training runs (spectra.py's SpectraTracker) and of finetunes made
elsewhere (analyse.py), so both report exactly the same quantities. All matrices are in the
[out_features, in_features] orientation of ``nn.Linear.weight``. Every SVD runs in fp32:
``torch.linalg.svd``/``svdvals`` do not support fp16/bf16 (peft's ``lora/intruders.py`` upcasts
for the same reason), and σ² sums over thousands of values want the precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

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
    d = delta.detach().float()
    # σ(Aᵀ) = σ(A); LAPACK's SVD of a wide matrix runs several times slower than of its transpose
    # (4096×14336: 52 s vs 11 s on a 2-core CPU, trainer/bench/bench_spectra_7b.py).
    return torch.linalg.svdvals(d.T if d.shape[0] < d.shape[1] else d)


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
    w = w.detach().float()
    if w.shape[0] < w.shape[1]:  # wide: W = (Wᵀ)ᵀ = (U' S V'ᵀ)ᵀ, so U = V' (see singular_values)
        _, _, vh = torch.linalg.svd(w.T, full_matrices=False)
        return vh.T
    u, _, _ = torch.linalg.svd(w, full_matrices=False)
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
        _RANDOM_RANK90[key] = rank90(singular_values(torch.randn(key[0], key[1], generator=g)))
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


# --------------------------------------------------------------------------- one matrix

@dataclass
class LoraFactors:
    """One LoRA layer's adapter: ΔW = scale·B·A (PEFT's ``get_delta_weight``), and for DoRA the
    learned per-output-row magnitude.

    Args:
        A (torch.Tensor): ``lora_A.weight``, shape [r, in].
        B (torch.Tensor): ``lora_B.weight``, shape [out, r].
        scale (float): alpha/r, or alpha/√r with rsLoRA.
        magnitude (torch.Tensor | None): DoRA's ``lora_magnitude_vector``, shape [out].
    """

    A: torch.Tensor
    B: torch.Tensor
    scale: float
    magnitude: torch.Tensor | None = None

    @property
    def rank(self) -> int:
        return int(self.A.shape[0])


def matrix_spectrum(w_base: torch.Tensor, w_tuned: torch.Tensor | None = None, lora: LoraFactors | None = None,
                    top_k: int = 64, intruder_k: int = 10, eps: float = 0.5,
                    u_base: torch.Tensor | None = None) -> dict | None:
    """The spectrum fields of one matrix's change, from W_base and either W_tuned (full
    finetuning) or the LoRA factors. LoRA: σ(ΔW) by the QR shortcut (``lora_delta_singular_values``),
    never an SVD of the dense ΔW. DoRA: the dense ΔW = W_merged − W_base, because DoRA rescales
    every output row by m/‖W + sBA‖, which is not a low-rank change. Intruders need the SVD of the
    dense W_tuned in every method (of W, not of ΔW), and W_base's (``u_base``, computed here when
    not given).

    Args:
        w_base (torch.Tensor): shape [out, in], any float dtype, on the device to compute on.
        w_tuned (torch.Tensor | None): shape [out, in] (full finetuning).
        lora (LoraFactors | None): the adapter (LoRA, rsLoRA, DoRA) when ``w_tuned`` is None.
        top_k (int): singular values kept.
        intruder_k (int): top singular vectors of W_tuned tested; 0 turns intruders off.
        eps (float): |cos| threshold of an intruder.
        u_base (torch.Tensor | None): W_base's left singular vectors, if known.

    Returns:
        dict | None: ``singular_values`` (top ``top_k``, descending, 6 significant digits),
        ``rank90``, ``energy`` (Σσ² = ‖ΔW‖_F²), ``intruders`` (None when off); None when the
        change is not finite (a diverged run).
    """
    w_base = w_base.float()
    if lora is not None:
        delta_lr = lora.scale * (lora.B.float() @ lora.A.float())  # [out, in]; dense only for W_tuned
        if not torch.isfinite(delta_lr).all():
            return None
        if lora.magnitude is None:
            sv = lora_delta_singular_values(lora.A, lora.B, lora.scale)
            w_tuned = w_base + delta_lr
        else:
            # DoRA (Liu et al. 2024, arXiv 2402.09353), as peft's DoraLinearVariant.merge:
            # W' = m / ||W + sBA||_row * (W + sBA); the row rescaling makes ΔW full rank.
            v = w_base + delta_lr
            w_tuned = (lora.magnitude.float() / v.norm(dim=1)).view(-1, 1) * v
            sv = singular_values(delta_weight_full(w_base, w_tuned))
    else:
        w_tuned = w_tuned.float()
        if not torch.isfinite(w_tuned).all():
            return None
        sv = singular_values(delta_weight_full(w_base, w_tuned))
    sv = sv.cpu().double()
    intruders = None
    if intruder_k > 0:
        intruders = (0 if float(sv.abs().max() if sv.numel() else 0) == 0.0 else
                     intruder_count(w_base, w_tuned, intruder_k, eps, u_base=u_base))
    return {"singular_values": [_round(x) for x in sv[:top_k].tolist()], "rank90": rank90(sv),
            "energy": _round(float((sv * sv).sum())), "intruders": intruders}


def _round(x: float) -> float:
    """6 significant digits: plenty for a plot, and keeps events.jsonl small."""
    x = float(x)
    return 0.0 if x == 0.0 or not math.isfinite(x) else float(f"{abs(x):.6g}")
