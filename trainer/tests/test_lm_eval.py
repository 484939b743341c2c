"""Eval type lm_eval: lm-evaluation-harness tasks on the model in memory, with local tasks only
(no hub): a multiple_choice and a generate_until task of a user's own folder, the built-in tasks,
the value equal to lm-eval's own on the saved checkpoint, and the bad input (unknown task, a
dataset missing offline, code execution not allowed)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import jsonschema
import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import PRETRAIN_STEPS, assert_valid_run_files, read_events, schema  # noqa: E402
from finetune_lab.config import ConfigError  # noqa: E402
from finetune_lab.evals import Evaluator, check_evals  # noqa: E402
from finetune_lab.tokenizer import ByteTokenizer  # noqa: E402

TASKS = Path(__file__).resolve().parent / "fixtures" / "lm_eval_tasks"


@pytest.fixture(scope="module")
def base():
    from finetune_lab.pretrain import pretrained_builtin
    return pretrained_builtin("tiny", steps=PRETRAIN_STEPS).eval()


def lm_task(name: str, task: str, **extra) -> dict:
    return {"name": name, "type": "lm_eval", "task": task, "include_path": str(TASKS), "batch_size": 4, **extra}


def valid_eval(payload: dict) -> None:
    event = {"v": 1, "type": "eval", "time": 0.0, **payload}
    errors = list(jsonschema.Draft7Validator(schema("events")).iter_errors(json.loads(json.dumps(event))))
    assert not errors, [e.message for e in errors]


def test_builtin_tokenizer_drives_lm_eval_with_the_byte_ids():
    hf = ByteTokenizer().hf()
    for text in ["hello world", "héllo ✓\n\tx", " <eos> stays bytes"]:
        assert hf.encode(text) == [256] + list(text.encode("utf-8"))  # bos, then the bytes
        assert hf.decode(hf.encode(text), skip_special_tokens=True) == text
    assert (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id, len(hf)) == (256, 257, 258, 259)


def test_local_multiple_choice_and_generate_until_tasks(base, tmp_path):
    ev = Evaluator({"learning": [lm_task("gen", "fl_test_gen", limit=6)],
                    "forgetting": [lm_task("mc", "fl_test_mc", limit=8, metric="acc_norm")]},
                   ByteTokenizer(), 64, "cpu", tmp_path, run_dir=tmp_path)
    payload = ev.evaluate(base, 0)
    valid_eval(payload)
    gen, mc = payload["tasks"]
    assert (gen["metric"], gen["n"], gen["version"], gen["higher_is_better"], gen["task"]) == ("exact_match", 6, "1.0", True, "fl_test_gen")
    assert (mc["metric"], mc["n"], mc["version"], mc["higher_is_better"]) == ("acc_norm", 8, "2.0", True)
    assert 0 <= gen["value"] <= 1 and 0 <= mc["value"] <= 1 and mc["seconds"] > 0
    assert payload["forgetting"] == {"value": mc["value"], "higher_is_better": True, "delta": 0.0}
    # what ran is kept with the run: lm-eval's resolved config of each task
    dumped = yaml.safe_load((tmp_path / "lm_eval" / "mc.yaml").read_text())
    assert dumped["fl_test_mc"]["output_type"] == "multiple_choice"


def test_builtin_tasks_by_name(base, tmp_path):
    ev = Evaluator({"learning": [{"name": "arith", "type": "lm_eval", "task": "finetune_lab_arithmetic", "limit": 3}],
                    "forgetting": [{"name": "cloze", "type": "lm_eval", "task": "finetune_lab_cloze_english", "limit": 4}]},
                   ByteTokenizer(), 64, "cpu", tmp_path)
    arith, cloze = ev.evaluate(base, 0)["tasks"]
    assert (arith["metric"], arith["n"]) == ("exact_match,strict-match", 3)
    assert (cloze["metric"], cloze["n"]) == ("acc", 4)


def test_lm_eval_leaves_training_random_streams_alone(base, tmp_path):
    import random
    import numpy as np
    ev = Evaluator({"learning": [lm_task("mc", "fl_test_mc", limit=2)]}, ByteTokenizer(), 64, "cpu", tmp_path)
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    ev.evaluate(base, 0)  # lm-eval seeds all three, as its CLI does
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def _run(tmp_path: Path, name: str, method: str, evals: dict, steps: int = 4, dropout: float = 0.0) -> Path:
    from finetune_lab.train import run
    run_dir = tmp_path / name
    run_dir.mkdir()
    cfg = {"name": "t", "model": {"base": "builtin:tiny", "pretrain_steps": PRETRAIN_STEPS},
           "data": {"train": "builtin:arithmetic", "format": "instruction", "seq_len": 64}, "method": method,
           "lora": {"rank": 4, "dropout": dropout}, "train": {"steps": steps, "batch_size": 4, "warmup_steps": 1, "lr": 1e-2},
           "spectra": {"every_steps": 0}, "checkpoint": {"every_steps": 0}, "evals": {"every_steps": 2, **evals}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    run(run_dir)  # the caller reads run_finished
    return run_dir


@pytest.mark.parametrize("method", ["lora", "full"])
def test_value_equals_lm_eval_on_the_saved_checkpoint(tmp_path, method):
    """The eval event's number is lm-eval's own: simple_evaluate on the checkpoint that lm-eval
    loads itself from the run folder (full: the checkpoint folder; LoRA: the base folder plus
    the adapter, lm-eval's peft= argument), same task, limit and batch size."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from finetune_lab.paths import cache_dir
    from finetune_lab.pretrain import cache_key, pretrain_settings

    evals = {"learning": [lm_task("gen", "fl_test_gen", limit=5),
                          {"name": "arith", "type": "lm_eval", "task": "finetune_lab_arithmetic", "limit": 4, "batch_size": 4}],
             "forgetting": [lm_task("mc", "fl_test_mc", limit=10)]}
    run_dir = _run(tmp_path, method, method, evals)
    events = assert_valid_run_files(run_dir)
    assert events[-1]["status"] == "completed", events[-1]
    last = [e for e in events if e["type"] == "eval"][-1]
    ckpt = run_dir / "checkpoints" / "step-000004"
    base_folder = cache_dir() / "bases" / cache_key("tiny", pretrain_settings("tiny", PRETRAIN_STEPS))
    lm = HFLM(pretrained=str(ckpt), device="cpu", tokenizer=ByteTokenizer().hf(), batch_size=4) if method == "full" else \
        HFLM(pretrained=str(base_folder), peft=str(ckpt), device="cpu", tokenizer=ByteTokenizer().hf(), batch_size=4)
    tm = TaskManager(include_defaults=False, include_path=[str(Path(__file__).parents[1] / "finetune_lab" / "tasks"), str(TASKS)])
    cwd = os.getcwd()
    os.chdir(TASKS)  # the trainer resolves a task's relative data_files against its include_path
    try:
        for t in last["tasks"]:
            res = lm_eval.simple_evaluate(model=lm, tasks=[t["task"]], task_manager=tm, limit=t["limit"], log_samples=False)
            key = t["metric"] if "," in t["metric"] else f"{t['metric']},none"
            assert res["results"][t["task"]][key] == t["value"], (t["name"], res["results"][t["task"]], t)
            assert str(res["versions"][t["task"]]) == t["version"]
            assert res["n-samples"][t["task"]]["effective"] == t["n"]
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_evaluations_do_not_change_training(tmp_path, method):
    """lm-eval seeds the global generators and KL caches the base: neither may shift a single
    training loss (the runs are seeded; a resumed run must match an uninterrupted one)."""
    # dropout on: training draws from torch's generator between the evaluations
    plain = _run(tmp_path, "plain", method, {"learning": [{"name": "l", "type": "loss", "data": "builtin:arithmetic#heldout", "max_examples": 4}]}, dropout=0.1)
    full = _run(tmp_path, "evals", method, dropout=0.1, evals={
        "learning": [{"name": "l", "type": "loss", "data": "builtin:arithmetic#heldout", "max_examples": 4},
                     {"name": "arith", "type": "lm_eval", "task": "finetune_lab_arithmetic", "limit": 2, "max_gen_toks": 4}],
        "forgetting": [{"name": "kl", "type": "kl_to_base", "data": "builtin:brown#heldout", "n": 2}]})
    losses = [[e["loss"] for e in read_events(d) if e["type"] == "train"] for d in (plain, full)]
    assert len(losses[0]) == 4 and losses[0] == losses[1]


def test_unknown_task_is_a_config_error_with_close_names(tmp_path):
    with pytest.raises(ConfigError) as e:
        check_evals({"learning": [{"name": "a", "type": "lm_eval", "task": "finetune_lab_arithmetc"}]}, tmp_path)
    assert "evals.learning[0] (a)" in str(e.value) and "finetune_lab_arithmetic" in str(e.value)
    # lm-eval's own tasks are searched too (its folder is indexed only when a name is not ours)
    with pytest.raises(ConfigError) as e:
        check_evals({"forgetting": [{"name": "hs", "type": "lm_eval", "task": "hellaswg"}]}, tmp_path)
    assert "unknown lm-eval task 'hellaswg'" in str(e.value) and "hellaswag" in str(e.value)
    with pytest.raises(ConfigError, match="include_path is not a folder"):
        check_evals({"learning": [{"name": "a", "type": "lm_eval", "task": "x", "include_path": "nowhere"}]}, tmp_path)


def test_missing_dataset_offline_names_the_dataset(tmp_path):
    with pytest.raises(ConfigError) as e:
        Evaluator({"learning": [lm_task("m", "fl_test_missing_dataset")]}, ByteTokenizer(), 64, "cpu", tmp_path)
    text = str(e.value)
    assert "finetune-lab-tests/no-such-dataset" in text and "HF_HUB_OFFLINE" in text and "evals.learning[0] (m)" in text


def test_code_execution_is_refused_unless_allowed(tmp_path, monkeypatch):
    monkeypatch.delenv("FINETUNE_LAB_ALLOW_CODE_EXECUTION", raising=False)
    unsafe = {"name": "code", "type": "lm_eval", "task": "fl_test_escape",
              "include_path": str(TASKS.parent / "lm_eval_unsafe")}
    with pytest.raises(ConfigError) as e:
        check_evals({"learning": [unsafe]}, tmp_path)
    assert "executes model-generated code" in str(e.value) and "finetuneLab.allowCodeExecution" in str(e.value) \
        and "--allow-code-execution" in str(e.value)
    with pytest.raises(ConfigError, match="humaneval' executes model-generated code"):  # lm-eval's own unsafe task
        check_evals({"learning": [{"name": "he", "type": "lm_eval", "task": "humaneval"}]}, tmp_path)
    # the trainer refuses before anything loads: no pretraining, no step 0, the run failed saying why
    run_dir = _run(tmp_path, "refused", "lora", {"learning": [unsafe]})
    events = read_events(run_dir)
    assert [e["type"] for e in events] == ["run_finished"]
    assert "executes model-generated code" in events[-1]["error"] and events[-1]["status"] == "failed"


def test_an_eval_that_crashes_mid_run_is_reported_and_the_run_goes_on(tmp_path):
    evals = {"learning": [{"name": "flaky", "type": "lm_eval", "task": "fl_test_flaky",
                           "include_path": str(TASKS.parent / "lm_eval_unsafe")}],
             "forgetting": [lm_task("mc", "fl_test_mc", limit=4)]}
    run_dir = _run(tmp_path, "flaky", "lora", evals)
    events = assert_valid_run_files(run_dir)
    assert events[-1]["status"] == "completed"
    evals_by_step = {e["step"]: e for e in events if e["type"] == "eval"}
    assert evals_by_step[0]["tasks"][0]["value"] == 1.0 and evals_by_step[0]["learning"] is not None
    failed = evals_by_step[2]["tasks"][0]
    assert failed["value"] is None and "the metric broke" in failed["error"] and failed["metric"] == "ran"
    assert evals_by_step[2]["learning"] is None  # its role's aggregate is unknown at that step
    assert evals_by_step[2]["tasks"][1]["value"] is not None  # the other task still ran
    logs = [e for e in events if e["type"] == "log" and e.get("level") == "error"]
    assert any("evals.learning[0] (flaky) failed at step 2" in e["message"] for e in logs)


def test_the_shipped_task_names_match_the_installed_lm_eval():
    """finetune_lab/lm_eval_tasks.json is what the editor checks task names against: current
    for the lm-eval the requirements pin (regenerate: trainer/scripts/gen_lm_eval_tasks.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from gen_lm_eval_tasks import OUT, catalog, render
    data = catalog()
    assert OUT.read_text(encoding="utf-8") == render(data), "stale: run trainer/scripts/gen_lm_eval_tasks.py"
    for name in ("hellaswag", "winogrande", "arc_challenge", "gsm8k", "humaneval"):  # the paper's benchmarks
        assert name in data["tasks"]
    assert {"humaneval", "mbpp"} <= set(data["unsafe_code"]) and "hellaswag" not in data["unsafe_code"]
