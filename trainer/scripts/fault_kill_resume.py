"""SIGKILL a training run at random moments, resume it each time, and check that nothing was lost.

Usage (from the repo root):

    .venv/bin/python trainer/scripts/fault_kill_resume.py [--kills 20] [--seed 0]
        [--mode process|fork] [--steps 100] [--keep DIR] [--json]

One LoRA run of ``builtin:tiny`` (a checkpoint every 2 steps, LoRA dropout on, so the RNG state
must come back exactly) is started, killed with SIGKILL (its whole process group, as the
extension's Kill does) at a random moment, started again with ``--resume``, and so on ``--kills``
times; then it runs to the end. Kill moments are drawn from a seeded generator: a quarter of them
at a random time during start-up (imports, model loading, resuming), the rest a random number of
steps into training plus a random fraction of a step (so many land while a checkpoint is being
written). After every kill the run folder is checked:

- every complete line of events.jsonl is a JSON object valid against schemas/events.schema.json
  (a missing newline at the end is counted as a torn tail; there should be none);
- status.json parses and is valid (it is replaced atomically);
- every ``checkpoints/step-*`` folder is complete: trainer_state.pt loads with
  ``weights_only=True``, adapter_config.json parses, adapter_model.safetensors loads (leftover
  ``.tmp-``/``.trash-`` folders show a kill that landed mid-save or mid-prune);
- the next start's ``run_started.resumed_from`` is the newest complete checkpoint.

At the end every ``train`` event's loss (every segment's, repeats included) must equal the loss of
an uninterrupted run of the same config at that step, and the final loss must be the same.

``--mode process`` (default) starts ``python -m finetune_lab run --run-dir DIR [--resume]`` in its
own process group, exactly as the extension and the CLI do; each start pays torch's import
(seconds). ``--mode fork`` forks the trainer from this process, where torch is already imported,
and calls the same ``finetune_lab.train.run``: the same trainer code killed the same way, without
the import, so 20 kills take seconds (the test suite runs it). The pretrained tiny base is cached
in ``$FINETUNE_LAB_CACHE`` (or the default cache). Prints one line per kill and a summary; with
``--json`` the last line is the report as JSON. Exit 0 when everything held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAINER = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRAINER))
DATA = TRAINER / "tests" / "fixtures" / "code.jsonl"
PRETRAIN_STEPS = 10


def config_yaml(steps: int) -> str:
    return f"""\
name: fault-kill-resume
model: {{base: "builtin:tiny", pretrain_steps: {PRETRAIN_STEPS}}}
data: {{train: {json.dumps(str(DATA))}, seq_len: 32}}
method: lora
lora: {{rank: 4, dropout: 0.1}}
train: {{steps: {steps}, batch_size: 2, warmup_steps: 2, lr: 0.01, seed: 3}}
spectra: {{every_steps: 0}}
checkpoint: {{every_steps: 2, keep_last: 2}}
"""


class Trainer:
    """One start of the trainer on a run folder, in its own process group."""

    def __init__(self, run_dir: Path, resume: bool, mode: str):
        self.mode = mode
        if mode == "fork":
            pid = os.fork()
            if pid == 0:  # the child: the trainer, as `python -m finetune_lab run` would run it
                os.setpgid(0, 0)
                log = os.open(run_dir / "train.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                os.dup2(log, 1)
                os.dup2(log, 2)
                code = 1
                try:
                    from finetune_lab.train import run
                    code = run(run_dir, resume=resume)
                finally:
                    os._exit(code)
            self.pid = pid
        else:
            env = {**os.environ, "PYTHONPATH": str(TRAINER)}
            args = [sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(run_dir)] + (["--resume"] if resume else [])
            with open(run_dir / "train.log", "ab") as log:
                self.proc = subprocess.Popen(args, cwd=run_dir, env=env, stdout=log, stderr=log, start_new_session=True)
            self.pid = self.proc.pid

    def poll(self) -> int | None:
        if self.mode == "fork":
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            return None if pid == 0 else os.waitstatus_to_exitcode(status)
        return self.proc.poll()

    def wait(self) -> int:
        if self.mode == "fork":
            return os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.proc.wait()

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait()


def read_lines(path: Path) -> tuple[list[bytes], bool]:
    """The complete lines of a file, and whether it ends in a torn (newline-less) tail."""
    if not path.exists():
        return [], False
    data = path.read_bytes()
    lines = data.split(b"\n")
    return lines[:-1], lines[-1] != b""


class StepTail:
    """The steps of the train events appended to events.jsonl since the tail was made (read by
    byte offset, so polling every few milliseconds costs little)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "events.jsonl"
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        self.steps: list[int] = []

    def read(self) -> list[int]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.steps
        end = data.rfind(b"\n") + 1
        self.offset += end
        for raw in data[:end].splitlines():
            if b'"type":"train"' in raw:
                self.steps.append(json.loads(raw)["step"])
        return self.steps


def train_steps(run_dir: Path) -> list[int]:
    return [step for step, _ in losses(run_dir)]


