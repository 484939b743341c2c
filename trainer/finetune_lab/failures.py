"""What a failed run says: one line a user can act on, for the failures that are not bugs
(out of memory, a full disk, a read-only run folder, an invalid config)."""

from __future__ import annotations

import errno
import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch

from .config import ConfigError

# The trainer's exit codes beyond 0 (completed or stopped) and 1 (failed).
EXIT_INVALID_CONFIG = 2  # config.yaml is not a valid run config: nothing was trained
EXIT_ALREADY_RUNNING = 3  # another trainer holds the run folder (runlock.py): nothing was touched


LOW_SPACE = 16 * 2**20  # free bytes below which a failed write is taken for a full disk


def failure_message(e: BaseException, run_dir: Path | None = None) -> str:
    """``"<Type>: <message>"``, prefixed with what to do when the cause is the machine's, not the
    trainer's. Libraries report a full disk their own way (safetensors: "I/O error: No space left
    on device (os error 28)"; torch.save: "file write failed"), so a failed write on a file system
    with almost no space left counts as a full disk too.

    Args:
        e (BaseException): what ended the run.
        run_dir (Path | None): the run folder, to look at its file system's free space.

    Returns:
        str: the run's error (run_finished.error, status.json's error).
    """
    message = f"{type(e).__name__}: {e}"
    if isinstance(e, torch.OutOfMemoryError):  # the recipe words it with the step and the estimate (estimate.oom_message)
        return "out of GPU memory: lower train.batch_size or data.seq_len, or use LoRA. " + message
    code = e.errno if isinstance(e, OSError) else None
    if code in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in message or "os error 28" in message \
            or (code is None and _looks_like_a_full_disk(message, _free_bytes(run_dir))):
        return ("disk full: no space left for the run folder; free space (or raise the quota), then "
                "Resume continues from the last checkpoint. " + message)
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or "Read-only file system" in message or "os error 30" in message:
        return "the run folder is not writable (read-only file system or permissions). " + message
    if isinstance(e, OSError) and e.errno == errno.ELOOP:
        return "a file of the run folder is a symbolic link; the trainer writes only real files in its run folder. " + message
    return message


def _looks_like_a_full_disk(message: str, free: float) -> bool:
    # torch.save reports a short write as "[enforce fail at inline_container.cc] ... file write
    # failed" or "unexpected pos N vs M"; the half-written file is gone by now, so "almost no space"
    # is judged with some slack for writes that mention writing.
    writing = any(s in message for s in ("inline_container", "PytorchStreamWriter")) or "write" in message.lower()
    return free < LOW_SPACE or (writing and free < 2**30)


def _free_bytes(run_dir: Path | None) -> float:
    try:
        return shutil.disk_usage(run_dir).free if run_dir is not None else math.inf
    except OSError:
        return math.inf


def refuse_config(run_dir: Path, error: ConfigError) -> int:
    """A config.yaml that does not validate: nothing trains. The error names the field; it goes
    to stderr (train.log) and, where the folder is writable, to status.json and a run_finished
    event, so the run reads failed with the reason.

    Returns:
        int: EXIT_INVALID_CONFIG.
    """
    message = str(error)
    print(f"error: {message}", file=sys.stderr, flush=True)
    try:
        from .events import EventWriter
        from .status import StatusFile
        EventWriter(run_dir).emit("run_finished", status="failed", error=message, step=0, traceback=None)
        status = StatusFile(run_dir)
        previous = _read_json(status.path)
        status.fields.update(step=previous.get("step", 0) if isinstance(previous.get("step"), int) else 0,
                             started=time.time())
        status.finish("failed", message)
    except Exception as e:  # noqa: BLE001 - the refusal stands even when it cannot be recorded
        print(f"error: could not record the failure in {run_dir}: {failure_message(e)}", file=sys.stderr, flush=True)
    return EXIT_INVALID_CONFIG


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}
