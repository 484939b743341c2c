"""Checkpoints: DIR/checkpoints/step-NNNNNN/, written atomically (temp dir + rename).

LoRA: PEFT's own save_pretrained (adapter_config.json + adapter_model.safetensors, keys
``base_model.model.<module>.lora_A.weight``), so adapters load anywhere PEFT does.
Full: transformers' save_pretrained (config.json + model.safetensors), in the dtype the weights
train in (bf16-true: bf16; otherwise fp32; LoRA adapters are always fp32).
Both: trainer_state.pt with what --resume needs (optimizer, step, RNG states, data position),
holding only tensors and plain Python values, read back with ``torch.load(weights_only=True)``:
a checkpoint in a run folder is data, never code (a pickle can run anything on load).

A checkpoint is complete or absent, whenever the trainer is killed: it is written as
``.tmp-step-N-<tag>`` and renamed; a folder that goes away (pruned, or replaced when a resumed run
writes the same step again) is first renamed to ``.trash-...``, so no ``step-*`` folder is ever half
written or half deleted. Leftover ``.tmp-``/``.trash-`` folders of a killed trainer are removed
by the next save.

FSDP2 (``launcher.sharding: fsdp``): the weights are gathered, one parameter at a time, into one
consolidated model.safetensors that rank 0 writes (transformers loads it like any other); the
optimizer state stays sharded, each rank writing its part with torch.distributed.checkpoint
(``optimizer/``), which a resume on any number of ranks reads back resharded. Gathering it
would put the whole optimizer state (2x the fp32 model for AdamW) in rank 0's memory. Its
metadata file is a pickle: it is read with an unpickler that builds only the checkpoint
metadata's own classes (``safe_dcp.py``).
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

from .safe_dcp import SafeFileSystemReader

STATE_FILE = "trainer_state.pt"
SHARDED_OPTIMIZER = "optimizer"  # the folder of a sharded (FSDP) optimizer state


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
    final, tmp = _folders(run_dir, step, f"{os.getpid()}")
    try:
        model.save_pretrained(tmp)  # PeftModel: adapter only; PreTrainedModel: config + weights
        torch.save({**trainer_state, "step": step, "optimizer": optimizer.state_dict(), "rng": rng_state()},
                   tmp / STATE_FILE)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # frees the space a full disk needs back
        raise
    _publish(run_dir, tmp, final, keep_last)
    return final.relative_to(run_dir).as_posix(), "peft_adapter" if method == "lora" else "safetensors"


def save_sharded_checkpoint(run_dir: Path, model, optimizer, step: int, trainer_state: dict,
                            keep_last: int, is_main: bool) -> tuple[str, str]:
    """``save_checkpoint`` for an FSDP2-sharded full finetuning run. Every rank calls it (it
    gathers and writes collectively); rank 0 writes model.safetensors and trainer_state.pt.

    Returns:
        (path relative to run_dir, "safetensors")
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                         get_optimizer_state_dict)

    from .distributed import barrier
    final, tmp = _folders(run_dir, step, "sharded", create=is_main)  # one name: every rank writes into it
    barrier()
    # gathered one parameter at a time into rank 0's CPU memory; the other ranks get {}
    weights = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    dcp.save({"optimizer": get_optimizer_state_dict(model, optimizer)},
             checkpoint_id=str(tmp / SHARDED_OPTIMIZER))
    if is_main:
        try:
            model.save_pretrained(tmp, state_dict=weights)
            torch.save({**trainer_state, "step": step, "optimizer_sharded": SHARDED_OPTIMIZER, "rng": rng_state()},
                       tmp / STATE_FILE)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _publish(run_dir, tmp, final, keep_last)
    barrier()
    return final.relative_to(run_dir).as_posix(), "safetensors"


def _folders(run_dir: Path, step: int, tag: str, create: bool = True) -> tuple[Path, Path]:
    """(final folder, an empty temporary folder beside it) for checkpoint ``step``.

    Raises:
        OSError: checkpoints/ is a symbolic link (a run folder from a workspace must not point our
            writes, and prunes, elsewhere).
    """
    root = Path(run_dir) / "checkpoints"
    final = root / step_dir_name(step)
    tmp = root / f".tmp-{final.name}-{tag}"
    if create:
        if root.is_symlink():
            raise OSError(f"{root} is a symbolic link; checkpoints are only written inside the run folder")
        root.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(root)
        tmp.mkdir()
    return final, tmp


def _publish(run_dir: Path, tmp: Path, final: Path, keep_last: int) -> None:
    """Rename the finished temporary folder into place, then prune to the newest ``keep_last``."""
    try:
        replaced = _set_aside(final) if final.exists() else None  # re-saving the step we resumed from
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)
    for old in list_checkpoints(run_dir)[:-keep_last]:
        shutil.rmtree(_set_aside(old), ignore_errors=True)


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
        _check_keys(path, missing, unexpected)
    state = load_trainer_state(path / STATE_FILE)
    if "optimizer_sharded" in state:  # written by an FSDP run: resharded to this (unsharded) model
        _load_sharded_optimizer(path / state["optimizer_sharded"], model, optimizer)
    else:
        optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return state


def load_sharded_checkpoint(path: Path, model, optimizer, is_main: bool) -> dict:
    """``load_checkpoint`` for an FSDP2-sharded model; every rank calls it. Rank 0 reads
    model.safetensors and broadcasts it shard by shard; each rank reads its part of the optimizer
    state (resharded when the number of ranks changed).

    Raises:
        RuntimeError: the checkpoint was written without sharding (its optimizer state is keyed by
            parameter position, not by name).
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
    state = load_trainer_state(path / STATE_FILE)
    if "optimizer_sharded" not in state:
        raise RuntimeError(f"checkpoint {path.name} was written by a run without launcher.sharding fsdp: "
                           "resume it with sharding: none")
    weights = load_file(str(path / "model.safetensors")) if is_main else {}
    result = set_model_state_dict(model, weights, options=StateDictOptions(
        full_state_dict=True, broadcast_from_rank0=True, strict=False))
    _check_keys(path, result.missing_keys, result.unexpected_keys)
    _load_sharded_optimizer(path / state["optimizer_sharded"], model, optimizer)
    set_rng_state(state["rng"])
    return state


def _load_sharded_optimizer(folder: Path, model, optimizer) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict
    from torch.distributed.checkpoint.api import CheckpointException
    state = {"optimizer": get_optimizer_state_dict(model, optimizer)}  # the shapes to read into
    try:
        dcp.load(state, storage_reader=SafeFileSystemReader(folder))
    except CheckpointException as e:  # a BaseException: the recipe's failure handling would miss it
        raise RuntimeError(f"the sharded optimizer state in {folder} cannot be read: {e}") from None
    set_optimizer_state_dict(model, optimizer, state["optimizer"])


def _check_keys(path: Path, missing, unexpected) -> None:
    # lm_head is left out of model.safetensors when it is tied to the embeddings
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise RuntimeError(f"checkpoint {path} does not fit the model (missing {list(missing)[:3]}, "
                           f"unexpected {list(unexpected)[:3]})")


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
