import json
import math
import os

import pytest
from conftest import TRAINER, assert_valid_run_files, read_events

from finetune_lab.events import ENVELOPE, EventWriter, InvalidEvent, train_event_fields
from finetune_lab.train import run


def train_losses(events):
    return {e["step"]: e["loss"] for e in events if e["type"] == "train"}


def test_lora_run_writes_valid_events_and_status(make_run):
    run_dir = make_run(evals={"every_steps": 2, "forgetting": [
        {"name": "english", "type": "loss", "data": "builtin:brown#heldout", "max_examples": 2}]},
        spectra={"every_steps": 2, "top_k": 8})
    assert run(run_dir) == 0
    events = assert_valid_run_files(run_dir)
    types = [e["type"] for e in events]
    assert types[0] == "pretrain" and events[0]["cached"] is True
    assert types.count("train") == 4 and types[-1] == "run_finished"
    started = next(e for e in events if e["type"] == "run_started")
    assert 0 < started["params"]["trainable"] < started["params"]["total"]
    assert [e["step"] for e in events if e["type"] == "eval"] == [0, 2, 4]
    assert {e["step"] for e in events if e["type"] == "spectrum"} == {2, 4}
    assert [e["path"] for e in events if e["type"] == "checkpoint"] == ["checkpoints/step-000002", "checkpoints/step-000004"]
    assert (run_dir / "checkpoints/step-000004/adapter_model.safetensors").exists()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed" and status["step"] == 4 and status["phase"] == "done"
    assert all(math.isfinite(loss) for loss in train_losses(events).values())


def test_full_run_instruction_data(make_run):
    run_dir = make_run(method="full", data={"train": "builtin:arithmetic", "format": "instruction", "seq_len": 128},
                       train={"steps": 3, "batch_size": 2, "grad_accum": 2, "optimizer": "lion", "lr": 1e-4},
                       checkpoint={"every_steps": 0, "keep_last": 1})
    assert run(run_dir) == 0
    events = assert_valid_run_files(run_dir)
    started = next(e for e in events if e["type"] == "run_started")
    assert started["params"]["trainable"] == started["params"]["total"]
    ckpts = [e for e in events if e["type"] == "checkpoint"]
    assert len(ckpts) == 1 and ckpts[0]["format"] == "safetensors"
    assert (run_dir / ckpts[0]["path"] / "model.safetensors").exists()


def test_resume_continues_to_the_same_losses(make_run):
    straight = make_run("straight", train={"steps": 4, "batch_size": 2, "warmup_steps": 1, "lr": 1e-2},
                        lora={"rank": 4, "dropout": 0.1})
    assert run(straight) == 0
    resumed = make_run("resumed", train={"steps": 4, "batch_size": 2, "warmup_steps": 1, "lr": 1e-2},
                       lora={"rank": 4, "dropout": 0.1})
    assert run(resumed, stop_after=2) == 0
    assert json.loads((resumed / "status.json").read_text())["state"] == "stopped"
    assert run(resumed, resume=True) == 0
    events = assert_valid_run_files(resumed)
    assert [e["resumed_from"] for e in events if e["type"] == "run_started"] == [None, 2]
    a, b = train_losses(read_events(straight)), train_losses(events)
    assert set(b) == {1, 2, 3, 4}
    for step in (3, 4):
        assert abs(a[step] - b[step]) < 1e-6, (step, a[step], b[step])


def test_crash_ends_failed_with_the_message(make_run):
    run_dir = make_run(data={"train": "missing/nothing.jsonl"})
    assert run(run_dir) == 1
    events = assert_valid_run_files(run_dir)
    finished = events[-1]
    assert finished["type"] == "run_finished" and finished["status"] == "failed"
    assert "nothing.jsonl" in finished["error"] and "Traceback" in finished["traceback"]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "nothing.jsonl" in status["error"]


def test_bad_config_fails_naming_the_field(make_run):
    run_dir = make_run(train={"steps": 0})
    assert run(run_dir) == 2  # refused before anything trains
    events = assert_valid_run_files(run_dir)
    assert "train.steps" in events[-1]["error"]


def test_resume_keeps_eval_deltas_relative_to_the_base(make_run):
    evals = {"every_steps": 2,
             "learning": [{"name": "code", "type": "loss", "data": str(TRAINER / "tests" / "fixtures" / "code.jsonl"),
                           "max_examples": 2}],
             "forgetting": [{"name": "english", "type": "loss", "data": "builtin:brown#heldout", "max_examples": 2}]}
    run_dir = make_run(evals=evals)
    assert run(run_dir, stop_after=2) == 0
    assert run(run_dir, resume=True) == 0
    events = assert_valid_run_files(run_dir)
    evals_by_step = {}
    for e in events:
        if e["type"] == "eval":
            evals_by_step.setdefault(e["step"], e)
    assert sorted(evals_by_step) == [0, 2, 4]
    base = evals_by_step[0]
    for role in ("learning", "forgetting"):
        after = evals_by_step[4][role]  # evaluated by the resumed process
        assert after["value"] != base[role]["value"]
        assert math.isclose(after["delta"], after["value"] - base[role]["value"], abs_tol=1e-9), role


def test_train_events_have_exactly_the_schemas_train_fields(make_run):
    """The schema's train definition is the one list of a train event's fields (the dashboard's
    charts and the CSV export read it too): a run writes all of them and nothing else."""
    run_dir = make_run(train={"steps": 2, "batch_size": 2, "warmup_steps": 1, "lr": 1e-2},
                       checkpoint={"every_steps": 0, "keep_last": 1})
    assert run(run_dir) == 0
    fields = train_event_fields()
    assert fields[:3] == ("type", "step", "loss") and "v" not in fields and "time" not in fields
    trained = [e for e in assert_valid_run_files(run_dir) if e["type"] == "train"]
    assert [e["step"] for e in trained] == [1, 2]
    for e in trained:
        assert set(e) == set(ENVELOPE) | set(fields), sorted(set(e) ^ (set(ENVELOPE) | set(fields)))


def test_events_are_validated_as_they_are_written(tmp_path):
    """conftest sets FINETUNE_LAB_VALIDATE_EVENTS=1: an event the schema rejects raises, naming
    its type, and is not written."""
    assert os.environ.get("FINETUNE_LAB_VALIDATE_EVENTS") == "1"
    events = EventWriter(tmp_path)
    with pytest.raises(InvalidEvent, match="checkpoint event invalid.*'path' is a required property"):
        events.emit("checkpoint", step=2)
    train = dict(step=1, loss=2.0, lr=1e-3, grad_norm=None, tokens_per_s=None, tokens=8, memory_mb=None)
    with pytest.raises(InvalidEvent, match="train event invalid.*'memory_mb' is a required property"):
        events.emit("train", **{k: v for k, v in train.items() if k != "memory_mb"})
    with pytest.raises(InvalidEvent, match=r"train event invalid: fields \['extra'\] are not in the schema"):
        events.emit("train", **train, extra=1)  # the schema allows it; the trainer's own rule does not
    assert not (tmp_path / "events.jsonl").exists()
    events.emit("log", level="info", message="fine")
    events.emit("train", **train)
    assert [e["type"] for e in read_events(tmp_path)] == ["log", "train"]
