"""Code execution, when allowed, happens in the sandbox (sandbox.py): generated programs that
allocate without bound, open a socket to the internet or loop forever are stopped there, and the
training process only reports it on the eval."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import PRETRAIN_STEPS  # noqa: E402
from finetune_lab.evals import Evaluator  # noqa: E402
from finetune_lab.tokenizer import ByteTokenizer  # noqa: E402

UNSAFE = Path(__file__).resolve().parent / "fixtures" / "lm_eval_unsafe"


@pytest.fixture
def allowed(monkeypatch):
    monkeypatch.setenv("FINETUNE_LAB_ALLOW_CODE_EXECUTION", "1")
    monkeypatch.setenv("FINETUNE_LAB_SANDBOX_CPU_S", "3")  # the looping program: stopped within seconds
    monkeypatch.setenv("FINETUNE_LAB_SANDBOX_MEMORY_MB", "1024")


@pytest.fixture(params=["namespace", "python"])
def network(request, monkeypatch):
    """Both ways the sandbox cuts the network: a network namespace (unshare), and where that is
    not available the Python-level guard."""
    from finetune_lab import sandbox
    if request.param == "namespace" and not sandbox.network_prefix():
        pytest.skip("unshare --net is not available on this machine")
    if request.param == "python":
        monkeypatch.setattr(sandbox, "network_prefix", lambda: ())
    return request.param


@pytest.fixture(scope="module")
def base():
    from finetune_lab.pretrain import pretrained_builtin
    return pretrained_builtin("tiny", steps=PRETRAIN_STEPS).eval()


@pytest.fixture
def listener(monkeypatch):
    """A TCP port on this machine that accepts connections: reachable from this process, so a
    program that reaches it from the sandbox would show that the network was not cut."""
    import socket
    server = socket.create_server(("127.0.0.1", 0))
    monkeypatch.setenv("FL_TEST_PORT", str(server.getsockname()[1]))
    socket.create_connection(server.getsockname(), timeout=5).close()  # reachable from outside the sandbox
    yield server
    server.close()


def task(name: str, task_name: str) -> dict:
    return {"name": name, "type": "lm_eval", "task": task_name, "include_path": str(UNSAFE), "batch_size": 2}


def test_generated_code_is_confined(allowed, listener, network, base, tmp_path):
    """Three programs: one that completes, one that allocates 50 GiB (address-space limit), one
    that connects to a port this test listens on (no network). Only the first runs to its end."""
    ev = Evaluator({"learning": [task("escape", "fl_test_escape")]}, ByteTokenizer(), 64, "cpu", tmp_path)
    entry = ev.evaluate(base, 0)["tasks"][0]
    assert entry.get("error") is None, entry
    assert entry["value"] == pytest.approx(1 / 3) and entry["n"] == 3 and entry["metric"] == "ran"
    box = entry["sandbox"]
    assert box["cpu_s"] == 3 and box["memory_mb"] == 1024
    assert box["network"] == ("none (network namespace)" if network == "namespace" else "python sockets blocked (no unshare here)")
    print("sandbox:", box)


def test_a_program_that_never_ends_is_stopped_and_the_others_still_score(allowed, base, tmp_path):
    ev = Evaluator({"learning": [task("loop", "fl_test_loop")], "forgetting": [task("escape", "fl_test_escape")]},
                   ByteTokenizer(), 64, "cpu", tmp_path)
    loop, escape = ev.evaluate(base, 0)["tasks"]
    assert loop["value"] is None and "CPU time limit (3 s" in loop["error"], loop
    assert escape["value"] == pytest.approx(1 / 3)


def test_no_process_of_the_sandbox_outlives_the_evaluation(allowed, base, tmp_path):
    ev = Evaluator({"learning": [task("loop", "fl_test_loop")]}, ByteTokenizer(), 64, "cpu", tmp_path)
    ev.evaluate(base, 0)
    mine = [p for p in Path("/proc").glob("[0-9]*/cmdline")
            if b"finetune_lab.sandbox" in _read(p) and _parent(p.parent) == os.getpid()]
    assert not mine


def _read(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError:
        return b""


def _parent(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().split(")")[-1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1
