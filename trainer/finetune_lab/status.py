"""status.json: replaced atomically (temp file + os.replace), heartbeat while running."""

from __future__ import annotations

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

    def _write_locked(self) -> None:
        self.fields["heartbeat"] = time.time()
        tmp = self.path.with_name(f".status.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.fields), encoding="utf-8")
        os.replace(tmp, self.path)

    def start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(HEARTBEAT_S):
                with self._lock:
                    self._write_locked()

        self._thread = threading.Thread(target=beat, name="status-heartbeat", daemon=True)
        self._thread.start()

    def finish(self, state: str, error: str | None = None) -> None:
        """Stop the heartbeat and write the final state (completed | failed | stopped)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.update(state=state, error=error, finished=time.time(), phase="done")
