"""launcher.kind torchrun on several machines, and the `finetune_lab torchrun` wrapper that Slurm
batch scripts run: two "machines" here are two torchrun agents on this host (static rendezvous at
127.0.0.1), node 0 started as the extension starts it, node 1 with the printed command."""

import json
import os
import shlex
import socket
import subprocess
import sys
import time

from conftest import TRAINER, assert_valid_run_files, read_events

from finetune_lab.train import run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_machines_train_one_run_with_node_0_writing_and_match_one_process(make_run):
    train = {"steps": 3, "warmup_steps": 1, "lr": 1e-2, "device": "cpu"}
    single = make_run("single", train={**train, "batch_size": 4}, checkpoint={"every_steps": 0, "keep_last": 1})
    assert run(single) == 0
    port = free_port()
    multi = make_run("multi", train={**train, "batch_size": 2}, checkpoint={"every_steps": 0, "keep_last": 1},
                     launcher={"kind": "torchrun", "nnodes": 2, "node_rank": 0, "nproc_per_node": 1,
                               "rdzv_endpoint": f"127.0.0.1:{port}"})
    env = {**os.environ, "PYTHONPATH": str(TRAINER), "OMP_NUM_THREADS": "1"}
    with open(multi / "train.log", "w") as log:
        node0 = subprocess.Popen([sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(multi)],
                                 stdout=log, stderr=subprocess.STDOUT, env=env, cwd=multi)
        # node 0 prints the other machine's command: run it as a user would, in a shell
        lines = []
        for _ in range(600):
            lines = (multi / "train.log").read_text().splitlines()
            if any("--node-rank 1" in line for line in lines):
                break
            node0.poll()
            assert node0.returncode is None, (multi / "train.log").read_text()
            time.sleep(0.1)
        command = next(line.strip() for line in lines if "--node-rank 1" in line)
        assert shlex.split(command)[1:] == [sys.executable, "-m", "finetune_lab", "run", "--run-dir",
                                            str(multi.resolve()), "--node-rank", "1"]
        node1 = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env, timeout=300)
        assert node0.wait(timeout=300) == 0, (multi / "train.log").read_text()[-3000:]
    assert node1.returncode == 0, node1.stdout[-2000:] + node1.stderr[-2000:]
    text = (multi / "train.log").read_text()
    assert "node 0 of 2" in text

    events = assert_valid_run_files(multi)
    types = [e["type"] for e in events]
    assert types.count("run_started") == 1 and types.count("run_finished") == 1  # node 0 alone writes
    assert next(e for e in events if e["type"] == "run_started")["world_size"] == 2
    assert events[-1]["status"] == "completed"
    ref = {e["step"]: e for e in read_events(single) if e["type"] == "train"}
    for e in (e for e in events if e["type"] == "train"):
        assert abs(e["loss"] - ref[e["step"]]["loss"]) < 1e-4, (e["step"], e["loss"], ref[e["step"]]["loss"])


def test_torchrun_wrapper_exits_0_for_a_stopped_run_and_1_for_a_bad_call(make_run):
    """`python -m finetune_lab torchrun ARGS` (Slurm's srun line): torch.distributed.run's own
    arguments; a run stopped by FINETUNE_LAB_STOP_AFTER ends stopped and the wrapper exits 0."""
    d = make_run("wrapped", train={"steps": 50, "warmup_steps": 1, "device": "cpu", "batch_size": 2},
                 checkpoint={"every_steps": 0, "keep_last": 1})
    env = {**os.environ, "PYTHONPATH": str(TRAINER), "OMP_NUM_THREADS": "1", "FINETUNE_LAB_STOP_AFTER": "2"}
    args = [sys.executable, "-m", "finetune_lab", "torchrun", "--nnodes", "1", "--nproc_per_node", "1",
            "--rdzv_id", "t1", "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{free_port()}",
            "-m", "finetune_lab", "run", "--run-dir", str(d)]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=d, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    events = read_events(d)
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "stopped"
    assert json.loads((d / "status.json").read_text())["state"] == "stopped"
    bad = subprocess.run([sys.executable, "-m", "finetune_lab", "torchrun", "--nnodes", "1"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "--run-dir" in bad.stderr
