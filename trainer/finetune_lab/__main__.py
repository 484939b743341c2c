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
    from .pretrain import pretrained_builtin_path
    print(pretrained_builtin_path(args.model.removeprefix("builtin:"), args.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
