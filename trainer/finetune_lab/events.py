"""events.jsonl: one JSON object a line, flushed per line so the extension can tail it."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

PROTOCOL_VERSION = 1


def _finite(value):
    # JSON has no NaN/Infinity; a diverged loss is reported as null rather than an invalid line.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class EventWriter:
    """Appends events to ``run_dir/events.jsonl`` (schemas/events.schema.json)."""

    def __init__(self, run_dir: Path | str):
        self.path = Path(run_dir) / "events.jsonl"
        self._lock = threading.Lock()

    def emit(self, type: str, **fields) -> dict:
        """Write one event line: ``{"v": 1, "type": type, "time": <unix s>, **fields}``."""
        event = {"v": PROTOCOL_VERSION, "type": type, "time": time.time(), **_finite(fields)}
        line = json.dumps(event, separators=(",", ":")) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
        return event


def read_events(run_dir: Path | str) -> list[dict]:
    """Every complete, parseable line of a run's events.jsonl (partial last line skipped)."""
    path = Path(run_dir) / "events.jsonl"
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events
