"""events.jsonl: one JSON object a line, flushed per line so the extension can tail it.

Every event is ``{"v": 1, "type": ..., "time": ..., **fields}`` (schemas/events.schema.json).
With ``FINETUNE_LAB_VALIDATE_EVENTS=1`` each event is validated against that schema before it
is written and an invalid one raises ``InvalidEvent`` (the test suite sets it; off by default,
since validating every line costs time in a long run).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import threading
import time
from functools import lru_cache
from pathlib import Path

from .config import load_schema

PROTOCOL_VERSION = 1
ENVELOPE = ("v", "time")  # written by emit on every event, beside ``type``
VALIDATE_ENV = "FINETUNE_LAB_VALIDATE_EVENTS"


class InvalidEvent(ValueError):
    """An event that does not match schemas/events.schema.json (only raised while validating)."""


def _finite(value):
    # JSON has no NaN/Infinity: a non-finite value of a nullable field (grad_norm, ...) is
    # written as null. The training loss never gets here non-finite (see _check_loss).
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _check_loss(type: str, fields: dict) -> None:
    # A train event's loss is required and finite: a diverged step ends the run instead
    # (train.Diverged); it must never be written as null.
    if type == "train" and not (isinstance(fields.get("loss"), (int, float)) and math.isfinite(fields["loss"])):
        raise InvalidEvent(f"train event at step {fields.get('step')}: loss must be a finite number, "
                           f"got {fields.get('loss')!r}")


def train_event_fields() -> tuple[str, ...]:
    """The fields of a ``train`` event besides the envelope (``v``, ``time``), in the schema's
    order: the properties of the schema's ``train`` definition, its one definition.

    Returns:
        tuple[str, ...]: e.g. ("type", "step", "loss", "lr", ...).
    """
    properties = load_schema("events")["definitions"]["train"]["properties"]
    return tuple(name for name in properties if name not in ENVELOPE)


def validating() -> bool:
    """Whether ``FINETUNE_LAB_VALIDATE_EVENTS`` asks for every event to be validated."""
    return os.environ.get(VALIDATE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@lru_cache(maxsize=1)
def _validator():
    import jsonschema
    return jsonschema.Draft7Validator(load_schema("events"))


def validate_event(event: dict) -> None:
    """Raise ``InvalidEvent`` naming the event type and the error when ``event`` does not match
    schemas/events.schema.json, or when a train event has other fields than its definition's.

    Args:
        event (dict): a complete event, envelope included.
    """
    import jsonschema
    errors = list(_validator().iter_errors(event))
    if errors:
        error = jsonschema.exceptions.best_match(_branch_errors(errors, event.get("type")) or errors)
        where = "/".join(str(p) for p in error.absolute_path)
        raise InvalidEvent(f"{event.get('type')} event invalid{f' at {where}' if where else ''}: {error.message}")
    if event.get("type") == "train":
        _check_train_fields(event)


def _check_train_fields(event: dict) -> None:
    # The schema lists a train event's fields but cannot forbid others (additionalProperties
    # would reject the top-level v and time): the trainer writes exactly the listed ones.
    expected = set(ENVELOPE) | set(train_event_fields())
    if set(event) != expected:
        raise InvalidEvent(f"train event invalid: fields {sorted(set(event) - expected)} are not in the "
                           f"schema's train definition, {sorted(expected - set(event))} are missing")


def _branch_errors(errors: list, type: str | None) -> list:
    # A failed top-level oneOf only says "not valid under any of the given schemas": report
    # the errors of the branch for the event's own type instead.
    branches = load_schema("events")["oneOf"]
    index = next((i for i, b in enumerate(branches) if b.get("$ref") == f"#/definitions/{type}"), None)
    return [sub for e in errors if e.validator == "oneOf" for sub in e.context
            if index is not None and sub.schema_path and sub.schema_path[0] == index]


class EventWriter:
    """Appends events to ``run_dir/events.jsonl`` (schemas/events.schema.json).

    Each line goes out in one ``write`` on an O_APPEND descriptor, so a SIGKILL leaves every
    line whole or absent. A line cut short anyway (disk full mid-write, a crash of an older
    trainer) must not glue itself to the next line a resumed run appends: a failed write is
    truncated away, and a file that does not end in a newline gets one before the first append.
    """

    def __init__(self, run_dir: Path | str):
        self.path = Path(run_dir) / "events.jsonl"
        self._lock = threading.Lock()
        self._validate = validating()
        self._checked_tail = False

    def emit(self, type: str, **fields) -> dict:
        """Write one event line: ``{"v": 1, "type": type, "time": <unix s>, **fields}``.

        Raises:
            InvalidEvent: a train event without a finite loss; with FINETUNE_LAB_VALIDATE_EVENTS
                set, any event the schema rejects (nothing is written then).
            OSError: the line could not be written (disk full, read-only folder); the file is
                left as it was before this call.
        """
        _check_loss(type, fields)
        event = {"v": PROTOCOL_VERSION, "type": type, "time": time.time(), **_finite(fields)}
        if self._validate:
            validate_event(event)
        data = (json.dumps(event, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            # O_NOFOLLOW: a run folder from a workspace must not point our writes elsewhere.
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            try:
                if not self._checked_tail:
                    _end_torn_line(fd)
                    self._checked_tail = True
                _append_whole(fd, data)
            finally:
                os.close(fd)
        return event


def _end_torn_line(fd: int) -> None:
    # A last line without its newline is a torn write: end it, so it stays one malformed line
    # (readers count and skip it) instead of swallowing the next event.
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        _append_whole(fd, b"\n")


def _append_whole(fd: int, data: bytes) -> None:
    """Append ``data`` completely or not at all (a short write is truncated away, then raised)."""
    start = os.fstat(fd).st_size
    written = 0
    try:
        while written < len(data):
            n = os.write(fd, data[written:])
            if n <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written += n
    except OSError:
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_size != start:  # some bytes went out (a short write, or the failing one)
                os.ftruncate(fd, start)
        raise


def read_events(run_dir: Path | str) -> list[dict]:
    """Every complete line of a run's events.jsonl that is a JSON object; anything else (a torn
    or binary line, invalid UTF-8, a nesting too deep to parse, a JSON value that is not an
    object) is skipped. Never raises for the file's content; a missing file is no events."""
    path = Path(run_dir) / "events.jsonl"
    events = []
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return []
    with f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # the trainer may be mid-write
            try:
                event = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            if isinstance(event, dict):
                events.append(event)
    return events
