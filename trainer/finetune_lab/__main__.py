"""Command line: python -m finetune_lab {run,torchrun,doctor,estimate,pretrain,export-onnx,analyse,
reduce-intruders} (see docs/DECISIONS.md)."""

import argparse
import json
import os
import signal
import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["torchrun"]:  # every later argument is torchrun's: argparse must not read them
        return torchrun_command(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m finetune_lab", description="Finetune Lab trainer")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="train the run in a run folder")
    p_run.add_argument("--run-dir", required=True)
    p_run.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p_run.add_argument("--node-rank", type=int, default=None,
                       help="launcher.kind torchrun on several machines: this machine's rank (default: launcher.node_rank)")
    sub.add_parser("torchrun", help="python -m torch.distributed.run ARGS, exit code 0 when the run completed or "
                   "stopped (Slurm batch scripts)")
    sub.add_parser("doctor", help="print the environment as JSON")
    p_est = sub.add_parser("estimate", help="memory estimate of run configs as JSON (schemas/estimate.schema.json)")
    p_est.add_argument("--config", required=True, help="a JSON or YAML file holding a run config or a list of them; - reads stdin")
    p_est.add_argument("--base-dir", default=None, help="folder a relative hf: model folder is relative to (default: the file's)")
    p_est.add_argument("--gpu-gib", type=float, default=None, help="check against GPUs of this much memory (assumes CUDA)")
    p_est.add_argument("--gpus", type=int, default=None, help="with --gpu-gib: how many such GPUs (FSDP advice; default 1)")
    p_est.add_argument("--gpu-name", default=None, help="with --gpu-gib: the GPU's name, as doctor reported it (default: "
                       "the limit is a setting)")
    p_est.add_argument("--no-advice", action="store_true", help="skip re-estimating what would make a run fit")
    p_pre = sub.add_parser("pretrain", help="pretrain (or find cached) a built-in base")
    p_pre.add_argument("--model", default="builtin:tiny")
    p_pre.add_argument("--steps", type=int, default=None)
    p_exp = sub.add_parser("export-onnx", help="export the base or a checkpoint to DIR/exports/<label>/ (ONNX)")
    p_exp.add_argument("--run-dir", required=True)
    p_exp.add_argument("--checkpoint", default=None, help="base, or step-N (default: the newest checkpoint)")
    p_an = sub.add_parser("analyse", help="analyse a finetune made elsewhere (a PEFT adapter or a full checkpoint) "
                          "against its base: one run folder of kind analysis, no training")
    p_an.add_argument("--base", required=True, help="builtin:<size> or hf:<folder or Hub name>")
    src = p_an.add_mutually_exclusive_group(required=True)
    src.add_argument("--adapter", help="a PEFT LoRA adapter folder (adapter_config.json)")
    src.add_argument("--model", help="a full checkpoint folder (config.json and model weights, sharded or not)")
    p_an.add_argument("--experiment", help="an experiment file whose evals, spectra and data.seq_len to use")
    p_an.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR)
    p_an.add_argument("--name", help="the analysis's name (default: the adapter's or checkpoint's folder name)")
    p_ri = sub.add_parser("reduce-intruders", help="PEFT's reduce_intruder_dimension on a run's LoRA adapter; "
                          "one analysis run per lambda")
    p_ri.add_argument("run_id")
    p_ri.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR)
    p_ri.add_argument("--lambda", dest="lambdas", default="0.75", help="mitigation_lambda, or a sweep: 0.25,0.5,0.75,1")
    p_ri.add_argument("--top-k", type=int, default=10)
    p_ri.add_argument("--epsilon", type=float, default=0.5)
    args = parser.parse_args(argv)

    if args.command == "run":
        # A Stop can arrive while torch is still importing (seconds), before the trainer's own
        # handler exists: remember it, so the run ends "stopped" rather than with a KeyboardInterrupt.
        early: list[int] = []
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, lambda signum, frame: early.append(signum))
        print("finetune_lab: starting (loading torch)", flush=True)
        take_run_lock(args.run_dir, args.node_rank)  # held (open) until this process exits
        torchrun = torchrun_args(args.run_dir, args.resume, args.node_rank)
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
    if args.command == "estimate":
        return estimate_command(args.config, args.base_dir, args.gpu_gib, args.gpus, args.gpu_name, not args.no_advice)
    if args.command == "export-onnx":
        return export_command(args.run_dir, args.checkpoint)
    if args.command in ("analyse", "reduce-intruders"):
        return analysis_command(args)
    return pretrain_command(args.model, args.steps)


