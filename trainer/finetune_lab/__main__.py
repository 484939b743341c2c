"""Command line: python -m finetune_lab {run,doctor,pretrain} (see docs/DECISIONS.md)."""

import argparse
import json
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
    args = parser.parse_args(argv)

    if args.command == "run":
        from .train import run
        return run(args.run_dir, resume=args.resume)
    if args.command == "doctor":
        from .doctor import doctor
        print(json.dumps(doctor(), indent=2))
        return 0
    return pretrain_command(args.model, args.steps)


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


if __name__ == "__main__":
    sys.exit(main())
