"""Command line: python -m finetune_lab {run,doctor,pretrain,export-onnx} (see docs/DECISIONS.md)."""

import argparse
import json
import os
import signal
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finetune_lab", description="Finetune Lab trainer")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="train the run in a run folder")
    p_run.add_argument("--run-dir", required=True)
    p_run.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    sub.add_parser("doctor", help="print the environment as JSON")
    p_pre = sub.add_parser("pretrain", help="pretrain (or find cached) a built-in base")
    p_pre.add_argument("--model", default="builtin:tiny")
    p_pre.add_argument("--steps", type=int, default=None)
    p_exp = sub.add_parser("export-onnx", help="export the base or a checkpoint to DIR/exports/<label>/ (ONNX)")
    p_exp.add_argument("--run-dir", required=True)
    p_exp.add_argument("--checkpoint", default=None, help="base, or step-N (default: the newest checkpoint)")
    args = parser.parse_args(argv)

    if args.command == "run":
        # A Stop can arrive while torch is still importing (seconds), before the trainer's own
        # handler exists: remember it, so the run ends "stopped" rather than with a KeyboardInterrupt.
        early: list[int] = []
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, lambda signum, frame: early.append(signum))
        print("finetune_lab: starting (loading torch)", flush=True)
        torchrun = torchrun_args(args.run_dir, args.resume)
        if torchrun:  # launcher.kind torchrun, not yet under torchrun: be its agent (same pid)
            for s in (signal.SIGINT, signal.SIGTERM):
                signal.signal(s, signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL)
            return run_torchrun(torchrun, args.run_dir)
        from .train import run
        return run(args.run_dir, resume=args.resume, stopped_early=early)
    if args.command == "doctor":
        from .doctor import doctor
        print(json.dumps(doctor(), indent=2))
        return 0
    if args.command == "export-onnx":
        return export_command(args.run_dir, args.checkpoint)
    return pretrain_command(args.model, args.steps)


def torchrun_args(run_dir: str, resume: bool) -> list[str] | None:
    """torchrun's arguments for a run whose config says ``launcher.kind: torchrun`` with more
    than one process on this one node, when this process is not already one of torchrun's
    workers; else None. Several nodes: start torchrun on each yourself (README: Slurm)."""
    if "WORLD_SIZE" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ:
        return None
    try:
        from .config import load_config
        launcher = load_config(run_dir).launcher
    except Exception:
        return None  # the run itself reports a bad config
    if launcher.get("kind") != "torchrun":
        return None
    if launcher.get("nnodes", 1) > 1:
        print("launcher.nnodes > 1: start torchrun on every node yourself (trainer/README.md, Slurm); "
              "running as one process", file=sys.stderr, flush=True)
        return None
    if launcher.get("nproc_per_node", 1) <= 1:
        return None
    return ["--standalone", f"--nproc_per_node={launcher['nproc_per_node']}", "-m", "finetune_lab", "run",
            "--run-dir", str(run_dir)] + (["--resume"] if resume else [])


def run_torchrun(torchrun_args: list[str], run_dir: str) -> int:
    """Run torchrun's agent in this process (it starts the workers). The exit code follows the
    run's ``run_finished``: a signal that made the workers stop cleanly is exit 0, as for one
    process (torchrun itself would exit non-zero with a SignalException)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun_main

    from .events import read_events
    def finished() -> list[dict]:
        return [e for e in read_events(run_dir) if e.get("type") == "run_finished"]

    before = len(finished())  # a resumed run's folder holds earlier ones
    print("launching: python -m torch.distributed.run " + " ".join(torchrun_args), flush=True)
    try:
        torchrun_main(torchrun_args)
    except SignalException as e:
        print(f"torchrun: {e}", flush=True)
    except ChildFailedError as e:
        print(f"torchrun: a worker failed: {e}", file=sys.stderr, flush=True)
        return 1
    now = finished()
    return 0 if len(now) > before and now[-1].get("status") in ("completed", "stopped") else 1


def pretrain_command(model: str, steps: int | None) -> int:
    """Warm the cache: prints "cached <folder>" at once when the base is there, else pretrains
    (progress lines) and prints "pretrained <folder>"."""
    from .paths import cache_dir
    from .pretrain import cache_key, pretrain_settings, pretrained_builtin
    if not model.startswith("builtin:") and ":" in model:
        print(f"error: pretrain is for built-in bases (builtin:<size>), got '{model}'", file=sys.stderr)
        return 2
    size = model.removeprefix("builtin:")
    try:
        folder = cache_dir() / "bases" / cache_key(size, pretrain_settings(size, steps))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if (folder / "model.safetensors").exists():
        print(f"cached {folder}", flush=True)
        return 0
    pretrained_builtin(size, steps=steps)
    print(f"pretrained {folder}", flush=True)
    return 0


def export_command(run_dir: str, checkpoint: str | None) -> int:
    """Progress as JSON lines on stdout, then {"export": <export.json>, ...}; exit 1 with one
    line on stderr when the export cannot be made (after the traceback, for a bug)."""
    import traceback
    from .export_onnx import ExportError, export_run

    def emit(info: dict) -> None:
        print(json.dumps(info), flush=True)
    try:
        manifest = export_run(run_dir, checkpoint, on_progress=emit)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    except Exception as e:  # not foreseen: keep the traceback, end with the one line
        traceback.print_exc()
        print(f"error: export failed: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr, flush=True)
        return 1
    info = json.loads(manifest.read_text(encoding="utf-8"))
    emit({"export": str(manifest), "label": info["label"], "kind": info["kind"],
          "onnx_bytes": info["onnx_bytes"], "parity": info["parity"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
