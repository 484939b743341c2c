"""`python -m finetune_lab doctor`: what this Python can do, as JSON."""

from __future__ import annotations

import importlib
import importlib.metadata
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


def doctor() -> dict:
    """{"python", "platform", "torch", "cuda": {...}, "gpus": [{"index", "name", "memory_mb",
    "capability"}], "libraries": {name: version or None}}."""
    info = {"python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform()}
    try:
        import torch
    except Exception as e:
        return {**info, "torch": None, "error": f"torch not importable: {e}"}
    info["torch"] = torch.__version__
    available = torch.cuda.is_available()
    info["cuda"] = {"available": available, "version": torch.version.cuda,
                    "bf16": bool(available and torch.cuda.is_bf16_supported())}
    info["gpus"] = []
    for i in range(torch.cuda.device_count() if available else 0):
        p = torch.cuda.get_device_properties(i)
        info["gpus"].append({"index": i, "name": p.name, "memory_mb": round(p.total_memory / 2**20),
                             "capability": f"{p.major}.{p.minor}"})
    info["mps"] = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    info["cpu_threads"] = torch.get_num_threads()
    info["libraries"] = {name: _version(name) for name in OPTIONAL}
    return info
