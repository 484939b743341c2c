"""What an analysis run will do, decided and checked before anything is written: the base, the
finetune (adapter or full checkpoint), every matrix whose change is analysed with its shape
checked against the base, what is skipped and why, and the run's config.yaml
(schemas/analysis.schema.json). A problem here is bad input: it names the file, the module and
both shapes, and no run folder is made.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .config import ConfigError, fill_defaults, load_schema, resolve
from .module_names import canonical_name, layer_index, module_kind, selects
from .sources import Adapter, AdapterModule, Base, Checkpoint, SourceError, checkpoint_step, folder_kind, resolve_base


@dataclass
class MatrixPlan:
    """One matrix whose change is analysed."""

    module: str                          # canonical name, e.g. model.layers.0.self_attn.q_proj
    kind: str                            # attention | mlp
    shape: tuple[int, int]               # [out, in]
    adapter: AdapterModule | None = None  # LoRA: the adapter's factors
    tuned_key: str | None = None         # full: the checkpoint's tensor
    tuned_transposed: bool = False

    @property
    def name(self) -> str:
        return self.module.split(".")[-1]

    @property
    def layer(self) -> int:
        return layer_index(self.module)


@dataclass
class AnalysisPlan:
    base: Base
    method: str                      # lora | full
    source: Path                     # the adapter or checkpoint folder
    step: int
    config: dict                     # config.yaml (schemas/analysis.schema.json)
    adapter: Adapter | None = None
    checkpoint: Checkpoint | None = None
    matrices: list[MatrixPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what is left out and why (log events)


def analysis_defaults() -> dict:
    """evals, spectra and data.seq_len when no experiment file is given: the analysis schema's
    ``evals`` default, every other value the experiment schema's own default."""
    exp = load_schema("experiment")
    evals = copy.deepcopy(load_schema("analysis")["properties"]["evals"]["default"])
    return {"evals": fill_defaults(evals, exp["properties"]["evals"], exp),
            "spectra": fill_defaults({}, exp["properties"]["spectra"], exp),
            "data": {"seq_len": exp["properties"]["data"]["properties"]["seq_len"]["default"]}}


def experiment_settings(file: Path) -> dict:
    """evals (data paths made absolute), spectra, data.seq_len and model of an experiment file.

    Raises:
        SourceError: unreadable or invalid (the message names the file and the field).
    """
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        cfg = resolve(raw)
    except OSError as e:
        raise SourceError(f"--experiment {file}: cannot read it ({e})") from e
    except yaml.YAMLError as e:
        raise SourceError(f"--experiment {file}: not valid YAML: {e}") from e
    except ConfigError as e:
        raise SourceError(f"--experiment {file}: {e}") from e
    evals = copy.deepcopy(cfg["evals"])
    for task in evals.get("learning", []) + evals.get("forgetting", []):
        ref = task["data"]
        if not ref.startswith("builtin:") and not Path(ref).expanduser().is_absolute():
            task["data"] = str((file.parent / ref).resolve())  # relative to the experiment file, as for runs
    return {"evals": evals, "spectra": cfg["spectra"], "data": {"seq_len": cfg["data"]["seq_len"]}, "model": cfg["model"]}


def _adapter_matrices(base: Base, adapter: Adapter, modules) -> tuple[list[MatrixPlan], list[str]]:
    plans, notes, skipped = [], [], []
    order = _model_order(base)
    for m in sorted(adapter.modules, key=lambda m: order(m.module)):
        if m.embedding:
            notes.append(f"{m.module}: an adapter on an embedding (lora_embedding_A/B) is not a weight matrix's "
                         "change: skipped (it is part of the evaluated model)")
            continue
        found = base.matrix(m.module)
        if found is None:
            raise SourceError(f"the base does not match the adapter: the adapter changes {m.module}, which {base.ref} "
                              f"({base.folder}) has no weight matrix for")
        out_in = adapter.delta_shape(m)
        if out_in != found[1]:
            a, b = adapter.weights.shape(m.a_key), adapter.weights.shape(m.b_key)
            raise SourceError(f"the base does not match the adapter: {m.module} is {list(found[1])} in the base "
                              f"({base.ref}) but {list(out_in)} in the adapter (lora_B {list(b)} · lora_A {list(a)}, "
                              f"{adapter.weights.files[0]})")
        kind = module_kind(m.module)
        if kind is None:
            skipped.append(m.module)
        elif selects(modules, m.module, kind):
            plans.append(MatrixPlan(m.module, kind, out_in, adapter=m))
    if skipped:
        notes.append(f"not attention or MLP, so not in the spectra: {', '.join(skipped)}")
    if adapter.other:
        notes.append(f"other tensors in the adapter (modules_to_save, biases) are not analysed: {', '.join(adapter.other[:6])}"
                     + (" …" if len(adapter.other) > 6 else ""))
    return plans, notes