class Checker:
    """The run folder's invariants after a kill; counts what it checked."""

    def __init__(self):
        import jsonschema

        from finetune_lab.config import load_schema
        self.events_validator = jsonschema.Draft7Validator(load_schema("events"))
        self.status_validator = jsonschema.Draft7Validator(load_schema("status"))
        self.counts = {"event_lines_checked": 0, "torn_tails": 0, "status_checked": 0,
                       "checkpoints_checked": 0, "leftover_temp_folders": 0}
        self.failures: list[str] = []

    def fail(self, what: str) -> None:
        self.failures.append(what)

    def check(self, run_dir: Path) -> int | None:
        """Checks everything; returns the newest complete checkpoint's step (None: none)."""
        lines, torn = read_lines(run_dir / "events.jsonl")
        self.counts["torn_tails"] += torn
        for n, raw in enumerate(lines, 1):
            try:
                event = json.loads(raw)
                errors = list(self.events_validator.iter_errors(event))
                if errors:
                    self.fail(f"events.jsonl line {n}: {errors[0].message}")
            except ValueError as e:
                self.fail(f"events.jsonl line {n} does not parse: {e}: {raw[:80]!r}")
        self.counts["event_lines_checked"] += len(lines)
        status_file = run_dir / "status.json"
        if status_file.exists():
            try:
                status = json.loads(status_file.read_text())
                errors = list(self.status_validator.iter_errors(status))
                if errors:
                    self.fail(f"status.json invalid: {errors[0].message}")
            except ValueError as e:
                self.fail(f"status.json does not parse: {e}")
            self.counts["status_checked"] += 1
        root = run_dir / "checkpoints"
        newest = None
        if root.exists():
            self.counts["leftover_temp_folders"] += sum(1 for p in root.iterdir() if p.name.startswith((".tmp-", ".trash-")))
            for folder in sorted(root.glob("step-*")):
                self.counts["checkpoints_checked"] += 1
                problem = checkpoint_problem(folder)
                if problem:
                    self.fail(f"{folder.name} is incomplete: {problem}")
                else:
                    newest = int(folder.name.split("-")[1])
        return newest


def checkpoint_problem(folder: Path) -> str | None:
    """None when the checkpoint is complete and loads; else what is wrong."""
    from safetensors.torch import load_file

    from finetune_lab.checkpoint import STATE_FILE, load_trainer_state
    try:
        state = load_trainer_state(folder / STATE_FILE)
        json.loads((folder / "adapter_config.json").read_text())
        tensors = load_file(str(folder / "adapter_model.safetensors"))
    except Exception as e:  # noqa: BLE001 - any failure to load is the finding
        return f"{type(e).__name__}: {e}"
    if state.get("step") != int(folder.name.split("-")[1]) or not tensors:
        return f"step {state.get('step')} in {folder.name}, {len(tensors)} tensors"
    return None


def events_of(run_dir: Path, type: str) -> list[dict]:
    """The complete, parseable events of one type (the checker reports the others)."""
    from finetune_lab.events import read_events
    return [e for e in read_events(run_dir) if e.get("type") == type]


def run_started(run_dir: Path) -> list[dict]:
    return events_of(run_dir, "run_started")


def losses(run_dir: Path) -> list[tuple[int, float]]:
    return [(e["step"], e["loss"]) for e in events_of(run_dir, "train")]


def new_run(root: Path, name: str, steps: int) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(config_yaml(steps))
    return run_dir


def wait_for(predicate, timeout: float, trainer: Trainer) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if trainer.poll() is not None:
            return False
        time.sleep(0.003)
    return False


