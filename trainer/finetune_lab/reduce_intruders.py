"""Intruder reduction: PEFT's own ``reduce_intruder_dimension`` (Shuttleworth et al. 2024, "LoRA vs
Full Fine-tuning: An Illusion of Equivalence", arXiv 2410.21228, §6) applied to a run's LoRA
adapter, each result saved in PEFT's format and analysed like any finetune (analyse.py), so the
Pareto view shows how much forgetting it recovers and what learning it costs.

``python -m finetune_lab reduce-intruders RUN_ID --runs-dir DIR [--lambda 0.75 | 0.25,0.5,0.75,1]
[--top-k 10] [--epsilon 0.5]``: the source is a training run's newest LoRA checkpoint or an
analysis run's adapter; its base, evaluations and spectra settings are the source's. One analysis
run per λ, each holding its mitigated adapter in ``adapter/``; several λ share a sweep id
(meta.json), so the Runs view groups them and the Pareto view draws them as one path.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import torch
import yaml

from .analyse import AnalysisRun, count_params, eval_device, evaluator_for, load_models, validate_config
from .analysis_plan import AnalysisPlan, plan_analysis, with_adapter
from .sources import SourceError, checkpoint_step

_RUN_ID = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclasses.dataclass
class SourceRun:
    """The run whose adapter is mitigated, and what its analyses inherit."""

    id: str
    name: str            # experiment_name: the reduced runs sit beside it in the Runs view
    adapter: Path
    base: str
    pretrain_steps: int | None
    step: int
    settings: dict       # evals, spectra, data


def run_folder(runs_dir: Path, run_id: str) -> Path:
    """The folder of ``run_id`` inside ``runs_dir``; never a path outside it.

    Raises:
        SourceError: not a run id (separators, '..'), or no such run.
    """
    if not _RUN_ID.match(run_id) or run_id in (".", ".."):
        raise SourceError(f"not a run id: {run_id!r} (letters, digits and _ . + - only; no path)")
    folder = (runs_dir / run_id).resolve()
    if folder.parent != runs_dir.resolve() or not folder.is_dir():
        raise SourceError(f"no run {run_id} in {runs_dir}")
    return folder


def find_source(runs_dir: Path, run_id: str) -> SourceRun:
    """The adapter of run ``run_id``: an analysis run's (config.yaml source.adapter) or a
    LoRA training run's newest checkpoint.

    Raises:
        SourceError: unreadable run, full finetuning, or no LoRA checkpoint yet.
    """
    folder = run_folder(runs_dir, run_id)
    try:
        meta_file = folder / "meta.json"  # a run made by hand (python -m finetune_lab run) may have none
        meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
        cfg = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise SourceError(f"run {run_id}: cannot read meta.json and config.yaml ({e})") from e
    if meta.get("kind") == "analysis":
        try:
            validate_config(cfg)
        except ValueError as e:
            raise SourceError(f"run {run_id}: config.yaml: {e}") from e
        if cfg["method"] != "lora":
            raise SourceError(f"run {run_id} analysed a full checkpoint: reduce-intruders needs a LoRA adapter")
        adapter = Path(cfg["source"]["adapter"])
        return SourceRun(run_id, cfg["name"], adapter if adapter.is_absolute() else folder / adapter, cfg["model"]["base"],
                         cfg["model"].get("pretrain_steps"), cfg["source"]["step"],
                         {k: cfg[k] for k in ("evals", "spectra", "data")})
    from .config import ConfigError, resolve
    try:
        cfg = resolve(cfg)
    except ConfigError as e:
        raise SourceError(f"run {run_id}: config.yaml: {e}") from e
    if cfg["method"] != "lora":
        raise SourceError(f"run {run_id} is full finetuning: reduce-intruders needs a LoRA adapter (PEFT's "
                          "reduce_intruder_dimension works on LoRA layers only)")
    ckpts = sorted(p for p in (folder / "checkpoints").glob("step-*") if (p / "adapter_config.json").is_file())
    if not ckpts:
        raise SourceError(f"run {run_id} has no LoRA checkpoint yet (checkpoints/step-N/adapter_config.json)")
    return SourceRun(run_id, meta.get("experiment_name") or cfg["name"], ckpts[-1], cfg["model"]["base"],
                     cfg["model"].get("pretrain_steps"), checkpoint_step(ckpts[-1]),
                     {"evals": cfg["evals"], "spectra": cfg["spectra"], "data": {"seq_len": cfg["data"]["seq_len"]}})


def parse_lambdas(text: str) -> list[float]:
    """``0.75`` or ``0.25,0.5,0.75,1``: each in [0, 1]. PEFT scales each intruder dimension by λ
    (W + ΔW + (λ − 1)·σ u vᵀ): 1 keeps it as trained, 0 removes it.

    Raises:
        SourceError: not numbers, out of range, or repeated.
    """
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise SourceError(f"--lambda {text}: expected a number or a comma-separated list (0.25,0.5,0.75,1)") from e
    bad = [v for v in values if not 0.0 <= v <= 1.0]
    if not values or bad:
        raise SourceError(f"--lambda {text}: each value must be between 0 and 1 (got {bad[0] if bad else 'none'})")
    if len(set(values)) != len(values):
        raise SourceError(f"--lambda {text}: a value is repeated")
    return values


def _label(lam: float) -> str:
    return f"reduced-lambda{lam:g}"


def reduce_intruders(runs_dir: Path, run_id: str, lambdas: list[float], top_k: int = 10, epsilon: float = 0.5,
                     out=sys.stdout) -> tuple[list[AnalysisRun], int]:
    """Mitigate the run's adapter at each λ and analyse each result as its own run.

    Returns:
        (the runs made, exit code: 0 all completed, 1 one failed, 130 stopped by a signal).

    Raises:
        SourceError: bad input, before any run folder is made.
    """
    if top_k < 1 or not 0.0 < epsilon <= 1.0:
        raise SourceError(f"--top-k must be ≥ 1 and --epsilon in (0, 1] (got {top_k}, {epsilon})")
    src = find_source(runs_dir, run_id)
    plan0 = plan_analysis(src.base, str(src.adapter), None, name=src.name, settings=src.settings,
                          pretrain_steps=src.pretrain_steps)
    plan0.step = src.step
    from peft import PeftModel
    from peft.tuners.lora.intruders import reduce_intruder_dimension

    device = eval_device()
    print(f"reduce-intruders: {src.adapter} (run {run_id}), λ {', '.join(f'{v:g}' for v in lambdas)}, "
          f"top_k {top_k}, ε {epsilon}", file=out, flush=True)
    base, tokenizer = load_models(plan0, device)
    model = PeftModel.from_pretrained(base, str(src.adapter), adapter_name="source").to(device).eval()
    evaluator = evaluator_for(plan0, tokenizer, device, runs_dir)
    base_scores = None
    if evaluator is not None:
        with model.disable_adapter():  # step 0 is the base, the same for every λ: scored once
            base_scores = {**evaluator.evaluate(model, 0), "step": 0}
    sweep_id = f"{src.name}-reduce-{int(time.time() * 1000):x}" if len(lambdas) > 1 else None
    runs: list[AnalysisRun] = []
    for i, lam in enumerate(lambdas):
        run, code = _one(runs_dir, src, plan0, model, reduce_intruder_dimension, evaluator, base_scores, lam,
                         top_k, epsilon, (sweep_id, i, len(lambdas)) if sweep_id else None, device, out)
        runs.append(run)
        if code:
            return runs, code
    return runs, 0


def _one(runs_dir: Path, src: SourceRun, plan0: AnalysisPlan, model, reduce_fn, evaluator, base_scores, lam: float,
         top_k: int, epsilon: float, sweep, device, out) -> tuple[AnalysisRun, int]:
    """One λ: PEFT's mitigation into adapter "default", saved in PEFT's format into a new
    analysis run's adapter/, analysed; the model is left with only the source adapter."""
    lines: list[str] = []
    reduce_fn(model, old_adapter_name="source", new_adapter_name="default", top_k=top_k,
              threshold_epsilon=epsilon, mitigation_lambda=lam, logging_sink=lines.append)
    tmp = runs_dir / f".reduce-intruders-{os.getpid()}-{time.time_ns()}"
    model.save_pretrained(str(tmp), selected_adapters=["default"])  # "default" is saved at the folder's root
    config = dict(plan0.config, source={"adapter": "adapter", "step": src.step},
                  reduce_intruders={"source_run": src.id, "lambda": lam, "top_k": top_k, "epsilon": epsilon})
    plan = with_adapter(plan0, tmp, config)
    run = AnalysisRun(runs_dir, plan, _label(lam), sweep=sweep, overrides={"reduce_intruders.lambda": lam}, out=out)

    def work() -> None:
        shutil.move(str(tmp), str(run.dir / "adapter"))
        run.plan = with_adapter(plan0, run.dir / "adapter", config)
        run.started(device, count_params(run.plan))
        affected = [ln for ln in lines if "Intruders:" in ln]
        run.log(f"PEFT reduce_intruder_dimension (λ {lam:g}, top_k {top_k}, ε {epsilon}) on {src.adapter}: "
                f"intruders in {len(affected)} of {sum('ntruders' in ln for ln in lines)} layers"
                + (f" ({'; '.join(affected[:6])}{' …' if len(affected) > 6 else ''})" if affected else ""), event=True)
        if run.plan.adapter.variant == "dora":
            run.log("DoRA: PEFT's reduce_intruder_dimension rewrites lora_A/lora_B only; the mitigated adapter's "
                    "magnitude vector is PEFT's fresh one, not the trained one", event=True, level="warning")
        run.spectra(device)
        if evaluator is not None:
            run.status.update(phase="evaluating")
            run.evaluation(base_scores)
            run.evaluation({**evaluator.evaluate(model, src.step), "step": src.step})  # "default" is active

    try:
        return run, run.conclude(work)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        model.set_adapter("source")
        model.delete_adapter("default")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
