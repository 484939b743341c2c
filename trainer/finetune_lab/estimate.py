"""``python -m finetune_lab estimate``: the memory estimate of planned runs, the limit it is
checked against, and what would make a run fit (schemas/estimate.schema.json).

The limit is the memory of one GPU (the smallest this machine has, as doctor reports it; or the
``--gpu-gib`` the editor passes from ``finetuneLab.memoryLimitGiB``), or the host's RAM for a run
that trains on the CPU. A run over the limit gets advice: each change that would bring it down,
re-estimated (LoRA instead of full, gradient checkpointing, FSDP over N GPUs, a smaller batch with
more accumulation to keep the global batch, bf16), and all of them together when none is enough.
"""

from __future__ import annotations

import copy
from pathlib import Path

from .config import ConfigError, resolve
from .memory import GIB, Plan, components
from .model_shape import lora_shape, model_shape

CUDA_HEADROOM = (0.95, 1.0)  # usable = 95% of the GPU minus 1 GiB: CUDA context, workspaces, fragmentation
HOST_HEADROOM = (0.90, 1.0)  # 90% of RAM minus 1 GiB: Python, torch's libraries, the OS
DEFAULT_FSDP_GPUS = 8  # FSDP advice when this machine has no more than one GPU


def world_size(launcher: dict) -> int:
    """Processes the launcher starts (one per GPU): torchrun nproc_per_node x nnodes, Slurm
    gpus_per_node (else nproc_per_node) x nodes, local 1."""
    kind = launcher.get("kind", "local")
    if kind == "torchrun":
        return launcher.get("nproc_per_node", 1) * launcher.get("nnodes", 1)
    if kind == "slurm":
        return (launcher.get("gpus_per_node") or launcher.get("nproc_per_node", 1)) * launcher.get("nodes", 1)
    return 1


def run_device(cfg: dict, cuda_here: bool) -> str:
    """cuda | cpu: train.device, or for auto what the trainer would pick (a Slurm job: its GPUs)."""
    device = cfg["train"]["device"]
    if device != "auto":
        return device
    return "cuda" if cuda_here or cfg["launcher"].get("kind") == "slurm" else "cpu"


def resolve_precision(setting: str, device: str) -> str:
    """train.precision as the trainer resolves it: auto is bf16-mixed on CUDA, fp32 on the CPU;
    bf16 is the older name of bf16-mixed."""
    if setting == "auto":
        return "bf16-mixed" if device == "cuda" else "fp32"
    return "bf16-mixed" if setting == "bf16" else setting


def plan_for(cfg: dict, cuda_here: bool) -> Plan:
    """The memory-relevant settings of a resolved run config."""
    t, launcher = cfg["train"], cfg["launcher"]
    device = run_device(cfg, cuda_here)
    world = world_size(launcher)
    return Plan(
        method=cfg["method"], precision=resolve_precision(t["precision"], device), device=device,
        batch_size=t["batch_size"], seq_len=cfg["data"]["seq_len"], grad_accum=t["grad_accum"],
        gradient_checkpointing=bool(t.get("gradient_checkpointing", False)), optimizer=t["optimizer"],
        world_size=world, fsdp=launcher.get("sharding", "none") == "fsdp" and world > 1,
        lora_dropout=cfg["lora"]["dropout"] if cfg["method"] == "lora" else 0.0)


def estimate_bytes(cfg: dict, plan: Plan, base_dir: str | None) -> dict:
    """components() for a resolved config under ``plan``."""
    base = cfg["model"]["base"]
    shape = model_shape(base, base_dir)
    lora = lora_shape(base, cfg["lora"], base_dir) if plan.method == "lora" else None
    return components(shape, lora, plan)


def _gib(x: float) -> float:
    return round(x / GIB, 2)


def memory_json(parts: dict, plan: Plan) -> dict:
    """The schema's ``memory`` object (without limit, fits and advice)."""
    return {
        "total_gib": _gib(parts["total"]), "weights_gib": _gib(parts["weights"]),
        "gradients_gib": _gib(parts["gradients"]), "optimizer_gib": _gib(parts["optimizer"]),
        "activations_gib": _gib(parts["activations"]), "devices": plan.world_size, "per_device": True,
        "device": plan.device, "precision": plan.precision,
        "params": {"total": int(parts["params"]), "trainable": int(parts["trainable"])},
        "notes": parts["notes"],
    }


# ---------------------------------------------------------------------------- the limit

def detect_limit(device: str, gpu_gib: float | None = None, gpus: list[dict] | None = None) -> dict | None:
    """What a run on ``device`` is checked against: {gib, usable_gib, source, name} or None (a
    CUDA run planned on a machine without a GPU, with no --gpu-gib).

    Args:
        device (str): cuda | cpu.
        gpu_gib (float | None): memory per GPU given by the caller (finetuneLab.memoryLimitGiB).
        gpus (list[dict] | None): doctor's ``gpus`` (each with memory_mb and name).
    """
    if gpu_gib:
        gib, source, name = gpu_gib, "setting", f"{gpu_gib:g} GiB per GPU (the limit set)"
    elif device == "cuda" and gpus:
        smallest = min(gpus, key=lambda g: g["memory_mb"])
        gib, source, name = smallest["memory_mb"] / 1024, "gpu", smallest["name"]
    elif device == "cpu":
        from .doctor import host_memory_mb
        gib, source, name = host_memory_mb() / 1024, "host", "host RAM"
    else:
        return None
    share, fixed = HOST_HEADROOM if source == "host" else CUDA_HEADROOM
    return {"gib": round(gib, 2), "usable_gib": round(max(0.0, gib * share - fixed), 2), "source": source, "name": name}


