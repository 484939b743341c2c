"""A run whose training loss stops being finite ends failed at once: no train event and no
checkpoint for that step or after it, run_finished says where (``diverged``), the last good
checkpoints stay.

The schema caps ``train.lr`` at 1, and lr 1 does not diverge the tiny model within 20 steps
(AdamW or Lion, LoRA or full, clipped or not), so the absurd learning rate is put into the
schedule instead: ``get_lr`` returns ABSURD_LR from optimizer step index ABSURD_FROM on.
"""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import TRAINER, assert_valid_run_files

from finetune_lab import train as train_module
from finetune_lab.checkpoint import list_checkpoints
from finetune_lab.events import EventWriter, InvalidEvent, read_events
from finetune_lab.train import Diverged, nonfinite_name, run

ABSURD_LR = 1e30
ABSURD_FROM = 2  # 0-based index of the first update at ABSURD_LR: optimizer step 3
# Step 3's own loss comes from the forward pass before its update, so it is still finite; step
# 4's forward pass sees the blown-up weights: its loss is NaN (measured: LoRA and full, seed 0).
DIVERGED_AT = ABSURD_FROM + 2
ERROR = f"loss diverged (NaN) at step {DIVERGED_AT}"


def absurd_schedule(real_get_lr, start: int = ABSURD_FROM, lr: float = ABSURD_LR):
    def get_lr(step, *args, **kwargs):
        return lr if step >= start else real_get_lr(step, *args, **kwargs)
    return get_lr


@pytest.fixture
def absurd_lr(monkeypatch):
    monkeypatch.setattr(train_module, "get_lr", absurd_schedule(train_module.get_lr))


def checkpoint_steps(run_dir) -> list[int]:
    return [int(p.name.split("-")[1]) for p in list_checkpoints(run_dir)]


def assert_diverged_run(run_dir, train_steps: list[int], kept: list[int]) -> list[dict]:
    """The folder of a run that diverged at DIVERGED_AT: valid, failed, the good checkpoints kept."""
    events = assert_valid_run_files(run_dir)
    trained = [e for e in events if e["type"] == "train"]
    assert [e["step"] for e in trained] == train_steps
    assert all(isinstance(e["loss"], float) and math.isfinite(e["loss"]) for e in trained)
    finished = events[-1]
    assert finished["type"] == "run_finished" and finished["status"] == "failed"
    assert finished["error"] == ERROR and finished["step"] == DIVERGED_AT
    assert finished["diverged"] == {"step": DIVERGED_AT, "value": "NaN"}
    assert finished["traceback"] is None  # not a crash
    assert all(e["step"] < DIVERGED_AT for e in events if e["type"] == "checkpoint")
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and status["error"] == ERROR and status["step"] == DIVERGED_AT
    assert checkpoint_steps(run_dir) == kept
    for path in list_checkpoints(run_dir):  # the good ones are whole and finite
        weights = load_file(str(path / "adapter_model.safetensors"))
        assert weights and all(torch.isfinite(w).all() for w in weights.values()), path.name
    return events


def test_diverged_run_ends_failed_keeping_the_good_checkpoints(make_run, absurd_lr, capsys):
    run_dir = make_run(train={"steps": 8, "batch_size": 2, "warmup_steps": 1, "lr": 1e-2},
                       checkpoint={"every_steps": 1, "keep_last": 2})
    assert run(run_dir) == 1
    assert_diverged_run(run_dir, train_steps=[1, 2, 3], kept=[2, 3])  # keep_last pruned step 1 only
    assert f"run failed: {ERROR}" in capsys.readouterr().out  # the line train.log gets


def test_divergence_between_logging_steps_reports_the_first_bad_step(make_run, absurd_lr, monkeypatch):
    """log_every_steps 3: steps 4 and 5 are not synced (the loss stays on the device); the sync
    at step 6 finds the record of step 4 and stops before step 6's event and checkpoint."""
    synced = []
    sync_step = train_module.Recipe._sync_step

    def spy(self, *args):
        synced.append(self.step)
        return sync_step(self, *args)

    monkeypatch.setattr(train_module.Recipe, "_sync_step", spy)
    run_dir = make_run(train={"steps": 8, "batch_size": 2, "warmup_steps": 1, "lr": 1e-2, "log_every_steps": 3},
                       checkpoint={"every_steps": 3, "keep_last": 2})
    assert run(run_dir) == 1
    assert synced == [1, 3, 6]
    assert_diverged_run(run_dir, train_steps=[1, 3], kept=[3])


