"""Fault injection (issue 17) on the real trainer: SIGKILL at random moments with resume (the
reduced form of trainer/scripts/fault_kill_resume.py; the full 20-kill run is recorded in
docs/RELIABILITY.md), two trainers on one run folder, torn and failed writes of events.jsonl,
checkpoints killed mid-save or mid-prune, a full disk and a read-only run folder."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TRAINER, assert_valid_run_files

from finetune_lab import runlock
from finetune_lab.checkpoint import list_checkpoints
from finetune_lab.events import EventWriter, read_events
from finetune_lab.train import run

sys.path.insert(0, str(TRAINER / "scripts"))
from fault_kill_resume import checkpoint_problem  # noqa: E402


def _fault_script(*args: str) -> dict:
    """Runs trainer/scripts/fault_kill_resume.py in its own process (its forked trainers need a
    parent that has run no torch op: this test process has, pretraining the base) and returns its
    report."""
    proc = subprocess.run([sys.executable, str(TRAINER / "scripts" / "fault_kill_resume.py"), "--json", *args],
                          capture_output=True, text=True, timeout=1200, env={**os.environ, "PYTHONPATH": str(TRAINER)})
    lines = proc.stdout.strip().splitlines()
    print("\n".join(line for line in lines if line.startswith(("kill", "reference", "20 kills", "10 kills", "2 kills"))))
    assert lines and lines[-1].startswith("{"), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1])


def test_sigkill_at_random_moments_then_resume_loses_nothing_fork():
    """10 kills of one run (forked trainers: the same code without torch's import per start; the
    recorded runs of the script do 20 in both modes, docs/RELIABILITY.md)."""
    report = _fault_script("--mode", "fork", "--kills", "10", "--steps", "40", "--seed", "1")
    assert report["failures"] == [], report["failures"]
    assert report["kills"] == 10 and report["max_abs_loss_diff"] == 0.0
    assert report["final_loss"] == report["reference_final_loss"]


def test_sigkill_of_the_real_process_group_then_resume():
    """`python -m finetune_lab run` in its own process group, as the extension starts it: 2 kills."""
    report = _fault_script("--mode", "process", "--kills", "2", "--steps", "30", "--seed", "2")
    assert report["failures"] == [], report["failures"]
    assert report["final_loss"] == report["reference_final_loss"]


def test_a_second_trainer_of_a_run_folder_exits_3_and_writes_nothing(make_run):
    run_dir = make_run()
    (run_dir / "status.json").write_text('{"v": 1, "state": "running", "pid": 1, "step": 2, "total_steps": 4}')
    held = runlock.acquire(run_dir)
    assert held is not None
    try:
        before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
        proc = subprocess.run([sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(run_dir), "--resume"],
                              cwd=run_dir, env={**os.environ, "PYTHONPATH": str(TRAINER)}, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 3, proc.stderr
        assert "already being trained by another process" in proc.stderr
        after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
        assert after == before, "the refused trainer wrote into the run folder"
        assert runlock.acquire(run_dir) is None, "the lock is exclusive within one process too"
    finally:
        os.close(held)
    fd = runlock.acquire(run_dir)  # released when its holder closes it (or dies)
    assert fd is not None
    os.close(fd)


def test_a_torn_last_line_is_ended_before_the_next_event(tmp_path):
    (tmp_path / "events.jsonl").write_bytes(b'{"v":1,"type":"train","time":1,"step":1,"loss":2.0}\n{"v":1,"type":"tr')
    EventWriter(tmp_path).emit("log", level="info", message="resumed")
    lines = (tmp_path / "events.jsonl").read_bytes().split(b"\n")
    assert lines[1] == b'{"v":1,"type":"tr' and json.loads(lines[2])["message"] == "resumed"
    assert [e["type"] for e in read_events(tmp_path)] == ["train", "log"]


def test_a_write_that_fails_half_way_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    writer = EventWriter(tmp_path)
    writer.emit("log", level="info", message="first")
    before = (tmp_path / "events.jsonl").read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        if len(data) > 20:
            real_write(fd, data[:10])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError):
        writer.emit("log", level="info", message="second, which does not fit")
    monkeypatch.undo()
    assert (tmp_path / "events.jsonl").read_bytes() == before


def test_checkpoints_killed_mid_save_or_prune_leave_no_partial_step_folder(make_run):
    run_dir = make_run(checkpoint={"every_steps": 1, "keep_last": 2}, train={"steps": 3, "batch_size": 2, "lr": 1e-2})
    assert run(run_dir, stop_after=2) == 0
    root = run_dir / "checkpoints"
    # What a SIGKILL mid-save and mid-prune leaves: a temp folder and a trash folder, both partial.
    (root / ".tmp-step-000003-99999").mkdir()
    (root / ".tmp-step-000003-99999" / "adapter_config.json").write_text("{")
    shutil.copytree(root / "step-000002", root / ".trash-step-000001-99999")
    (root / ".trash-step-000001-99999" / "adapter_model.safetensors").unlink()
    assert [p.name for p in list_checkpoints(run_dir)] == ["step-000001", "step-000002"]
    assert run(run_dir, resume=True) == 0  # step 3, then its checkpoint: the save clears the leftovers
    names = sorted(p.name for p in root.iterdir())
    assert names == ["step-000002", "step-000003"], names  # leftovers removed, nothing half-written


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


needs_mount = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                                 reason="a small tmpfs needs root (CI and the dev machines run as root)")


@needs_mount
def test_a_full_disk_fails_the_run_clearly_and_damages_nothing_written_before(tmp_path, make_run):
    """A 640 KiB tmpfs holds the run folder: the run trains, checkpoints until the disk is full,
    then ends failed with "disk full" in status.json; every checkpoint left loads, every event line
    is whole, and Resume after freeing space carries on."""
    disk = tmp_path / "disk"
    assert _tmpfs(disk, "640k"), "mount -t tmpfs failed"
    try:
        src = make_run(checkpoint={"every_steps": 1, "keep_last": 50}, train={"steps": 200, "batch_size": 2, "lr": 1e-2})
        run_dir = disk / "run"
        shutil.copytree(src, run_dir)
        code = run(run_dir)
        status = json.loads((run_dir / "status.json").read_text())
        assert code == 1 and status["state"] == "failed", status
        assert status["error"].startswith("disk full: "), status["error"]
        events = assert_valid_run_files(run_dir)  # every line parses and is valid
        checkpoints = list_checkpoints(run_dir)
        assert checkpoints, "no checkpoint fitted at all: the disk is too small for this test"
        assert [checkpoint_problem(c) for c in checkpoints] == [None] * len(checkpoints)
        assert not list((run_dir / "checkpoints").glob(".tmp-*")), "a half-written checkpoint was left"
        trained = max(e["step"] for e in events if e["type"] == "train")
        print(f"disk full after step {trained}: {len(checkpoints)} complete checkpoints, {len(events)} events, "
              f"error: {status['error'][:120]}")
        # Free space (keep only the newest checkpoint), then Resume goes on from it.
        for old in checkpoints[:-1]:
            shutil.rmtree(old)
        (run_dir / "config.yaml").write_text((run_dir / "config.yaml").read_text().replace("keep_last: 50", "keep_last: 1"))
        resumed = int(checkpoints[-1].name.split("-")[1])
        assert run(run_dir, resume=True) in (0, 1)
        starts = [e for e in read_events(run_dir) if e["type"] == "run_started"]
        assert starts[-1]["resumed_from"] == resumed
    finally:
        _umount(disk)


@needs_mount
def test_a_read_only_run_folder_is_refused_with_a_clear_error_and_left_as_it_was(tmp_path, make_run):
    disk = tmp_path / "ro"
    assert _tmpfs(disk, "4m")
    try:
        run_dir = disk / "run"
        shutil.copytree(make_run(), run_dir)
        (run_dir / "status.json").write_text('{"v": 1, "state": "queued", "step": 0, "total_steps": 4}')
        assert subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True).returncode == 0
        before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
        proc = subprocess.run([sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(run_dir)], cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(TRAINER)}, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert "the run folder is not writable" in proc.stderr and "Read-only file system" in proc.stderr
        assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
    finally:
        _umount(disk)


@needs_mount
def test_a_run_folder_that_turns_read_only_mid_run_ends_failed_where_it_can_say_so(tmp_path, make_run):
    """Remounted read-only while training: the trainer stops at its next write with the reason on
    stderr (train.log is the launcher's, elsewhere here); the checkpoints written before load."""
    disk = tmp_path / "rw"
    assert _tmpfs(disk, "32m")
    try:
        run_dir = disk / "run"
        shutil.copytree(make_run(checkpoint={"every_steps": 2, "keep_last": 5}, train={"steps": 400, "batch_size": 2, "lr": 1e-2}), run_dir)
        log = open(tmp_path / "train.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(run_dir)], cwd=tmp_path,
                                env={**os.environ, "PYTHONPATH": str(TRAINER)}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.monotonic() + 240
        while not list_checkpoints(run_dir) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert list_checkpoints(run_dir), (tmp_path / "train.log").read_text()[-2000:]
        # A read-only bind mount over the run folder: the trainer's open lock file keeps the tmpfs
        # itself from being remounted read-only, and every new open goes through the bind mount.
        # The trainer is paused meanwhile: a file it opened for writing through the new bind mount
        # between the two calls would make the kernel refuse the remount ("mount point is busy").
        os.killpg(proc.pid, signal.SIGSTOP)
        try:
            assert subprocess.run(["mount", "--bind", str(run_dir), str(run_dir)], capture_output=True).returncode == 0
            remount = subprocess.run(["mount", "-o", "remount,bind,ro", str(run_dir)], capture_output=True, text=True)
        finally:
            os.killpg(proc.pid, signal.SIGCONT)
        assert remount.returncode == 0, remount.stderr
        code = proc.wait(timeout=240)
        log.close()
        text = (tmp_path / "train.log").read_text()
        assert code == 1, text[-2000:]
        assert "run folder is not writable" in text, text[-2000:]
        assert all(checkpoint_problem(c) is None for c in list_checkpoints(run_dir))
        for line in (run_dir / "events.jsonl").read_bytes().splitlines():
            json.loads(line)
    finally:
        _umount(disk / "run")
        _umount(disk)