def _checkpoint_matrices(base: Base, ckpt: Checkpoint, modules) -> tuple[list[MatrixPlan], list[str]]:
    plans, skipped = [], []
    order = _model_order(base)
    for key in sorted(ckpt.weights.names(), key=lambda k: order(canonical_name(k.removesuffix(".weight")))):
        shape = ckpt.weights.shape(key)
        if not key.endswith(".weight") or len(shape) != 2:
            continue
        module = canonical_name(key.removesuffix(".weight"))
        cls = base.class_of(module)
        kind = module_kind(module)
        if kind is None or cls not in (None, "Linear", "Conv1D"):
            skipped.append(module)  # embeddings, the head, norms stored as 2-D
            continue
        found = base.matrix(module)
        if found is None:
            raise SourceError(f"the base does not match the checkpoint: {ckpt.folder} has {key}, which {base.ref} "
                              f"({base.folder}) has no weight matrix for")
        stored = tuple(shape)
        base_stored = base.weights.shape(found[0])
        if stored != tuple(base_stored):
            raise SourceError(f"the base does not match the checkpoint: {module} is {list(base_stored)} in the base "
                              f"({base.ref}) but {list(stored)} in {ckpt.folder}")
        if selects(modules, module, kind):
            plans.append(MatrixPlan(module, kind, found[1], tuned_key=key, tuned_transposed=found[2]))
    notes = [f"not attention or MLP, so not in the spectra: {', '.join(skipped[:8])}" + (" …" if len(skipped) > 8 else "")] if skipped else []
    return plans, notes


def _model_order(base: Base):
    """Sort key: a module's place in the model (as named_modules() walks it, like the training
    tracker), where the architecture is known; else block, then name. Files list names
    alphabetically, so without it "the first module" of an error would be mlp before self_attn."""
    order = {canonical_name(n): i for i, n in enumerate(base.classes)}
    return lambda module: (order.get(module, len(order)), layer_index(module), module)


def _in_model_order(base: Base, plans: list[MatrixPlan]) -> list[MatrixPlan]:
    key = _model_order(base)
    return sorted(plans, key=lambda p: key(p.module))


def default_name(source: Path) -> str:
    """The analysis's name when --name is not given: the folder's, with its parent's in front
    for a trainer's checkpoint-N / step-N folder (out/their-lora/checkpoint-120: their-lora-checkpoint-120)."""
    if re.fullmatch(r"(?:checkpoint|step)-\d+", source.name) and source.parent.name:
        return f"{source.parent.name}-{source.name}"
    return source.name


