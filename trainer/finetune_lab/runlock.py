"""One trainer per run folder: an exclusive ``flock`` on ``<run>/.trainer.lock``, held for the
trainer's lifetime. The kernel drops it when the process dies, SIGKILL included, so a resume after
a crash never finds a stale lock; two windows (or a window and the CLI) that start the same run
at once get one trainer, and the second exits at once with EXIT_ALREADY_RUNNING without writing
anything."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = ".trainer.lock"


def acquire(run_dir: Path | str) -> int | None:
    """Take the run folder's lock; the caller keeps the returned descriptor open until it exits.

    Args:
        run_dir (Path | str): the run folder.

    Returns:
        int | None: the lock's descriptor, or None when another live process holds it.
    """
    path = Path(run_dir) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # who holds it, for the message of the refused one
    return fd


def holder(run_dir: Path | str) -> str:
    """The pid written by the lock's holder ('?' when unreadable)."""
    try:
        return (Path(run_dir) / LOCK_FILE).read_text(encoding="utf-8").strip() or "?"
    except OSError:
        return "?"
