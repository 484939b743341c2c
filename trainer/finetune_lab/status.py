"""status.json: replaced atomically (temp file + os.replace), heartbeat while running."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path

HEARTBEAT_S = 5.0  # the schema asks for at least every 10 s


class StatusFile:
    """Owns ``run_dir/status.json`` (schemas/status.schema.json) for the trainer's lifetime."""

    def __init__(self, run_dir: Path | str, total_steps: int = 0):
        self.path = Path(run_dir) / "status.json"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fields = {
            "v": 1, "state": "running", "pid": os.getpid(), "heartbeat": None,
            "started": time.time(), "finished": None, "step": 0, "total_steps": total_steps,
            "phase": "starting", "loss": None, "error": None,
        }

    def update(self, **fields) -> None:
        """Change some fields and rewrite the file."""
        with self._lock:
            self.fields.update(fields)
            self._write_locked()

    def update_throttled(self, min_interval_s: float = 1.0, **fields) -> None:
        """Change fields; rewrite only if the last write is older than ``min_interval_s``
        (per-step progress; the heartbeat writes the rest)."""
        with self._lock:
            self.fields.update(fields)
            if time.time() - (self.fields["heartbeat"] or 0) >= min_interval_s:
                self._write_locked()

    def _write_locked(self, last_resort: bool = False) -> None:
        self.fields["heartbeat"] = time.time()
        data = json.dumps(self.fields).encode("utf-8")
        tmp = self.path.with_name(f".status.{os.getpid()}.tmp")
        try:
            _write_new(tmp, data)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if not last_resort:
                raise
            # The final state on a full disk: a temp file needs a new block, but rewriting the
            # file in place fits in the block it already has (a status is a few hundred bytes).
            # Not atomic, so only here, where the alternative is a run that never says it ended.
            _overwrite_in_place(self.path, data)

    def start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(HEARTBEAT_S):
                with self._lock, contextlib.suppress(OSError):
                    # A failed beat (disk full) is the main thread's to report when it next writes;
                    # the beat carries on, so the run is not called stalled while that happens.
                    self._write_locked()

        self._thread = threading.Thread(target=beat, name="status-heartbeat", daemon=True)
        self._thread.start()

    def finish(self, state: str, error: str | None = None) -> None:
        """Stop the heartbeat and write the final state (completed | failed | stopped)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            self.fields.update(state=state, error=error, finished=time.time(), phase="done")
            self._write_locked(last_resort=True)


def _write_new(path: Path, data: bytes) -> None:
    # O_NOFOLLOW and O_EXCL after an unlink: a planted symlink never redirects the write.
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _overwrite_in_place(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