# ---------------------------------------------------------------------------- advice

def _set(cfg: dict, dotted: str, value) -> None:
    section, _, key = dotted.partition(".")
    if key:
        cfg.setdefault(section, {})[key] = value
    else:
        cfg[section] = value


def _variants(cfg: dict, plan: Plan, fsdp_gpus: int) -> list[dict]:
    """Single changes that lower the estimate, as {set: {dotted key: value}, note}."""
    t, launcher = cfg["train"], cfg["launcher"]
    out = []
    if cfg["method"] == "full":
        out.append({"set": {"method": "lora"}, "note": f"rank {cfg['lora']['rank']}, {cfg['lora']['target_modules']} modules"})
    if not plan.gradient_checkpointing:
        out.append({"set": {"train.gradient_checkpointing": True}})
    if cfg["method"] == "full" and not plan.fsdp:
        n = max(plan.world_size, fsdp_gpus)
        where = ({"launcher.gpus_per_node": n} if launcher.get("kind") == "slurm"
                 else {"launcher.kind": "torchrun", "launcher.nproc_per_node": n})
        out.append({"set": {**where, "launcher.sharding": "fsdp"}, "note": f"per GPU; the global batch grows {n}x"})
    if t["batch_size"] > 1:
        b = t["batch_size"]
        for smaller in sorted({b // 2, b // 4, b // 8, 1} - {0}, reverse=True):
            if b % smaller == 0 and smaller < b:
                out.append({"set": {"train.batch_size": smaller, "train.grad_accum": t["grad_accum"] * b // smaller},
                            "note": "same global batch"})
    if plan.device == "cuda" and plan.precision == "fp32":
        out.append({"set": {"train.precision": "bf16-mixed" if cfg["method"] == "lora" else "bf16-true"}})
    return out


def _text(change: dict) -> str:
    values = ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in change["set"].items())
    return values + (f" ({change['note']})" if change.get("note") else "")


def advise(cfg: dict, plan: Plan, base_dir: str | None, usable_gib: float | None, fsdp_gpus: int,
           cuda_here: bool) -> list[dict]:
    """Changes that lower this run's estimate, each re-estimated: {set, text, total_gib, fits}.

    Batch sizes: only the largest smaller one that fits (or the smallest tried). When no single
    change fits ``usable_gib``, one more item combines changes in the order listed until it does.
    Sorted: those that fit first, then by the total.
    """
    def total_with(changes: dict) -> float:
        variant = copy.deepcopy(cfg)
        for k, v in changes.items():
            _set(variant, k, v)
        variant = resolve(variant)
        return estimate_bytes(variant, plan_for(variant, cuda_here), base_dir)["total"] / GIB

    fits = (lambda g: g <= usable_gib) if usable_gib is not None else (lambda g: False)
    items, batch_done = [], False
    for change in _variants(cfg, plan, fsdp_gpus):
        is_batch = "train.batch_size" in change["set"]
        if is_batch and batch_done:
            continue
        total = total_with(change["set"])
        last_batch = is_batch and change["set"]["train.batch_size"] == 1
        if is_batch and not fits(total) and not last_batch:
            continue  # a smaller batch may fit
        batch_done |= is_batch
        items.append({"set": change["set"], "text": _text(change), "total_gib": round(total, 2), "fits": fits(total)})
    if usable_gib is not None and items and not any(i["fits"] for i in items):
        together: dict = {}
        for item in items:
            try:
                total = total_with({**together, **item["set"]})
            except ConfigError:
                continue  # not a valid combination, e.g. LoRA with FSDP sharding (config.check_sharding)
            together.update(item["set"])
            if fits(total):
                break
        items.append({"set": together, "text": "together: " + _text({"set": together}),
                      "total_gib": round(total, 2), "fits": fits(total)})
    return sorted(items, key=lambda i: (not i["fits"], i["total_gib"]))


# ---------------------------------------------------------------------------- entry points

def estimate_run(raw: dict, base_dir: str | None = None, gpu_gib: float | None = None,
                 gpus: list[dict] | None = None, advice: bool = True) -> dict:
    """The estimate of one run config (written or resolved), checked against the limit.

    Args:
        raw (dict): a run config (the experiment schema; defaults are filled here).
        base_dir (str | None): the experiment file's folder, for a relative ``hf:`` folder.
        gpu_gib (float | None): memory per GPU to assume (the run is then a CUDA run).
        gpus (list[dict] | None): this machine's GPUs (doctor's ``gpus``); None: ask torch.
        advice (bool): compute advice when the run does not fit.

    Returns:
        dict: the schema's ``memory`` object: sizes in GiB per device, devices, limit, fits, advice.
    """
    if gpus is None:
        from .doctor import gpu_list
        gpus = gpu_list()
    cuda_here = bool(gpus) or bool(gpu_gib)
    cfg = resolve(copy.deepcopy(raw))
    plan = plan_for(cfg, cuda_here)
    out = memory_json(estimate_bytes(cfg, plan, base_dir), plan)
    limit = detect_limit(plan.device, gpu_gib, gpus)
    out["limit"] = limit
    out["fits"] = None if limit is None else out["total_gib"] <= limit["usable_gib"]
    out["advice"] = []
    if advice and out["fits"] is False:
        fsdp_gpus = len(gpus) if len(gpus) > 1 else DEFAULT_FSDP_GPUS
        out["advice"] = advise(cfg, plan, base_dir, limit["usable_gib"], fsdp_gpus, cuda_here)
    return out


def estimate_many(configs: list[dict], base_dir: str | None = None, gpu_gib: float | None = None,
                  advice: bool = True, gpu_count: int | None = None, gpu_name: str | None = None) -> list[dict]:
    """One item per config: {"memory": {...}} or {"error": "..."} (the schema's items). A bad
    config or an unreadable model is that item's error, not the whole answer's.

    Args:
        gpu_gib (float | None): memory per GPU; with ``gpu_name`` it is what doctor reported for
            this machine (the editor caches doctor's answer), without it a setting. None: ask torch.
        gpu_count (int | None): with ``gpu_gib``, how many GPUs (for the FSDP advice).
    """
    if gpu_gib and gpu_name:
        gpus, gpu_gib = [{"name": gpu_name, "memory_mb": gpu_gib * 1024}] * max(1, gpu_count or 1), None
    elif gpu_gib:
        gpus = [{"name": "", "memory_mb": gpu_gib * 1024}] * max(1, gpu_count or 1)
    else:
        from .doctor import gpu_list
        gpus = gpu_list()
    out = []
    for raw in configs:
        try:
            out.append({"memory": estimate_run(raw, base_dir, gpu_gib, gpus, advice)})
        except (ConfigError, ValueError, OSError) as e:
            out.append({"error": str(e)})
    return out


def oom_message(run_config, step: int | None, device, world: int) -> str:
    """The error of a run that ran out of memory: where, this run's estimate against the device,
    and the changes that lower it most (re-estimated; "fits" where they would). Never raises:
    without an estimate it still names the step and the usual remedies.

    Args:
        run_config: the run's RunConfig (config.load_config), or None.
        step (int | None): the optimizer step being computed (1-based), None before training.
        device: the training torch.device (or its type).
        world (int): processes training.
    """
    where = f"out of memory at step {step}" if step else "out of memory before training started"
    try:
        cfg = copy.deepcopy(run_config.raw)
        device = getattr(device, "type", device) or "cpu"
        cfg["train"]["device"] = device
        if world > 1 and cfg["launcher"].get("kind", "local") == "local":
            cfg["launcher"].update(kind="torchrun", nproc_per_node=world)
        from .doctor import gpu_list
        gpus = gpu_list() if device == "cuda" else []
        memory = estimate_run(cfg, None, None, gpus, advice=False)
        limit = memory["limit"]
        # advice even when the estimate fits (something else took memory): what lowers it most
        items = advise(cfg, plan_for(cfg, device == "cuda"), None, limit["usable_gib"] if limit else None,
                       len(gpus) if len(gpus) > 1 else DEFAULT_FSDP_GPUS, device == "cuda")
        against = f" against {limit['usable_gib']:g} GiB usable of {limit['name']}" if limit else ""
        text = f"{where}. Estimate: {format_memory(memory)}{against}."
        if items:
            text += " Would lower it: " + "; ".join(
                f"{i['text']} → {i['total_gib']:g} GiB{' (fits)' if i['fits'] else ''}" for i in items[:4]) + "."
        return text
    except Exception as e:  # the estimate is a courtesy here; the OOM is the error
        return (f"{where} (no estimate: {type(e).__name__}: {e}). Lower train.batch_size or data.seq_len, "
                "set train.gradient_checkpointing: true, or use LoRA.")


def format_memory(memory: dict) -> str:
    """'14.2 GiB per GPU (weights 2.1 · gradients 2.1 · optimizer 4.2 · activations 5.8)'."""
    per = "per GPU" if memory["device"] == "cuda" else "on the CPU"
    return (f"{memory['total_gib']:g} GiB {per} (weights {memory['weights_gib']:g} · gradients "
            f"{memory['gradients_gib']:g} · optimizer {memory['optimizer_gib']:g} · activations "
            f"{memory['activations_gib']:g})")


def read_configs(text: str) -> list[dict]:
    """A JSON or YAML list of run configs (or one config)."""
    import yaml
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"estimate: --config is not valid JSON or YAML: {str(e).splitlines()[0]}") from e
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise ValueError("estimate: --config must hold a run config or a list of run configs (JSON or YAML)")
    return data


def base_dir_default(config_path: str | None) -> str | None:
    return str(Path(config_path).resolve().parent) if config_path and config_path != "-" else None

