"""`python -m finetune_lab doctor`: what this Python can do, as JSON."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import sys

OPTIONAL = ["transformers", "peft", "safetensors", "yaml", "numpy", "jsonschema", "accelerate",
            "bitsandbytes", "flash_attn", "onnx", "onnxruntime", "lion_pytorch", "lm_eval"]
_DIST_NAMES = {"yaml": "PyYAML", "flash_attn": "flash-attn", "lion_pytorch": "lion-pytorch", "lm_eval": "lm_eval"}


def _version(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except Exception:
        return None
    try:
        return importlib.metadata.version(_DIST_NAMES.get(module, module))
    except importlib.metadata.PackageNotFoundError:
        return "present"


def gpu_list() -> list[dict]:
    """This machine's CUDA GPUs: [{"index", "name", "memory_mb", "capability", "bf16"}] (empty without)."""
    import torch
    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        out.append({"index": i, "name": p.name, "memory_mb": round(p.total_memory / 2**20),
                    "capability": f"{p.major}.{p.minor}", "bf16": p.major >= 8})
    return out


def host_memory_mb() -> int:
    """Total RAM of this machine (the limit a CPU run's memory estimate is checked against)."""
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20)


def doctor() -> dict:
    """{"python", "platform", "host_memory_mb", "torch", "cuda": {...}, "gpus": [{"index", "name",
    "memory_mb", "capability", "bf16"}], "distributed": {...}, "libraries": {name: version or None}}.
    The memory estimate reads ``gpus[].memory_mb``; fields are only ever added."""
    info = {"python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
            "host_memory_mb": host_memory_mb()}
    try:
        import torch
    except Exception as e:
        return {**info, "torch": None, "error": f"torch not importable: {e}"}
    info["torch"] = torch.__version__
    available = torch.cuda.is_available()
    info["cuda"] = {"available": available, "version": torch.version.cuda,
                    "bf16": bool(available and torch.cuda.is_bf16_supported())}
    info["gpus"] = gpu_list()
    info["mps"] = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    info["cpu_threads"] = torch.get_num_threads()
    info["distributed"] = _distributed(torch)
    info["libraries"] = {name: _version(name) for name in OPTIONAL}
    return info


def _distributed(torch) -> dict:
    """What launcher.kind torchrun needs: torch.distributed, its backends (gloo on CPU, nccl on
    CUDA) and FSDP2's fully_shard (launcher.sharding fsdp)."""
    dist = torch.distributed
    if not dist.is_available():
        return {"available": False, "gloo": False, "nccl": False, "fsdp2": False}
    try:
        from torch.distributed.fsdp import fully_shard  # noqa: F401
        fsdp2 = True
    except ImportError:
        fsdp2 = False
    return {"available": True, "gloo": dist.is_gloo_available(), "nccl": dist.is_nccl_available(), "fsdp2": fsdp2}
