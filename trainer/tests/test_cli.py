"""The command line's doctor and pretrain subcommands, run as a user runs them."""

import json
import os
import subprocess
import sys
import time

from conftest import TRAINER


def cli(*args, env=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(TRAINER), **(env or {})}
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "finetune_lab", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    return proc, time.time() - t0


def test_doctor_prints_json():
    proc, _ = cli("doctor")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    for key in ("python", "torch", "cuda", "gpus", "libraries"):
        assert key in info, key
    assert info["python"] == sys.version.split()[0]
    assert isinstance(info["cuda"]["available"], bool) and isinstance(info["gpus"], list)
    assert info["libraries"]["transformers"] and info["libraries"]["peft"]
    assert info["distributed"]["available"] and info["distributed"]["gloo"] and info["distributed"]["fsdp2"]
    for gpu in info["gpus"]:  # the memory estimate reads these (none on a CPU machine; gpu.sh checks them)
        assert {"index", "name", "memory_mb", "capability", "bf16"} <= set(gpu)


def test_pretrain_creates_the_cache_entry_then_finds_it(tmp_path):
    env = {"FINETUNE_LAB_CACHE": str(tmp_path / "cache")}
    first, t_first = cli("pretrain", "--model", "builtin:tiny", "--steps", "2", env=env)
    assert first.returncode == 0, first.stderr
    assert "pretrain tiny step 2/2" in first.stdout
    kind, folder = first.stdout.strip().splitlines()[-1].split(" ", 1)
    assert kind == "pretrained" and os.path.dirname(folder) == str(tmp_path / "cache" / "bases")
    weights = os.path.join(folder, "model.safetensors")
    assert os.path.exists(weights) and os.path.exists(os.path.join(folder, "pretrain.json"))
    mtime = os.stat(weights).st_mtime_ns

    second, t_second = cli("pretrain", "--model", "builtin:tiny", "--steps", "2", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"cached {folder}"  # no progress lines: nothing trained or loaded
    assert os.stat(weights).st_mtime_ns == mtime
    print(f"pretrain: first {t_first:.1f}s, cached {t_second:.1f}s")
