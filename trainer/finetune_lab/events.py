"""events.jsonl: one JSON object a line, flushed per line so the extension can tail it.

Every event is ``{"v": 1, "type": ..., "time": ..., **fields}`` (schemas/events.schema.json).
With ``FINETUNE_LAB_VALIDATE_EVENTS=1`` each event is validated against that schema before it
is written and an invalid one raises ``InvalidEvent`` (the test suite sets it; off by default,
since validating every line costs time in a long run).
"""

from __future__ import annotations

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
    """Appends events to ``run_dir/events.jsonl`` (schemas/events.schema.json)."""

    def __init__(self, run_dir: Path | str):
        self.path = Path(run_dir) / "events.jsonl"
        self._lock = threading.Lock()
        self._validate = validating()

    def emit(self, type: str, **fields) -> dict:
        """Write one event line: ``{"v": 1, "type": type, "time": <unix s>, **fields}``.

        Raises:
            InvalidEvent: a train event without a finite loss; with FINETUNE_LAB_VALIDATE_EVENTS
                set, any event the schema rejects (nothing is written then).
        """
        _check_loss(type, fields)
        event = {"v": PROTOCOL_VERSION, "type": type, "time": time.time(), **_finite(fields)}
        if self._validate:
            validate_event(event)
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
