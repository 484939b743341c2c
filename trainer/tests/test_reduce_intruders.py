"""reduce-intruders: PEFT's reduce_intruder_dimension on a run's adapter, one analysis run per λ
(grouped by a sweep id), each holding its mitigated adapter in PEFT's format; the source a
training run's newest LoRA checkpoint or an analysis run's adapter; bad run ids refused."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

import finetunes as F
from conftest import TRAINER, assert_valid_run_files

from finetune_lab.analyse import analyse, validate_config
from finetune_lab.analysis_plan import plan_analysis
from finetune_lab.reduce_intruders import parse_lambdas
from finetune_lab.sources import SourceError
from finetune_lab.train import run as train


def cli(*args):
    return subprocess.run([sys.executable, "-m", "finetune_lab", "reduce-intruders", *map(str, args)],
                          env={**os.environ, "PYTHONPATH": str(TRAINER)}, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def analysed_adapter(tmp_path_factory):
    """An analysis run of a PEFT LoRA adapter on an hf: base, with a small eval."""
    tmp = tmp_path_factory.mktemp("ri")
    base = F.base_folder(tmp, "llama")
    adapter = F.make_adapter(base, tmp / "step-000050", scale=0.5)
    data = str(TRAINER / "tests" / "fixtures" / "code.jsonl")
    exp = tmp / "e.finetune.yaml"
    exp.write_text(yaml.safe_dump({"name": "x", "model": {"base": "builtin:tiny"}, "data": {"train": data, "seq_len": 32},
                                   "method": "lora", "evals": {"learning": [{"name": "code", "type": "loss", "data": data, "max_examples": 2}]}}))
    run, code = analyse(plan_analysis(f"hf:{base}", str(adapter), None, str(exp), "theirs"), tmp / "runs", out=io.StringIO())
    assert code == 0
    return tmp, base, adapter, run


def test_a_lambda_sweep_makes_one_grouped_run_per_lambda_with_peft_s_own_result(analysed_adapter):
    tmp, base, adapter, source = analysed_adapter
    proc = cli(source.id, "--runs-dir", tmp / "runs", "--lambda", "0.5,1", "--top-k", "10", "--epsilon", "0.5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{") and '"status"' in ln]
    assert [d["status"] for d in done] == ["completed", "completed"]
    runs = [tmp / "runs" / d["run"] for d in done]
    metas = [json.loads((r / "meta.json").read_text()) for r in runs]
    assert metas[0]["sweep_id"] == metas[1]["sweep_id"] and metas[0]["sweep_id"]
    assert [(m["sweep_index"], m["sweep_size"], m["kind"], m["experiment_name"]) for m in metas] == [(0, 2, "analysis", "theirs"), (1, 2, "analysis", "theirs")]
    assert [m["overrides"] for m in metas] == [{"reduce_intruders.lambda": 0.5}, {"reduce_intruders.lambda": 1.0}]

    # the adapter each run holds is what PEFT's own function makes, in PEFT's format
    from peft import PeftModel
    from peft.tuners.lora.intruders import reduce_intruder_dimension
    from safetensors.torch import load_file
    model = PeftModel.from_pretrained(F.load(base), str(adapter))
    reduce_intruder_dimension(model, top_k=10, threshold_epsilon=0.5, mitigation_lambda=0.5, logging_sink=None)
    expected = {k.replace(".intruder_reduced", ""): v for k, v in model.state_dict().items() if "intruder_reduced" in k}
    saved = load_file(str(runs[0] / "adapter" / "adapter_model.safetensors"))
    assert len(saved) == 28
    for k, v in saved.items():
        torch.testing.assert_close(v, expected[k], rtol=1e-5, atol=1e-6)
    PeftModel.from_pretrained(F.load(base), str(runs[0] / "adapter"))  # loads anywhere PEFT does

    for r, lam in zip(runs, (0.5, 1.0)):
        events = assert_valid_run_files(r)
        cfg = yaml.safe_load((r / "config.yaml").read_text())
        validate_config(cfg)
        assert cfg["reduce_intruders"] == {"source_run": source.id, "lambda": lam, "top_k": 10, "epsilon": 0.5}
        assert cfg["source"] == {"adapter": "adapter", "step": 50} and cfg["model"]["base"] == f"hf:{base}"
        assert [e["step"] for e in events if e["type"] == "eval"] == [0, 50]
        assert len([e for e in events if e["type"] == "spectrum"]) == 14
        assert any("reduce_intruder_dimension" in e["message"] for e in events if e["type"] == "log")
    src_events = assert_valid_run_files(source.dir)
    src_spec = {e["module"]: e for e in src_events if e["type"] == "spectrum"}
    reduced = {e["module"]: e for e in assert_valid_run_files(runs[0]) if e["type"] == "spectrum"}
    kept = {e["module"]: e for e in assert_valid_run_files(runs[1]) if e["type"] == "spectrum"}
    # λ = 1 keeps every intruder as trained: the same change; λ = 0.5 halves them: fewer intruders, less energy
    for m, e in src_spec.items():
        np.testing.assert_allclose(kept[m]["singular_values"], e["singular_values"], rtol=1e-3)
        assert reduced[m]["energy"] < e["energy"]
    assert sum(e["intruders"] for e in reduced.values()) <= sum(e["intruders"] for e in src_spec.values())
    base_eval = [next(e for e in assert_valid_run_files(r) if e["type"] == "eval") for r in runs + [source.dir]]
    # one base, scored the same (the wall-clock seconds each scoring took are not part of the score)
    scores = [[{k: v for k, v in t.items() if k != "seconds"} for t in e["tasks"]] for e in base_eval]
    assert all(s == scores[0] for s in scores), scores


def test_a_training_run_s_newest_lora_checkpoint(make_run):
    run_dir = make_run("train-lora")
    assert train(run_dir) == 0
    proc = cli(run_dir.name, "--runs-dir", run_dir.parent, "--lambda", "0.75")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    cfg = yaml.safe_load((run_dir.parent / out["run"] / "config.yaml").read_text())
    assert cfg["source"]["step"] == 4 and cfg["model"] == {"base": "builtin:tiny", "pretrain_steps": 10}
    assert cfg["reduce_intruders"]["source_run"] == "train-lora"
    assert json.loads((run_dir.parent / out["run"] / "meta.json").read_text())["sweep_id"] is None


def test_refusals(make_run, tmp_path):
    full = make_run("train-full", method="full")
    (full / "checkpoints").mkdir()
    for args, message in [
        (["../etc", "--runs-dir", tmp_path], "not a run id"),
        (["a/b", "--runs-dir", tmp_path], "not a run id"),
        (["nope", "--runs-dir", tmp_path], "no run nope in"),
        (["train-full", "--runs-dir", full.parent], "is full finetuning: reduce-intruders needs a LoRA adapter"),
        (["train-full", "--runs-dir", full.parent, "--lambda", "2"], "between 0 and 1"),
    ]:
        proc = cli(*args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr[-2000:])
    lora = make_run("no-ckpt")
    proc = cli("no-ckpt", "--runs-dir", lora.parent)
    assert proc.returncode == 2 and "has no LoRA checkpoint yet" in proc.stderr
    assert parse_lambdas("0.25, 0.5,0.75,1") == [0.25, 0.5, 0.75, 1.0]
    for bad in ("x", "0.5,0.5", ""):
        with pytest.raises(SourceError):
            parse_lambdas(bad)
