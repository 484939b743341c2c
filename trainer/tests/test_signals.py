import json
import os
import signal
import subprocess
import sys
import time

from conftest import TRAINER, assert_valid_run_files, read_events


def test_sigint_finishes_the_step_checkpoints_and_stops(make_run):
    run_dir = make_run(train={"steps": 5000, "batch_size": 2, "warmup_steps": 1},
                       checkpoint={"every_steps": 0, "keep_last": 1})
    env = {**os.environ, "PYTHONPATH": str(TRAINER)}
    with open(run_dir / "train.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(run_dir)],
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=run_dir)
        deadline = time.time() + 90
        while time.time() < deadline:
            if (run_dir / "events.jsonl").exists() and any(e["type"] == "train" for e in read_events(run_dir)):
                break
            assert proc.poll() is None, (run_dir / "train.log").read_text()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    events = assert_valid_run_files(run_dir)
    finished = events[-1]
    assert finished["type"] == "run_finished" and finished["status"] == "stopped"
    ckpt = [e for e in events if e["type"] == "checkpoint"]
    assert ckpt and ckpt[-1]["step"] == finished["step"] < 5000
    assert (run_dir / ckpt[-1]["path"] / "trainer_state.pt").exists()
    assert json.loads((run_dir / "status.json").read_text())["state"] == "stopped"
    assert "stopping after this step" in (run_dir / "train.log").read_text()


def test_sigint_during_startup_ends_stopped_not_crashed(make_run):
    """A Stop while torch is still importing (before the trainer's own handler exists)."""
    run_dir = make_run(train={"steps": 5000, "batch_size": 2, "warmup_steps": 1})
    env = {**os.environ, "PYTHONPATH": str(TRAINER)}
    with open(run_dir / "train.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(run_dir)],
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=run_dir)
        # Signal once the start-up handler is in (it prints this line), before torch is imported.
        deadline = time.time() + 60
        while "starting (loading torch)" not in (run_dir / "train.log").read_text():
            assert time.time() < deadline and proc.poll() is None, (run_dir / "train.log").read_text()
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, (run_dir / "train.log").read_text()
    log_text = (run_dir / "train.log").read_text()
    assert "KeyboardInterrupt" not in log_text
    events = assert_valid_run_files(run_dir)
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "stopped"
    assert not any(e["type"] == "train" for e in events)
    assert json.loads((run_dir / "status.json").read_text())["state"] == "stopped"
