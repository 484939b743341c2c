"""Eval type ``lm_eval``: an lm-evaluation-harness task (EleutherAI, github.com/EleutherAI/
lm-evaluation-harness, the field's evaluation engine) scored on the model being trained, in
memory: lm-eval's ``HFLM`` wraps the very model object (PEFT-wrapped or not), so there is no
second copy and no reload, and ``lm_eval.simple_evaluate`` computes the number exactly as
lm-eval's own command line would on the saved checkpoint (trainer/tests/test_lm_eval.py checks
it). Tasks come from lm-eval's own task folder, from this package's ``tasks/`` (the built-in
tasks: finetune_lab_arithmetic, finetune_lab_cloze_english, finetune_lab_cloze_python) and from
the eval's ``include_path``.

Tasks that execute model-generated code (lm-eval's ``unsafe_code``: humaneval, mbpp, ...) run
only when FINETUNE_LAB_ALLOW_CODE_EXECUTION=1, and then the harness runs in a sandboxed child
process (sandbox.py) while this process only answers its model requests.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import random
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .config import ConfigError
from .paths import PACKAGE_DIR

BUILTIN_TASKS_DIR = PACKAGE_DIR / "tasks"
ALLOW_ENV = "FINETUNE_LAB_ALLOW_CODE_EXECUTION"
BOOTSTRAP_ITERS = 1000  # lm-eval's stderr of non-mean metrics; the value itself does not depend on it
HOW_TO_ALLOW = ("allow it on this machine: the VS Code setting finetuneLab.allowCodeExecution (machine scope), "
                "`finetune-lab run --allow-code-execution`, or FINETUNE_LAB_ALLOW_CODE_EXECUTION=1 in the "
                "trainer's environment")


class LmEvalConfigError(ConfigError):
    """An lm_eval eval that cannot run: unknown task, code execution not allowed, missing dataset."""


def code_execution_allowed() -> bool:
    """True when the user allowed tasks that run model-generated code (the one switch the
    extension's setting and the CLI's flag set for the trainer)."""
    return os.environ.get(ALLOW_ENV, "").strip() == "1"


def _quiet_lm_eval() -> None:
    # lm-eval logs every task load and draws tqdm bars: train.log is for the trainer's lines.
    os.environ.setdefault("TQDM_DISABLE", "1")
    for name in ("lm_eval", "lm-eval", "datasets", "evaluate"):
        logging.getLogger(name).setLevel(logging.ERROR)


@lru_cache(maxsize=8)
def task_manager(include_dirs: tuple[str, ...], defaults: bool):
    """lm-eval's TaskManager over our built-in tasks, ``include_dirs`` and (``defaults``) lm-eval's
    own ~15,000 tasks. Indexing lm-eval's own folder takes seconds (14 s on a loaded 2-core CPU),
    so it is done only when a task is not found without it, and once per process."""
    _quiet_lm_eval()
    from lm_eval.tasks import TaskManager
    return TaskManager(include_defaults=defaults, include_path=[str(BUILTIN_TASKS_DIR), *include_dirs])


def resolve_include(include_path: str | None, base_dir: Path, where: str) -> tuple[str, ...]:
    """The eval's include_path as an absolute folder (relative paths are relative to the
    experiment file, as data paths are), checked to exist."""
    if not include_path:
        return ()
    path = Path(include_path).expanduser()
    path = path if path.is_absolute() else (Path(base_dir) / path)
    if not path.is_dir():
        raise LmEvalConfigError(f"{where}: include_path is not a folder: {path}")
    return (str(path.resolve()),)


def find_task(task: str, include_dirs: tuple[str, ...], where: str):
    """The TaskManager that knows ``task`` (without lm-eval's own tasks when it can).

    Raises:
        LmEvalConfigError: the name is not a task, group or tag; lists close names.
    """
    tm = task_manager(include_dirs, False)
    if task in tm.all_tasks:
        return tm
    tm = task_manager(include_dirs, True)
    if task in tm.all_tasks:
        return tm
    close = difflib.get_close_matches(task, tm.all_tasks, n=6, cutoff=0.6)
    hint = f"; close names: {', '.join(close)}" if close else ""
    raise LmEvalConfigError(f"{where}: unknown lm-eval task '{task}'{hint} "
                            f"(lm-eval {_lm_eval_version()}{', and the tasks in ' + include_dirs[0] if include_dirs else ''})")


def _lm_eval_version() -> str:
    from importlib.metadata import version
    return version("lm_eval")


def _entry_cfg(tm, name: str) -> dict:
    entry = tm._index.get(name)  # lm-eval's index: YAML parsed, includes resolved, functions not
    return (entry.cfg or {}) if entry is not None else {}


def is_unsafe(tm, name: str, _seen: frozenset = frozenset()) -> bool:
    """Whether ``name`` (a task, or a group/tag with such a task) executes generated code, read
    from the task YAMLs without loading them (loading humaneval already runs code_eval)."""
    if name in _seen:
        return False
    cfg = _entry_cfg(tm, name)
    if cfg.get("unsafe_code"):
        return True
    children = cfg.get("task") if "group" in cfg else None
    entry = tm._index.get(name)
    if entry is not None and getattr(entry.kind, "name", "") == "TAG":
        children = [k for k, e in tm._index.items() if name in (e.tags or set())]
    for child in children if isinstance(children, list) else []:
        child_name = child.get("task") if isinstance(child, dict) else child
        if isinstance(child, dict) and child.get("unsafe_code"):
            return True
        if isinstance(child_name, str) and is_unsafe(tm, child_name, _seen | {name}):
            return True
    return False


def check_task(spec: dict, where: str, base_dir: Path) -> tuple[object, tuple[str, ...], bool]:
    """Everything about an lm_eval eval that can be checked without loading data: include_path,
    the task name, code execution. Cheap enough to run before the model loads.

    Returns:
        (TaskManager, include dirs, unsafe)
    """
    include = resolve_include(spec.get("include_path"), base_dir, where)
    tm = find_task(spec["task"], include, where)
    unsafe = is_unsafe(tm, spec["task"])
    if unsafe and not code_execution_allowed():
        raise LmEvalConfigError(
            f"{where}: lm-eval task '{spec['task']}' executes model-generated code (lm-eval marks it unsafe_code), "
            f"and code execution is not allowed on this machine: {HOW_TO_ALLOW}. Allowed code runs in a sandboxed "
            "process (time, memory and file-size limits, no network where the OS allows).")
    return tm, include, unsafe


@contextlib.contextmanager
def working_dir(path: str):
    """contextlib.chdir (Python 3.11+) for the trainer's 3.9+."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def keep_rng():
    """lm-eval seeds Python's, NumPy's and torch's global generators (as its CLI does, so its
    numbers are reproducible); training's own streams are put back afterwards."""
    py, npy = random.getstate(), np.random.get_state()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


@contextlib.contextmanager
def quiet_call():
    """Around an lm-eval call: training's random streams kept (keep_rng), no environment report
    (no_env_info), and lm-eval's progress bars (tqdm on stderr, which it enables explicitly) kept
    out of train.log."""
    import io
    with keep_rng(), no_env_info(), contextlib.redirect_stderr(io.StringIO()):
        yield


@contextlib.contextmanager
def no_env_info():
    """simple_evaluate adds torch's collect_env report to every result (pip, conda, nvidia-smi,
    lscpu as subprocesses: 2-10 s a call here). It describes the machine, not the score, so the
    trainer leaves it out while an evaluation runs; nothing else of lm-eval changes."""
    import lm_eval.evaluator as evaluator
    before = evaluator.add_env_info
    evaluator.add_env_info = lambda results: None
    try:
        yield
    finally:
        evaluator.add_env_info = before


def hflm(model, hf_tokenizer, batch_size, device):
    """lm-eval's HFLM around the model in memory (no copy). On CUDA the forward runs under bf16
    autocast (lm-eval's mixed_precision_dtype=bfloat16), as the trainer's other evals do."""
    from lm_eval.models.huggingface import HFLM
    was_training = model.training
    lm = HFLM(pretrained=model, tokenizer=hf_tokenizer, batch_size=batch_size,
              mixed_precision_dtype=torch.bfloat16 if torch.device(device).type == "cuda" else None)
    model.train(was_training)  # HFLM calls model.eval(); the evaluator restores the mode itself too
    return lm


class LmEvalTask:
    """One ``lm_eval`` eval: its task (or group) loaded once, scored on any model on demand.

    Args:
        spec (dict): the eval's config: task, include_path, limit, num_fewshot, metric, batch_size,
            max_gen_toks (schema: evalTaskLmEval).
        where (str): how errors name the eval, e.g. "evals.forgetting[0] (hellaswag)".
        tokenizer: the run's tokenizer adapter (tokenizer.py); its ``hf()`` drives HFLM.
        base_dir (Path): folder relative include_paths are relative to (the experiment file's).

    Raises:
        LmEvalConfigError: unknown task, code execution not allowed, a dataset that cannot be
            loaded (offline and not in the Hugging Face cache), an unknown metric.
    """

    def __init__(self, spec: dict, where: str, tokenizer, base_dir: Path):
        self.spec, self.where, self.tok = spec, where, tokenizer
        self.name = spec["task"]
        self.tm, self.include, self.unsafe = check_task(spec, where, base_dir)
        self.limit = spec.get("limit")
        self.num_fewshot = spec.get("num_fewshot")
        self.batch_size = spec.get("batch_size", 8)
        self.gen_kwargs = {"max_gen_toks": int(spec["max_gen_toks"])} if spec.get("max_gen_toks") else None
        if self.unsafe:
            os.environ["HF_ALLOW_CODE_EVAL"] = "1"  # only ever set when the user allowed it (check_task)
        self.obj = self._load()
        self.metric = spec.get("metric") or self._default_metric()
        self.higher_is_better = self._direction()

    # -- loading

    def _load(self):
        """The Task or Group object; its dataset is loaded here, once. Relative ``data_files`` in a
        task YAML are relative to the include_path (the YAML's folder), not the run folder."""
        cwd = self.include[0] if self.include else os.getcwd()
        try:
            with working_dir(cwd), quiet_call():
                loaded = self.tm.load([self.name])
        except Exception as e:  # datasets' errors differ by version: name the dataset and why
            raise LmEvalConfigError(self._load_error(e)) from e
        if self.name in loaded["groups"]:
            return loaded["groups"][self.name]
        if self.name in loaded["tasks"] and len(loaded["tasks"]) == 1:
            return loaded["tasks"][self.name]
        raise LmEvalConfigError(
            f"{self.where}: '{self.name}' is an lm-eval tag of {len(loaded['tasks'])} tasks with no aggregate score "
            f"({', '.join(sorted(loaded['tasks'])[:8])}{', ...' if len(loaded['tasks']) > 8 else ''}): name one task or a group")

    def _load_error(self, e: Exception) -> str:
        cfg = _entry_cfg(self.tm, self.name)
        dataset = cfg.get("dataset_path")
        if dataset and cfg.get("dataset_name"):
            dataset = f"{dataset} ({cfg['dataset_name']})"
        offline = any(os.environ.get(k, "").strip().upper() in ("1", "ON", "YES", "TRUE")
                      for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
        what = f"its dataset '{dataset}'" if dataset else "its data"
        why = (" (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set and it is not in the Hugging Face cache: download it "
               "once with network, e.g. `python -c \"import datasets; datasets.load_dataset('"
               f"{cfg.get('dataset_path', '...')}')\"`)") if offline and dataset else ""
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"{self.where}: lm-eval task '{self.name}' could not load {what}{why}: {type(e).__name__}: {first}"

    def _leaf_tasks(self) -> list:
        return list(self.obj.get_all_tasks()) if hasattr(self.obj, "get_all_tasks") else [self.obj]

    def _metric_keys(self) -> list[str]:
        """lm-eval's result keys of a task, "metric,filter", in its order."""
        task = self.obj
        filters = [f["name"] for f in (task.config.filter_list or [])] or ["none"]
        return [f"{m},{f}" for m in task._metric_fn_list for f in filters]

    def _default_metric(self) -> str:
        if hasattr(self.obj, "get_all_tasks"):
            agg = getattr(self.obj, "aggregate_metric_list", None) or []
            if not agg:
                raise LmEvalConfigError(f"{self.where}: lm-eval group '{self.name}' has no aggregate score; "
                                        "name one of its tasks instead")
            first = agg[0]
            metric = first.get("metric") if isinstance(first, dict) else getattr(first, "metric", None)
            filters = first.get("filter_list", ["none"]) if isinstance(first, dict) else getattr(first, "filter_list", ["none"])
            return _short(f"{metric},{(filters or ['none'])[0]}")
        keys = self._metric_keys()
        if not keys:
            raise LmEvalConfigError(f"{self.where}: lm-eval task '{self.name}' defines no metric")
        return _short(keys[0])

    def _direction(self) -> bool:
        metric = self.metric.split(",")[0]
        if hasattr(self.obj, "get_all_tasks"):
            return True  # a group's aggregates are means of accuracies; read from the result at scoring
        hib = self.obj.higher_is_better().get(metric)
        if hib is None:
            known = ", ".join(_short(k) for k in self._metric_keys())
            raise LmEvalConfigError(f"{self.where}: lm-eval task '{self.name}' has no metric '{self.metric}'; its metrics: {known}")
        if "," in self.metric and self.metric not in self._metric_keys():
            known = ", ".join(_short(k) for k in self._metric_keys())
            raise LmEvalConfigError(f"{self.where}: lm-eval task '{self.name}' has no metric '{self.metric}'; its metrics: {known}")
        return bool(hib)

    def dump_config(self) -> dict:
        """The task's resolved config as lm-eval holds it (written into the run folder)."""
        out = {}
        for task in self._leaf_tasks():
            try:
                out[task.task_name] = task.dump_config()
            except Exception:  # a config lm-eval cannot serialise: its name is still worth keeping
                out[task.task_name] = {"task": task.task_name}
        return out

    # -- scoring

    def score(self, model, device) -> dict:
        """lm-eval's score of ``model`` on the task.

        Returns:
            dict: {metric, value, higher_is_better, n, version, stderr, task, num_fewshot, limit}.
        """
        with quiet_call():
            lm = hflm(model, self.tok.hf(), self.batch_size, device)
            if self.unsafe:
                from .sandbox import evaluate_in_sandbox
                results = evaluate_in_sandbox(self._sandbox_request(), lm)
            else:
                import lm_eval
                results = lm_eval.simple_evaluate(
                    model=lm, tasks=[self.obj], task_manager=self.tm, limit=self.limit, num_fewshot=self.num_fewshot,
                    gen_kwargs=self.gen_kwargs, log_samples=False, bootstrap_iters=BOOTSTRAP_ITERS)
        return self.read(results)

    def _sandbox_request(self) -> dict:
        leaf = self._leaf_tasks()[0]
        yaml_dir = str(Path(_entry_yaml(self.tm, leaf.task_name)).parent) if _entry_yaml(self.tm, leaf.task_name) else None
        return {"task": self.name, "include_dirs": [str(BUILTIN_TASKS_DIR), *self.include, *([yaml_dir] if yaml_dir else [])],
                "limit": self.limit, "num_fewshot": self.num_fewshot, "gen_kwargs": self.gen_kwargs,
                "bootstrap_iters": BOOTSTRAP_ITERS, "cwd": self.include[0] if self.include else os.getcwd()}

    def read(self, results: dict) -> dict:
        """The eval's entry from lm-eval's results dict (``simple_evaluate``'s return value)."""
        res = results["results"].get(self.name) or {}
        key = self.metric if "," in self.metric else next(
            (k for k in res if k.split(",")[0] == self.metric and "_stderr" not in k), None)
        if key is None or key not in res or not isinstance(res[key], (int, float)):
            known = [_short(k) for k in res if "," in k and "_stderr" not in k]
            raise ValueError(f"lm-eval returned no '{self.metric}' for '{self.name}' (it returned: {', '.join(known) or 'nothing'})")
        metric_name, _, filt = key.partition(",")
        stderr = res.get(f"{metric_name}_stderr,{filt}")
        hib = (results.get("higher_is_better") or {}).get(self.name, {}).get(metric_name, self.higher_is_better)
        leaves = _leaves(results, self.name)
        n = sum(int(((results.get("n-samples") or {}).get(t) or {}).get("effective", 0)) for t in leaves)
        version = (results.get("versions") or {}).get(self.name)
        shots = (results.get("n-shot") or {}).get(self.name)
        out = {"metric": _short(key), "value": float(res[key]), "higher_is_better": bool(hib), "n": n,
               "version": None if version is None else str(version),
               "stderr": float(stderr) if isinstance(stderr, (int, float)) else None,
               "task": self.name, "num_fewshot": shots if isinstance(shots, int) else self.num_fewshot,
               "limit": self.limit}
        if "sandbox" in results:
            out["sandbox"] = results["sandbox"]
        return out


def _short(key: str) -> str:
    """lm-eval's "acc,none" is "acc"; "exact_match,strict-match" keeps its filter."""
    return key[:-5] if key.endswith(",none") else key


def _leaves(results: dict, name: str) -> list[str]:
    subs = (results.get("group_subtasks") or {}).get(name)
    if not subs:
        return [name]
    return [leaf for s in subs for leaf in _leaves(results, s)]


def _entry_yaml(tm, name: str) -> str | None:
    entry = tm._index.get(name)
    return str(entry.yaml_path) if entry is not None and entry.yaml_path else None
