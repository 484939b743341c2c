"""Checkpoints: DIR/checkpoints/step-NNNNNN/, written atomically (temp dir + rename).

LoRA: PEFT's own save_pretrained (adapter_config.json + adapter_model.safetensors, keys
``base_model.model.<module>.lora_A.weight``), so adapters load anywhere PEFT does.
Full: transformers' save_pretrained (config.json + model.safetensors).
Both: trainer_state.pt with what --resume needs (optimizer, step, RNG states, data position).
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

STATE_FILE = "trainer_state.pt"


def step_dir_name(step: int) -> str:
    return f"step-{step:06d}"


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, model, optimizer, method: str, step: int, trainer_state: dict,
                    keep_last: int) -> tuple[str, str]:
    """Write checkpoint ``step`` and prune to the newest ``keep_last``.

    Returns:
        (path relative to run_dir, format: "peft_adapter" | "safetensors")
    """
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)  # PeftModel: adapter only; PreTrainedModel: config + weights
    torch.save({**trainer_state, "step": step, "optimizer": optimizer.state_dict(), "rng": rng_state()},
               tmp / STATE_FILE)
    if final.exists():  # re-saving the step we resumed from
        shutil.rmtree(final)
    os.rename(tmp, final)
    for old in list_checkpoints(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final.relative_to(run_dir).as_posix(), "peft_adapter" if method == "lora" else "safetensors"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.exists():
        return []
    return sorted(p for p in root.glob("step-*") if (p / STATE_FILE).exists())


def load_checkpoint(path: Path, model, optimizer, method: str) -> dict:
    """Load weights into ``model`` and state into ``optimizer``; restores the RNG states.

    Returns:
        the trainer_state dict (step, data position, tokens, ...).
    """
    if method == "lora":
        from peft import set_peft_model_state_dict
        set_peft_model_state_dict(model, load_file(str(path / "adapter_model.safetensors")))
    else:
        missing, unexpected = model.load_state_dict(load_file(str(path / "model.safetensors")), strict=False)
        if unexpected or [k for k in missing if "lm_head" not in k]:
            raise RuntimeError(f"checkpoint {path} does not fit the model (missing {missing[:3]}, "
                               f"unexpected {unexpected[:3]})")
    # weights_only=False: the state holds Python/numpy RNG states; the file is our own.
    state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return state
