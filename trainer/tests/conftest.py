"""Shared fixtures: a temporary cache (FINETUNE_LAB_CACHE) with a tiny base pretrained once
per session, every event validated as it is written (FINETUNE_LAB_VALIDATE_EVENTS), the Hugging
Face Hub offline (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE), and helpers
to write run folders and validate their files against schemas/."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

TRAINER = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRAINER))
PRETRAIN_STEPS = 10  # enough to make the base not random; seconds on CPU
# Every event any test's trainer writes (in process or in a subprocess, which inherits the
# environment) is validated against schemas/events.schema.json; an invalid one fails the run.
os.environ["FINETUNE_LAB_VALIDATE_EVENTS"] = "1"
# Tests never reach the Hugging Face Hub (lm-eval tasks use local data; a missing dataset must fail
# offline with a message naming it). Set before anything imports huggingface_hub or datasets, which
# read these once.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache")
    os.environ["FINETUNE_LAB_CACHE"] = str(path)
    from finetune_lab.pretrain import pretrained_builtin
    pretrained_builtin("tiny", steps=PRETRAIN_STEPS)  # warm once; runs (and subprocesses) reuse it
    return path


def base_config(**overrides) -> dict:
    """A seconds-long tiny run: LoRA on a tiny JSONL text file, evals and spectra off."""
    cfg = {
        "name": "test",
        "model": {"base": "builtin:tiny", "pretrain_steps": PRETRAIN_STEPS},
        "data": {"train": str(TRAINER / "tests" / "fixtures" / "code.jsonl"), "seq_len": 32},
        "method": "lora",
        "lora": {"rank": 4, "dropout": 0.0},
        "train": {"steps": 4, "batch_size": 2, "warmup_steps": 1, "lr": 1e-2},
        "spectra": {"every_steps": 0},
        "checkpoint": {"every_steps": 2, "keep_last": 5},
    }
    for key, value in overrides.items():
        section, _, field = key.partition(".")
        if field:
            cfg.setdefault(section, {})[field] = value
        else:
            cfg[section] = value
    return cfg


@pytest.fixture
def make_run(tmp_path):
    def make(name="run", **overrides) -> Path:
        run_dir = tmp_path / name
        run_dir.mkdir()
        (run_dir / "config.yaml").write_text(yaml.safe_dump(base_config(**overrides)))
        return run_dir
    return make


def schema(name: str) -> dict:
    from finetune_lab.config import load_schema
    return load_schema(name)


def read_events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def assert_valid_run_files(run_dir: Path) -> list[dict]:
    events = read_events(run_dir)
    validator = jsonschema.Draft7Validator(schema("events"))
    for event in events:
        errors = list(validator.iter_errors(event))
        assert not errors, f"{event['type']} event invalid: {errors[0].message}"
    jsonschema.validate(json.loads((run_dir / "status.json").read_text()), schema("status"))
    return events
