"""launcher.kind torchrun: two CPU workers (gloo) train one run; rank 0 alone writes."""

import json
import os
import subprocess
import sys

from conftest import TRAINER, assert_valid_run_files, read_events

from finetune_lab.train import run

STEPS = 3


def test_torchrun_two_cpu_workers_match_one_process_with_the_global_batch(make_run):
    train = {"steps": STEPS, "warmup_steps": 1, "lr": 1e-2, "device": "cpu"}
    # the reference: one process, batch 4 = 2 ranks x 2 (rank r takes batch 2*i + r of size 2)
    single = make_run("single", train={**train, "batch_size": 4}, checkpoint={"every_steps": 0, "keep_last": 1})
    assert run(single) == 0
    ddp = make_run("ddp", train={**train, "batch_size": 2}, checkpoint={"every_steps": 0, "keep_last": 1},
                   launcher={"kind": "torchrun", "nproc_per_node": 2})
    env = {**os.environ, "PYTHONPATH": str(TRAINER), "OMP_NUM_THREADS": "1"}
    with open(ddp / "train.log", "w") as log:  # as the extension starts it: the trainer becomes torchrun
        proc = subprocess.run([sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(ddp)],
                              stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ddp, timeout=300)
    text = (ddp / "train.log").read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "torch.distributed.run" in text and "x 2 processes" in text

    events = assert_valid_run_files(ddp)
    types = [e["type"] for e in events]
    assert types.count("run_started") == 1 and types.count("run_finished") == 1  # one writer
    started = next(e for e in events if e["type"] == "run_started")
    assert started["world_size"] == 2
    assert events[-1]["status"] == "completed"
    assert [e["step"] for e in events if e["type"] == "train"] == [1, 2, 3]
    assert [e["step"] for e in events if e["type"] == "checkpoint"] == [STEPS]
    assert text.count("run completed") == 1
    status = json.loads((ddp / "status.json").read_text())
    assert status["state"] == "completed" and status["step"] == STEPS
    assert not list(ddp.glob(".status.*.tmp"))

    # sharded data + all-reduced gradients = the same losses as one process on the global batch
    ref = {e["step"]: e for e in read_events(single) if e["type"] == "train"}
    for e in (e for e in events if e["type"] == "train"):
        assert e["tokens"] == ref[e["step"]]["tokens"]
        assert abs(e["loss"] - ref[e["step"]]["loss"]) < 1e-4, (e["step"], e["loss"], ref[e["step"]]["loss"])


def test_torchrun_stop_and_resume_continue_to_the_uninterrupted_losses(make_run):
    """A two-worker run stopped after step 2 (checkpoint, stopped) and resumed under torchrun
    reaches the losses of one uninterrupted process on the global batch (the first test shows
    that reference equals an uninterrupted two-worker run)."""
    train = {"steps": 4, "warmup_steps": 1, "lr": 1e-2, "device": "cpu"}
    single = make_run("single", train={**train, "batch_size": 4}, checkpoint={"every_steps": 0, "keep_last": 1})
    assert run(single) == 0
    ddp = make_run("ddp", train={**train, "batch_size": 2}, checkpoint={"every_steps": 0, "keep_last": 2},
                   launcher={"kind": "torchrun", "nproc_per_node": 2})
    env = {**os.environ, "PYTHONPATH": str(TRAINER), "OMP_NUM_THREADS": "1"}

    def launch(*extra, stop_after=None):
        e = {**env, **({"FINETUNE_LAB_STOP_AFTER": str(stop_after)} if stop_after else {})}
        with open(ddp / "train.log", "a") as log:
            proc = subprocess.run([sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(ddp), *extra],
                                  stdout=log, stderr=subprocess.STDOUT, env=e, cwd=ddp, timeout=300)
        assert proc.returncode == 0, (ddp / "train.log").read_text()[-3000:]

    launch(stop_after=2)
    assert json.loads((ddp / "status.json").read_text())["state"] == "stopped"
    assert (ddp / "checkpoints" / "step-000002").is_dir()
    launch("--resume")

    events = assert_valid_run_files(ddp)
    started = [e for e in events if e["type"] == "run_started"]
    assert [e["resumed_from"] for e in started] == [None, 2]
    assert all(e["world_size"] == 2 for e in started)
    assert [e["status"] for e in events if e["type"] == "run_finished"] == ["stopped", "completed"]
    status = json.loads((ddp / "status.json").read_text())
    assert status["state"] == "completed" and status["step"] == 4
    losses = {e["step"]: e["loss"] for e in events if e["type"] == "train"}
    assert sorted(losses) == [1, 2, 3, 4]
    ref = {e["step"]: e["loss"] for e in read_events(single) if e["type"] == "train"}
    for step in (3, 4):  # trained by the resumed workers
        assert abs(losses[step] - ref[step]) < 1e-4, (step, losses[step], ref[step])