def test_a_diverged_run_resumes_from_its_last_checkpoint(make_run, absurd_lr, monkeypatch):
    """The newest checkpoint holds the weights after step DIVERGED_AT - 1 or earlier. Here it is
    step 2's (every 2 steps), from before the first absurd update (step 3's), so a resume at a
    sane rate trains on; step 3's own checkpoint would hold the blown-up weights."""
    run_dir = make_run(train={"steps": 5, "batch_size": 2, "warmup_steps": 1, "lr": 1e-2},
                       checkpoint={"every_steps": 2, "keep_last": 2})
    assert run(run_dir) == 1
    assert checkpoint_steps(run_dir) == [2]
    monkeypatch.undo()  # a sane learning rate again
    assert run(run_dir, resume=True) == 0
    events = assert_valid_run_files(run_dir)
    assert [e["resumed_from"] for e in events if e["type"] == "run_started"] == [None, 2]
    assert [e["step"] for e in events if e["type"] == "train"] == [1, 2, 3, 3, 4, 5]
    assert [e["status"] for e in events if e["type"] == "run_finished"] == ["failed", "completed"]


def test_torchrun_every_rank_stops_when_one_rank_diverges(make_run, tmp_path):
    """Two CPU workers; only rank 1 trains at the absurd rate, so only its loss is NaN at step
    4. The all-reduced loss is NaN on both ranks: both stop at step 4, rank 0 writes the end."""
    run_dir = make_run("ddp", train={"steps": 6, "batch_size": 2, "warmup_steps": 1, "lr": 1e-2, "device": "cpu"},
                       checkpoint={"every_steps": 2, "keep_last": 5})
    worker = tmp_path / "absurd_rank1.py"
    worker.write_text(
        "import os, sys\n"
        "from finetune_lab import train\n"
        "if os.environ['RANK'] == '1':\n"
        "    real = train.get_lr\n"
        f"    train.get_lr = lambda step, *a, **k: {ABSURD_LR!r} if step >= {ABSURD_FROM} else real(step, *a, **k)\n"
        "sys.exit(train.run(sys.argv[1]))\n")
    env = {**os.environ, "PYTHONPATH": str(TRAINER), "OMP_NUM_THREADS": "1"}
    with open(run_dir / "train.log", "w") as log:
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                               str(worker), str(run_dir)],
                              stdout=log, stderr=subprocess.STDOUT, env=env, cwd=run_dir, timeout=300)
    text = (run_dir / "train.log").read_text()
    assert proc.returncode != 0, text[-3000:]
    assert f"rank 0: run failed: {ERROR}" in text and f"rank 1: run failed: {ERROR}" in text, text[-3000:]
    events = assert_diverged_run(run_dir, train_steps=[1, 2, 3], kept=[2])
    assert [e["type"] for e in events].count("run_finished") == 1


@pytest.mark.parametrize("value, name", [(float("nan"), "NaN"), (float("inf"), "Infinity"),
                                         (float("-inf"), "-Infinity")])
def test_diverged_names_the_value_as_the_schema_does(value, name):
    assert nonfinite_name(value) == name
    e = Diverged(7, value)
    assert str(e) == f"loss diverged ({name}) at step 7"
    assert e.payload() == {"step": 7, "value": name}


def test_a_train_event_never_carries_a_non_finite_or_null_loss(tmp_path):
    events = EventWriter(tmp_path)
    fields = dict(step=1, lr=1e-3, grad_norm=float("nan"), tokens_per_s=None, tokens=8, memory_mb=None)
    for loss in (float("nan"), float("inf"), None):
        with pytest.raises(InvalidEvent, match="loss must be a finite number"):
            events.emit("train", loss=loss, **fields)
    assert read_events(tmp_path) == []
    written = events.emit("train", loss=1.5, **fields)
    assert written["grad_norm"] is None  # nullable fields still go through _finite