def plan_analysis(base_ref: str, adapter_dir: str | None, model_dir: str | None, experiment: str | None = None,
                  name: str | None = None, settings: dict | None = None, pretrain_steps: int | None = None,
                  reduce_intruders: dict | None = None) -> AnalysisPlan:
    """Check every input and decide the analysis (nothing is written).

    Args:
        base_ref (str): ``--base``: builtin:<size> or hf:<folder or Hub name>.
        adapter_dir (str | None): ``--adapter``: a PEFT LoRA adapter folder.
        model_dir (str | None): ``--model``: a full checkpoint folder.
        experiment (str | None): ``--experiment``: whose evals, spectra and data.seq_len to use.
        name (str | None): ``--name``: the analysis name (default: the folder's name).
        settings (dict | None): evals, spectra and data to use instead of an experiment's (a source
            run's own, for reduce-intruders).
        pretrain_steps (int | None): a built-in base's pretraining steps (a source run's model.pretrain_steps).
        reduce_intruders (dict | None): set by reduce-intruders: {source_run, lambda, top_k, epsilon}.

    Raises:
        SourceError: any input that cannot be analysed, with the file and what was expected.
    """
    if (adapter_dir is None) == (model_dir is None):
        raise SourceError("give exactly one of --adapter DIR (a PEFT adapter) or --model DIR (a full checkpoint)")
    source = Path(adapter_dir or model_dir).expanduser().resolve()
    kind = folder_kind(source)
    if adapter_dir and kind != "adapter":
        raise SourceError(f"--adapter {source}: expected a PEFT adapter (adapter_config.json); this is a full "
                          "checkpoint (config.json and model weights): use --model")
    if model_dir and kind != "checkpoint":
        raise SourceError(f"--model {source}: expected a full checkpoint (config.json and model weights); this is a "
                          "PEFT adapter (adapter_config.json): use --adapter")
    if settings is None:
        settings = experiment_settings(Path(experiment).expanduser().resolve()) if experiment else analysis_defaults()
    settings = {k: copy.deepcopy(settings[k]) for k in ("evals", "spectra", "data")} | {"model": settings.get("model", {})}
    exp_model = settings.pop("model")
    if pretrain_steps is None and exp_model.get("base") == base_ref:
        pretrain_steps = exp_model.get("pretrain_steps")
    base = resolve_base(base_ref, pretrain_steps)
    evals = settings["evals"]
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
    if (base.ref.startswith("hf:") and (evals.get("learning") or evals.get("forgetting"))
            and not any((base.folder / f).is_file() for f in tokenizer_files)):
        raise SourceError(f"--base {base_ref}: {base.folder} has no tokenizer (tokenizer.json or tokenizer_config.json), "
                          "which the evaluations need: add the base's tokenizer files, or give an --experiment whose "
                          "evals are empty to analyse the spectra only")
    modules = settings["spectra"]["modules"]
    if adapter_dir:
        adapter = Adapter(source)
        matrices, notes = _adapter_matrices(base, adapter, modules)
        plan = AnalysisPlan(base, "lora", source, checkpoint_step(source), {}, adapter=adapter)
    else:
        ckpt = Checkpoint(source)
        matrices, notes = _checkpoint_matrices(base, ckpt, modules)
        plan = AnalysisPlan(base, "full", source, ckpt.step, {}, checkpoint=ckpt)
    plan.matrices, plan.notes = _in_model_order(base, matrices), notes
    # base.ref: a built-in base named by its cache folder reads as builtin:<size> (sources.resolve_base)
    model = {"base": base.ref, **({"pretrain_steps": base.pretrain_steps} if base.pretrain_steps is not None else {})}
    plan.config = {
        "kind": "analysis", "name": name or default_name(source), "model": model, "method": plan.method,
        "source": {("adapter" if adapter_dir else "model"): str(source), "step": plan.step},
        **({"lora": plan.adapter.summary()} if plan.adapter else {}),
        "experiment_file": str(Path(experiment).expanduser().resolve()) if experiment else None,
        **({"reduce_intruders": reduce_intruders} if reduce_intruders else {}),
        **settings,
    }
    return plan


def with_adapter(plan: AnalysisPlan, folder: Path, config: dict) -> AnalysisPlan:
    """The same analysis of another adapter on the same base (reduce-intruders' mitigated one,
    saved in ``folder``), with ``config`` as its config.yaml; shapes checked again."""
    adapter = Adapter(folder)
    matrices, notes = _adapter_matrices(plan.base, adapter, config["spectra"]["modules"])
    return AnalysisPlan(plan.base, "lora", folder, plan.step, config, adapter=adapter,
                        matrices=_in_model_order(plan.base, matrices), notes=notes)