def warm_base() -> None:
    """Pretrain (or find) the cached tiny base in a child: this process must not run torch ops
    itself, or forked trainers could inherit a busy OpenMP pool and hang."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            from finetune_lab.pretrain import pretrained_builtin
            pretrained_builtin("tiny", steps=PRETRAIN_STEPS)
            code = 0
        finally:
            os._exit(code)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        raise SystemExit("could not pretrain the tiny base")


def run_faults(kills: int = 20, seed: int = 0, mode: str = "process", steps: int = 100,
               root: Path | None = None, say=print) -> dict:
    """The whole experiment; returns the report (counts, failures, losses)."""
    warm_base()
    if mode == "fork":
        import finetune_lab.train  # noqa: F401  (imported once here, not in every forked start)
    rng = random.Random(seed)
    root = Path(root or tempfile.mkdtemp(prefix="fault-kill-resume-"))
    t0 = time.monotonic()

    # 1) The reference: the same config, never interrupted.
    reference_dir = new_run(root, "uninterrupted", steps)
    started = time.monotonic()
    trainer = Trainer(reference_dir, resume=False, mode=mode)
    first_step_at, tail = None, StepTail(reference_dir)
    while trainer.poll() is None:
        if first_step_at is None and tail.read():
            first_step_at = time.monotonic() - started
        time.sleep(0.005)
    total = time.monotonic() - started
    if first_step_at is None:
        raise SystemExit(f"the reference run wrote no train event; see {reference_dir / 'train.log'}")
    step_s = max((total - first_step_at) / steps, 0.005)
    reference = dict(losses(reference_dir))
    say(f"reference: {steps} steps, start-up {first_step_at:.2f} s, {step_s * 1000:.0f} ms a step, "
        f"final loss {reference[steps]:.6f}")

    # 2) The killed run.
    run_dir = new_run(root, "killed", steps)
    checker = Checker()
    kills_done, phases, resumes_checked = 0, {"startup": 0, "training": 0}, 0
    expected_resume: int | None = None
    resume = False
    while kills_done < kills:
        starts_before = len(run_started(run_dir))
        trainer = Trainer(run_dir, resume=resume, mode=mode)
        if rng.random() < 0.25:
            # A moment of start-up (imports, model loading, resuming): at most until this start's
            # first train step, which may come sooner than the reference's did.
            phase, delay, tail = "startup", rng.uniform(0, first_step_at), StepTail(run_dir)
            wait_for(lambda: bool(tail.read()), delay, trainer)
        else:
            phase = "training"
            target = max(train_steps(run_dir), default=0) + rng.randint(1, 3)
            tail = StepTail(run_dir)
            if not wait_for(lambda: any(s >= target for s in tail.read()), 60 + first_step_at * 3, trainer):
                if trainer.poll() is not None:
                    say(f"the run ended (exit {trainer.poll()}) before kill {kills_done + 1}: more --steps needed")
                    expected_resume = checker.check(run_dir)
                    break
            time.sleep(rng.uniform(0, step_s))
        if trainer.poll() is not None:
            say(f"the trainer exited (code {trainer.poll()}) before kill {kills_done + 1}")
            expected_resume = checker.check(run_dir)
            break
        trainer.kill()
        kills_done += 1
        phases[phase] += 1
        starts = run_started(run_dir)
        if len(starts) > starts_before:  # this start got far enough to say where it resumed from
            if starts[-1].get("resumed_from") != expected_resume:
                checker.fail(f"start {kills_done} resumed from {starts[-1].get('resumed_from')}, "
                             f"the newest complete checkpoint was {expected_resume}")
            resumes_checked += 1
        expected_resume = checker.check(run_dir)
        status = json.loads((run_dir / "status.json").read_text()) if (run_dir / "status.json").exists() else {}
        say(f"kill {kills_done:2d} ({phase:8s} phase {status.get('phase', '-'):13s}): last step "
            f"{max(train_steps(run_dir), default=0):3d}, newest checkpoint {expected_resume}")
        resume = True

    # 3) Run to the end, then compare every loss with the reference.
    starts_before = len(run_started(run_dir))
    code = Trainer(run_dir, resume=resume, mode=mode).wait()
    starts = run_started(run_dir)
    if len(starts) > starts_before and starts[-1].get("resumed_from") != expected_resume:
        checker.fail(f"the last start resumed from {starts[-1].get('resumed_from')}, expected {expected_resume}")
    resumes_checked += len(starts) > starts_before
    checker.check(run_dir)
    killed = losses(run_dir)
    diffs = [abs(loss - reference[step]) for step, loss in killed]
    final = [loss for step, loss in killed if step == steps]
    status = json.loads((run_dir / "status.json").read_text())
    if code != 0 or status.get("state") != "completed":
        checker.fail(f"the resumed run ended {status.get('state')} (exit {code}): {status.get('error')}")
    if not final or final[-1] != reference[steps]:
        checker.fail(f"final loss {final[-1] if final else None} differs from the uninterrupted run's {reference[steps]}")
    if kills_done < kills:
        checker.fail(f"only {kills_done} of {kills} kills happened")
    report = {
        "mode": mode, "seed": seed, "steps": steps, "kills": kills_done, "kill_phases": phases,
        "starts": kills_done + 1, "resumes_checked": resumes_checked, **checker.counts,
        "train_events_compared": len(killed), "max_abs_loss_diff": max(diffs, default=None),
        "final_loss": final[-1] if final else None, "reference_final_loss": reference[steps],
        "failures": checker.failures, "seconds": round(time.monotonic() - t0, 1), "folder": str(root),
    }
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=["process", "fork"], default="process")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--keep", default=None, help="write the run folders here and keep them")
    parser.add_argument("--json", action="store_true", help="print the report as JSON last")
    a = parser.parse_args(argv)
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="fault-kill-resume-"))
    try:
        report = run_faults(a.kills, a.seed, a.mode, a.steps, root)
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{report['kills']} kills ({report['kill_phases']['startup']} in start-up, "
          f"{report['kill_phases']['training']} in training), {report['starts']} starts, "
          f"{report['resumes_checked']} resume points checked, {report['event_lines_checked']} event lines "
          f"and {report['checkpoints_checked']} checkpoints checked after kills, "
          f"{report['leftover_temp_folders']} temp folders seen (kills mid-save), {report['torn_tails']} torn lines; "
          f"{report['train_events_compared']} train losses equal to the uninterrupted run's within "
          f"{report['max_abs_loss_diff']}; final loss {report['final_loss']} vs {report['reference_final_loss']}; "
          f"{report['seconds']} s; {'HELD' if not report['failures'] else 'FAILED'}")
    for f in report["failures"]:
        print(f"  failure: {f}")
    if a.json:
        print(json.dumps(report))
    return 0 if not report["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
