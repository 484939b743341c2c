"""Analysis runs: a finetune made by any tool, analysed against its base without training.

``python -m finetune_lab analyse --base B (--adapter DIR | --model DIR) [--experiment F]
[--runs-dir R] [--name N]`` checks everything first (analysis_plan.py: bad input exits 2 and
writes nothing), then makes one run folder of kind analysis (meta.json, config.yaml per
schemas/analysis.schema.json, status.json, events.jsonl, train.log) holding ``run_started``,
``spectrum`` events for every analysed matrix at the source's step, ``eval`` events at step 0
(the base) and at that step (the tuned model), and ``run_finished`` — no ``train`` events, so it
reads in every view like a run that trained.

The spectrum pass holds one matrix at a time (W_base from the base's files, the change from the
adapter's factors or the checkpoint's shard, both read by name): memory is bounded at 7B. The
evaluations need the model itself (base, then base + adapter or the checkpoint).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import sys
import time
import traceback
from pathlib import Path

import torch

from .analysis_plan import AnalysisPlan
from .events import EventWriter
from .spectra_math import left_singular_vectors, matrix_spectrum, random_intruder_count, random_rank90
from .status import StatusFile


def run_id(name: str, label: str, when: float) -> str:
    """``<name>-<yyyymmdd-HHMMSS>-<label>`` in local time, as the extension names runs (src/core/sweep.ts runId)."""
    safe = lambda s: re.sub(r"[^A-Za-z0-9_.+-]", "_", s)  # noqa: E731
    return f"{safe(name)}-{datetime.datetime.fromtimestamp(when).strftime('%Y%m%d-%H%M%S')}-{safe(label)}"


def validate_config(cfg: dict) -> None:
    """Raise ValueError when ``cfg`` does not match schemas/analysis.schema.json (whose model,
    evals and spectra refer into experiment.schema.json)."""
    import jsonschema
    from referencing import Registry, Resource
    from .config import load_schema
    registry = Registry().with_resources(
        [(load_schema(n)["$id"], Resource.from_contents(load_schema(n))) for n in ("experiment", "analysis")])
    errors = list(jsonschema.Draft7Validator(load_schema("analysis"), registry=registry).iter_errors(cfg))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        raise ValueError(f"analysis config invalid at '{'.'.join(map(str, e.absolute_path)) or '<root>'}': {e.message}")


class AnalysisRun:
    """One analysis run folder, from creation to run_finished.

    Args:
        runs_dir (Path): the folder of run folders.
        plan (AnalysisPlan): what is analysed (its config becomes config.yaml).
        label (str): the run id's last part and meta.json's label.
        sweep (tuple[str, int, int] | None): (sweep_id, index, size) of a reduce-intruders λ sweep.
        overrides (dict | None): meta.json's overrides (the sweep point, e.g. reduce_intruders.lambda).
        out: where progress lines go besides train.log (stdout).
    """

    def __init__(self, runs_dir: Path, plan: AnalysisPlan, label: str, sweep: tuple[str, int, int] | None = None,
                 overrides: dict | None = None, out=sys.stdout):
        self.plan, self.out = plan, out
        validate_config(plan.config)
        runs_dir.mkdir(parents=True, exist_ok=True)
        created = time.time()
        base_id = run_id(plan.config["name"], label, created)
        self.id = base_id
        for n in range(2, 10_000):
            try:
                (runs_dir / self.id).mkdir()
                break
            except FileExistsError:
                self.id = f"{base_id}-{n}"
        self.dir = runs_dir / self.id
        meta = {"v": 1, "run_id": self.id, "experiment_name": plan.config["name"],
                "experiment_file": plan.config.get("experiment_file"), "sweep_id": sweep[0] if sweep else None,
                "sweep_index": sweep[1] if sweep else None, "sweep_size": sweep[2] if sweep else None,
                "overrides": overrides or {}, "created": created, "label": label, "kind": "analysis"}
        _write_atomic(self.dir / "meta.json", json.dumps(meta, indent=2))
        self.write_config()
        self.status = StatusFile(self.dir, total_steps=plan.step)
        self.status.update(step=0)
        self.status.start_heartbeat()
        self.events = EventWriter(self.dir)

    def write_config(self) -> None:
        import yaml
        _write_atomic(self.dir / "config.yaml", f"# Analysis run {self.id}: written by finetune_lab analyse "
                      f"(schemas/analysis.schema.json).\n" + yaml.safe_dump(self.plan.config, sort_keys=False))

    def log(self, message: str, event: bool = False, level: str = "info") -> None:
        """A progress line on stdout and in train.log; with ``event``, also a log event."""
        print(message, file=self.out, flush=True)
        with open(self.dir / "train.log", "a", encoding="utf-8") as f:
            f.write(message + "\n")
        if event:
            self.events.emit("log", level=level, message=message)

    def started(self, device: torch.device, params: dict) -> None:
        p = self.plan
        self.events.emit("run_started", config=p.config, device=str(device), precision="fp32", method=p.method,
                         model=p.base.ref, params=params, total_steps=p.step, resumed_from=None, world_size=1,
                         kind="analysis")
        print(json.dumps({"run": self.id, "dir": str(self.dir)}), file=self.out, flush=True)
        for note in p.notes:
            self.log(note, event=True)

    def spectra(self, device: torch.device, seed: int = 0) -> int:
        """One spectrum event per planned matrix at the source's step, one matrix in memory at a
        time. Returns how many were written (an unchanged matrix of a full checkpoint is skipped)."""
        p, cfg = self.plan, self.plan.config["spectra"]
        k, eps, top_k = int(cfg["intruder_k"]), float(cfg["intruder_epsilon"]), int(cfg["top_k"])
        self.status.update(phase="spectra")
        written, unchanged = 0, []
        for i, m in enumerate(p.matrices):
            with torch.no_grad():
                w_base = p.base.w(m.module).to(device).float()
                lora, w_tuned = None, None
                if m.adapter is not None:
                    lora = p.adapter.factors(m.adapter)
                    lora.A, lora.B = lora.A.to(device), lora.B.to(device)
                    lora.magnitude = lora.magnitude.to(device) if lora.magnitude is not None else None
                else:
                    w_tuned = p.checkpoint.weights.get(m.tuned_key)
                    w_tuned = (w_tuned.T if m.tuned_transposed else w_tuned).to(device).float()
                    if torch.equal(w_tuned, w_base):
                        unchanged.append(m.module)
                        continue
                u_base = left_singular_vectors(w_base) if k > 0 else None
                fields = matrix_spectrum(w_base, w_tuned=w_tuned, lora=lora, top_k=top_k, intruder_k=k, eps=eps, u_base=u_base)
                random_intruders = random_intruder_count(u_base, k, eps, seed + i) if u_base is not None else None
                del w_base, w_tuned, lora, u_base
            if fields is None:
                self.log(f"{m.module}: the change is not finite (NaN or inf): no spectrum", event=True, level="warning")
                continue
            self.events.emit("spectrum", step=p.step, module=m.module, name=m.name, layer=m.layer, kind=m.kind,
                             shape=list(m.shape), **fields, random_rank90=random_rank90(m.shape, seed),
                             random_intruders=random_intruders,
                             lora_rank=p.adapter.rank_of(m.adapter) if m.adapter is not None else None)
            written += 1
            self.status.update_throttled(phase="spectra")
        if unchanged:
            self.log(f"unchanged by the finetune, so no spectrum: {', '.join(unchanged[:8])}"
                     + (" …" if len(unchanged) > 8 else ""), event=True)
        self.log(f"spectra: {written} matrices at step {p.step}")
        return written

    def evaluation(self, payload: dict) -> None:
        self.events.emit("eval", **payload)
        roles = ", ".join(f"{r} {payload[r]['value']:.4f}" for r in ("learning", "forgetting") if payload.get(r))
        self.log(f"eval step {payload['step']}: {roles or 'no tasks'}")

    def conclude(self, work) -> int:
        """Run ``work()`` (the analysis's passes), then end the run: completed (exit code 0),
        stopped by SIGINT/SIGTERM (130: the editor's Cancel), failed with the traceback (1). The
        folder is readable whichever way it ends."""
        previous = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            work()
            self.finish("completed")
            return 0
        except KeyboardInterrupt:
            self.finish("stopped", "stopped by a signal before the analysis ended")
            return 130
        except Exception as e:
            tb = traceback.format_exc()
            print(tb, file=sys.stderr, flush=True)
            self.finish("failed", f"{type(e).__name__}: {e}", tb)
            return 1
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def finish(self, state: str, error: str | None = None, tb: str | None = None) -> None:
        self.events.emit("run_finished", status=state, error=error, step=self.plan.step if state == "completed" else 0,
                         traceback=tb)
        if state == "completed":
            self.status.update(step=self.plan.step)
        self.status.finish(state, error)
        self.log(f"analysis {state}" + (f": {error}" if error else ""))
        print(json.dumps({"run": self.id, "dir": str(self.dir), "status": state, **({"error": error} if error else {})}),
              file=self.out, flush=True)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def eval_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def count_params(plan: AnalysisPlan) -> dict:
    """{"total": the base's parameters, "trainable": the adapter's (or all, for a full checkpoint)},
    from the files' headers."""
    total = sum(int(torch.Size(plan.base.weights.shape(n)).numel()) for n in plan.base.weights.names())
    if plan.adapter is None:
        return {"total": total, "trainable": total}
    w = plan.adapter.weights
    return {"total": total, "trainable": sum(int(torch.Size(w.shape(n)).numel()) for n in w.names())}


def load_models(plan: AnalysisPlan, device: torch.device):
    """(base model, tokenizer) on ``device``: the base loaded from its folder (a Hub name was
    resolved to the cache already, so nothing is downloaded here)."""
    from .model import load_base
    ref = plan.base.ref if plan.base.ref.startswith("builtin:") else f"hf:{plan.base.folder}"
    model, tokenizer = load_base(ref, plan.base.pretrain_steps)
    return model.to(device).eval(), tokenizer


def tuned_model(plan: AnalysisPlan, base_model, device: torch.device, adapter_name: str = "default"):
    """The finetuned model: base + the adapter (PEFT's own loader, after sources.py checked the
    files), or the full checkpoint loaded on its own (the base is freed first by the caller)."""
    if plan.adapter is not None:
        from peft import PeftModel
        return PeftModel.from_pretrained(base_model, str(plan.source), adapter_name=adapter_name).to(device).eval()
    from transformers import AutoModelForCausalLM
    from .builtin import ATTN_IMPLEMENTATION
    return AutoModelForCausalLM.from_pretrained(str(plan.source), torch_dtype=torch.float32,
                                                attn_implementation=ATTN_IMPLEMENTATION).to(device).eval()


def evaluator_for(plan: AnalysisPlan, tokenizer, device: torch.device, run_dir: Path):
    from .evals import Evaluator
    ev = plan.config["evals"]
    if not (ev.get("learning") or ev.get("forgetting")):
        return None
    return Evaluator(ev, tokenizer, plan.config["data"]["seq_len"], device, run_dir)


def analyse(plan: AnalysisPlan, runs_dir: Path, out=sys.stdout) -> tuple[AnalysisRun, int]:
    """Make and fill the analysis run of ``plan``. Returns (the run, exit code 0 completed |
    1 failed | 130 stopped by SIGINT/SIGTERM); a failure leaves the folder readable and failed."""
    run = AnalysisRun(runs_dir, plan, "analysis", out=out)
    device = eval_device()

    def work() -> None:
        run.started(device, count_params(plan))
        run.log(f"analysing {plan.source} ({plan.method}, step {plan.step}) against {plan.base.ref}: "
                f"{len(plan.matrices)} matrices")
        run.spectra(device)
        if not (plan.config["evals"].get("learning") or plan.config["evals"].get("forgetting")):
            return
        run.status.update(phase="evaluating")
        base, tokenizer = load_models(plan, device)
        evaluator = evaluator_for(plan, tokenizer, device, run.dir)
        run.evaluation({**evaluator.evaluate(base, 0), "step": 0})
        if plan.adapter is None:
            del base  # a full checkpoint is a whole second model: free the base first
            base = None
        tuned = tuned_model(plan, base, device)
        run.evaluation({**evaluator.evaluate(tuned, plan.step), "step": plan.step})

    return run, run.conclude(work)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
