"""Precision modes (``train.precision``): which dtype holds the weights, the gradients and the
optimizer states, and whether the forward and backward run under bf16 autocast.

| mode       | trained weights, their grads and optimizer states | LoRA's frozen base | compute |
|------------|---------------------------------------------------|--------------------|---------|
| fp32       | fp32                                              | fp32               | fp32 (TF32 matmuls on CUDA) |
| bf16-mixed | fp32 (master weights)                             | bf16               | bf16 autocast |
| bf16-true  | full: bf16; LoRA adapters: fp32                   | bf16               | bf16, no autocast |

LoRA keeps its adapters in fp32 in every mode, as PEFT does (``get_peft_model(...,
autocast_adapter_dtype=True)`` upcasts bf16 adapters): they are a few MB, and bf16 adapter
updates would be lost in rounding. In bf16-true PEFT's LoRA layer casts the bf16 activations to
the adapter's dtype, so the adapter path runs in fp32 while the base runs in bf16.

Under FSDP2 (``launcher.sharding: fsdp``) bf16-mixed is FSDP's own mixed precision instead of
autocast: fp32 sharded master weights, all-gathered and computed in bf16, gradients reduced in
fp32 (``MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)``, distributed.py).
"""

from __future__ import annotations

import contextlib

import torch

MODES = ("fp32", "bf16-mixed", "bf16-true")


def resolve_precision(setting: str, device: torch.device) -> str:
    """The mode a run trains in.

    Args:
        setting (str): ``train.precision``: auto | fp32 | bf16-mixed | bf16-true | bf16 (the older
            name of bf16-mixed).
        device (torch.device): the training device.

    Returns:
        str: fp32 | bf16-mixed | bf16-true. ``auto`` is bf16-mixed on a CUDA GPU with bf16, else fp32.

    Raises:
        ValueError: bf16 asked for on a CUDA GPU without bf16 (before Ampere), naming the field.
    """
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    if setting == "auto":
        return "bf16-mixed" if cuda_bf16 else "fp32"
    mode = "bf16-mixed" if setting == "bf16" else setting
    if mode not in MODES:
        raise ValueError(f"train.precision: unknown mode '{setting}' (fp32, bf16-mixed, bf16-true or auto)")
    if mode != "fp32" and device.type == "cuda" and not cuda_bf16:
        raise ValueError(f"train.precision {setting}: {torch.cuda.get_device_name(device)} has no bf16 "
                         "support (it needs compute capability 8.0 or later): use fp32")
    return mode


def base_dtype(mode: str, method: str) -> torch.dtype:
    """The dtype the base model is loaded and held in: bf16 for LoRA in a bf16 mode (the frozen
    base is never updated, so it needs no fp32 copy) and for full finetuning in bf16-true;
    fp32 otherwise (full finetuning's fp32 master weights in bf16-mixed)."""
    if mode == "fp32" or (mode == "bf16-mixed" and method == "full"):
        return torch.float32
    return torch.bfloat16


def autocast(mode: str, device: torch.device, sharded: bool = False):
    """The context the forward runs in: bf16 autocast in bf16-mixed (unless FSDP2 casts the
    parameters itself, ``sharded``), nothing otherwise."""
    if mode == "bf16-mixed" and not sharded:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def check_trainable_dtypes(model: torch.nn.Module, mode: str, method: str) -> None:
    """Make the trained parameters' dtype the mode's: fp32, except full finetuning in bf16-true
    (bf16). LoRA adapters end up fp32 here whatever the base's dtype (PEFT already upcasts them;
    this also covers a PEFT that does not)."""
    want = torch.bfloat16 if (mode == "bf16-true" and method == "full") else torch.float32
    for p in model.parameters():
        if p.requires_grad and p.dtype != want:
            p.data = p.data.to(want)


def warn_cpu_bf16(mode: str, device: torch.device) -> str | None:
    """The warning a bf16 run on the CPU gets: it works, but most CPUs have no fast bf16 matmuls."""
    if mode != "fp32" and device.type == "cpu":
        return (f"train.precision {mode} on the CPU: bf16 works but is usually slower than fp32 here "
                "(most CPUs have no fast bf16 matrix units); use fp32 for CPU runs")
    return None