def take_run_lock(run_dir: str, node_rank: int | None):
    """The run folder's lock (runlock.py), taken by the process that owns the folder: not by
    torchrun's workers (their agent holds it) nor by the machines of a multi-machine run other
    than node 0. Returns the lock's descriptor, or None when this process takes none.

    Raises:
        SystemExit: 3 (failures.EXIT_ALREADY_RUNNING) when another trainer holds the lock, 1 when
            the folder cannot be written; said on stderr, nothing else written.

    Args:
        run_dir (str): the run folder.
        node_rank (int | None): ``--node-rank``; None: the config's ``launcher.node_rank``.
    """
    from pathlib import Path

    from . import runlock
    if "WORLD_SIZE" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ or not Path(run_dir).is_dir():
        return None
    if node_rank is None:
        try:
            from .config import load_config
            launcher = load_config(run_dir).launcher
            multi = launcher.get("kind") == "torchrun" and launcher.get("nnodes", 1) > 1
            node_rank = launcher.get("node_rank", 0) if multi else 0
        except Exception:
            node_rank = 0  # the run itself reports a bad config
    if node_rank != 0:
        return None
    try:
        fd = runlock.acquire(run_dir)
    except OSError as e:
        print(f"error: the run folder is not writable: {e}", file=sys.stderr, flush=True)
        raise SystemExit(1) from e
    if fd is None:
        print(f"error: {run_dir} is already being trained by another process (pid {runlock.holder(run_dir)}); "
              "nothing was started", file=sys.stderr, flush=True)
        raise SystemExit(3)  # failures.EXIT_ALREADY_RUNNING (not imported here: it loads torch)
    return fd


def torchrun_args(run_dir: str, resume: bool, node_rank: int | None = None) -> list[str] | None:
    """torchrun's arguments for a run whose config says ``launcher.kind: torchrun``, when this
    process is not already one of torchrun's workers; else None.

    One machine (``nnodes`` 1) with ``nproc_per_node > 1``: ``--standalone``. Several machines:
    static rendezvous at ``rdzv_endpoint``, hosted by node 0, with this machine's ``node_rank``
    (the argument, else the config's), so node 0's first process is rank 0 (it writes the run
    folder); each other machine runs ``python -m finetune_lab run --run-dir DIR --node-rank K``,
    printed here.

    Args:
        run_dir (str): the run folder (its config.yaml is read).
        resume (bool): pass ``--resume`` to the workers.
        node_rank (int | None): this machine's rank among ``nnodes``; None: ``launcher.node_rank``.

    Returns:
        list[str] | None: the arguments for torch.distributed.run, or None to train in this process.
    """
    if "WORLD_SIZE" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ:
        return None
    try:
        from .config import load_config
        launcher = load_config(run_dir).launcher
    except Exception:
        return None  # the run itself reports a bad config
    if launcher.get("kind") != "torchrun":
        return None
    nnodes, nproc = launcher.get("nnodes", 1), launcher.get("nproc_per_node", 1)
    worker = ["-m", "finetune_lab", "run", "--run-dir", str(run_dir)] + (["--resume"] if resume else [])
    if nnodes > 1:
        rank = launcher.get("node_rank", 0) if node_rank is None else node_rank
        endpoint = launcher.get("rdzv_endpoint")
        if not endpoint:
            raise SystemExit("launcher.nnodes > 1 needs launcher.rdzv_endpoint (host:port of node 0)")
        if not 0 <= rank < nnodes:
            raise SystemExit(f"node rank {rank} is not in 0..{nnodes - 1} (launcher.nnodes {nnodes})")
        print(f"torchrun: node {rank} of {nnodes}, {nproc} process(es) each, meeting at {endpoint}; "
              "on the other machines run:", flush=True)
        for line in node_commands(run_dir, nnodes, rank, resume):
            print(f"  {line}", flush=True)
        return [f"--nnodes={nnodes}", f"--node_rank={rank}", f"--nproc_per_node={nproc}",
                "--rdzv_backend=static", f"--rdzv_endpoint={endpoint}", "--max_restarts=0"] + worker
    if nproc <= 1:
        return None
    return ["--standalone", f"--nproc_per_node={nproc}"] + worker


