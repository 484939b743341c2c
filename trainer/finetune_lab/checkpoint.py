"""Checkpoints: DIR/checkpoints/step-NNNNNN/, written atomically (temp dir + rename).

LoRA: PEFT's own save_pretrained (adapter_config.json + adapter_model.safetensors, keys
``base_model.model.<module>.lora_A.weight``), so adapters load anywhere PEFT does.
Full: transformers' save_pretrained (config.json + model.safetensors).
Both: trainer_state.pt with what --resume needs (optimizer, step, RNG states, data position),
holding only tensors and plain Python values, read back with ``torch.load(weights_only=True)``:
a checkpoint in a run folder is data, never code (a pickle can run anything on load).

A checkpoint is complete or absent, whenever the trainer is killed: it is written as
``.tmp-step-N-<pid>`` and renamed; a folder that goes away (pruned, or replaced when a resumed run
writes the same step again) is first renamed to ``.trash-...``, so no ``step-*`` folder is ever half
written or half deleted. Leftover ``.tmp-``/``.trash-`` folders of a killed trainer are removed
by the next save.
"""

from __future__ import annotations

import os
import pickle
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
    """The RNG states as tensors and plain values (loadable with weights_only=True)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    npy = state["numpy"]
    if isinstance(npy, dict):
        np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                             npy["has_gauss"], npy["cached_gaussian"]))
    else:  # a checkpoint written before the states were tensors (numpy's own tuple)
        np.random.set_state(npy)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, model, optimizer, method: str, step: int, trainer_state: dict,
                    keep_last: int) -> tuple[str, str]:
    """Write checkpoint ``step`` and prune to the newest ``keep_last``.

    Returns:
        (path relative to run_dir, format: "peft_adapter" | "safetensors")

    Raises:
        OSError: it could not be written (disk full, read-only folder); the half-written temp
            folder is removed and the checkpoints already there are untouched.
    """
    root = Path(run_dir) / "checkpoints"
    if root.is_symlink():  # a run folder from a workspace must not point our writes (and prunes) elsewhere
        raise OSError(f"{root} is a symbolic link; checkpoints are only written inside the run folder")
    root.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(root)
    final = root / step_dir_name(step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    try:
        model.save_pretrained(tmp)  # PeftModel: adapter only; PreTrainedModel: config + safetensors
        torch.save({**trainer_state, "step": step, "optimizer": optimizer.state_dict(), "rng": rng_state()},
                   tmp / STATE_FILE)
        replaced = _set_aside(final) if final.exists() else None  # re-saving the step we resumed from
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # frees the space a full disk needs back
        raise
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)
    for old in list_checkpoints(run_dir)[:-keep_last]:
        shutil.rmtree(_set_aside(old), ignore_errors=True)
    return final.relative_to(run_dir).as_posix(), "peft_adapter" if method == "lora" else "safetensors"


def _set_aside(folder: Path) -> Path:
    """Rename a checkpoint out of the ``step-*`` names before deleting it (atomic): a kill
    mid-delete then leaves a .trash- folder, never a step-* folder with some of its files gone."""
    trash = folder.with_name(f".trash-{folder.name}-{os.getpid()}")
    os.rename(folder, trash)
    return trash


def _remove_leftovers(root: Path) -> None:
    """Temp and trash folders of an earlier trainer of this run (killed mid-save or mid-prune);
    only one trainer writes a run folder at a time (runlock.py)."""
    for leftover in list(root.glob(".tmp-*")) + list(root.glob(".trash-*")):
        shutil.rmtree(leftover, ignore_errors=True)


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
    state = load_trainer_state(path / STATE_FILE)
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return state


# Older checkpoints kept numpy's RNG tuple; these are the only non-tensor types they need, and none
# of them can call anything but numpy's array constructor.
_OLD_FORMAT_GLOBALS = [np.ndarray, np.dtype, type(np.dtype(np.uint32))]
try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct
_OLD_FORMAT_GLOBALS.append(_reconstruct)


def load_trainer_state(file: Path) -> dict:
    """trainer_state.pt, with ``weights_only=True``: tensors and plain values only, so a crafted
    file cannot run code. Raises RuntimeError naming the file when it holds anything else."""
    try:
        with torch.serialization.safe_globals(_OLD_FORMAT_GLOBALS):
            return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise RuntimeError(f"{file} holds more than tensors and plain values, so it was not loaded "
                           f"(a checkpoint must never run code): {str(e).splitlines()[-1][:300]}") from e