def node_commands(run_dir: str, nnodes: int, this_rank: int, resume: bool) -> list[str]:
    """The command for each other machine of a multi-machine torchrun run (same Python, same
    trainer folder, same run folder path: a shared file system, or a copy of config.yaml there).

    Args:
        run_dir (str): the run folder.
        nnodes (int): machines taking part.
        this_rank (int): the rank of this machine (left out).
        resume (bool): add ``--resume``.

    Returns:
        list[str]: one shell command per other rank.
    """
    import shlex
    from pathlib import Path
    trainer = str(Path(__file__).resolve().parent.parent)
    out = []
    for k in range(nnodes):
        if k == this_rank:
            continue
        argv = [sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(Path(run_dir).resolve()),
                "--node-rank", str(k)] + (["--resume"] if resume else [])
        out.append(f"PYTHONPATH={shlex.quote(trainer)} " + " ".join(shlex.quote(a) for a in argv))
    return out


def torchrun_command(args: list[str]) -> int:
    """``python -m finetune_lab torchrun ARGS``: torch.distributed.run with ARGS (which end in
    ``-m finetune_lab run --run-dir DIR``), in this process, exit code following the run (see
    run_torchrun). A Slurm job's state then says how the run ended: a stop is COMPLETED."""
    if "--run-dir" not in args or args.index("--run-dir") + 1 >= len(args):
        print("error: finetune_lab torchrun: the arguments must end in -m finetune_lab run --run-dir DIR",
              file=sys.stderr, flush=True)
        return 2
    # A stop (scancel --signal=INT) while torch imports: remember it and start nothing.
    early: list[int] = []
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda signum, frame: early.append(signum))
    import torch.distributed.run  # noqa: F401  (the slow import, under the handler above)
    if early:
        print(f"finetune_lab torchrun: {signal.Signals(early[0]).name} before torchrun started: not starting", flush=True)
        return 0
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return run_torchrun(args, args[args.index("--run-dir") + 1])


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


DEFAULT_RUNS_DIR = os.path.join(".finetune", "runs")


def analysis_command(args) -> int:
    """analyse / reduce-intruders: progress lines and JSON lines ({"run", "dir"} when a run
    folder exists, {"run", "dir", "status"} when it ends) on stdout. Exit 2 with one
    "error: ..." line on stderr for bad input (nothing written), 1 when a run failed (its folder
    says why), 130 when a signal stopped it."""
    from pathlib import Path
    from .sources import SourceError
    runs_dir = Path(args.runs_dir).expanduser().resolve()
    try:
        if args.command == "analyse":
            from .analyse import analyse
            from .analysis_plan import plan_analysis
            print("finetune_lab analyse: checking the inputs", flush=True)
            plan = plan_analysis(args.base, args.adapter, args.model, args.experiment, args.name)
            return analyse(plan, runs_dir)[1]
        from .reduce_intruders import parse_lambdas, reduce_intruders
        return reduce_intruders(runs_dir, args.run_id, parse_lambdas(args.lambdas), args.top_k, args.epsilon)[1]
    except SourceError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2


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


def estimate_command(config: str, base_dir: str | None, gpu_gib: float | None, gpus: int | None,
                     gpu_name: str | None, advice: bool) -> int:
    """One JSON array on stdout, an item per config ({"memory": ...} or {"error": ...}); exit 1
    with one line on stderr when the input itself cannot be read."""
    from .estimate import base_dir_default, estimate_many, read_configs
    try:
        text = sys.stdin.read() if config == "-" else open(config, encoding="utf-8").read()
        configs = read_configs(text)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    items = estimate_many(configs, base_dir or base_dir_default(config), gpu_gib, advice, gpus, gpu_name)
    print(json.dumps(items), flush=True)
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
