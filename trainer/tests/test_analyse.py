"""Analysis runs of finetunes made elsewhere: PEFT adapters (LoRA, rsLoRA, DoRA; Llama, Qwen2 and
GPT-2 names; an embedding adapter) and sharded full checkpoints, each checked against numpy's SVD
of the dense ΔW computed from the saved files; the run folder, its events and the CLI."""

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
from conftest import TRAINER, assert_valid_run_files, schema

from finetune_lab.analyse import analyse, validate_config
from finetune_lab.analysis_plan import plan_analysis


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("finetunes")


def experiment(folder, evals=None, **spectra):
    """An experiment file whose evals (none: a spectra-only analysis, fast) and spectra are used."""
    path = folder / "analysis.finetune.yaml"
    path.write_text(yaml.safe_dump({
        "name": "x", "model": {"base": "builtin:tiny"}, "data": {"train": "builtin:python-stdlib", "seq_len": 32},
        "method": "lora", "evals": evals or {"learning": [], "forgetting": []},
        "spectra": {"top_k": 64, **spectra}}))
    return str(path)


def analysed(tmp_path, base, adapter=None, model=None, **kw):
    plan = plan_analysis(f"hf:{base}", adapter and str(adapter), model and str(model), experiment(tmp_path, **kw))
    run, code = analyse(plan, tmp_path / "runs", out=io.StringIO())
    assert code == 0, (run.dir / "events.jsonl").read_text()[-3000:]
    return run.dir, assert_valid_run_files(run.dir)


def check(events, base, delta_of, transposed=()):
    """Every spectrum event against the reference: W_base from the base's files ([out, in]; a
    Conv1D is stored [in, out]), W_tuned = W_base + ΔW."""
    tensors = F.base_tensors(base)
    spectra = [e for e in events if e["type"] == "spectrum"]
    assert spectra
    for e in spectra:
        w = tensors[e["module"] + ".weight"]
        w_base = w.T if e["name"] in transposed or e["module"] in transposed else w
        ref = F.reference(w_base, w_base + delta_of(e["module"]))
        n = len(e["singular_values"])
        np.testing.assert_allclose(e["singular_values"], ref["sv"][:n], rtol=1e-4, atol=1e-6 * ref["sv"][0])
        assert e["shape"] == list(w_base.shape)
        assert e["rank90"] == ref["rank90"], e["module"]
        assert e["intruders"] == ref["intruders"], e["module"]
        assert e["energy"] == pytest.approx(ref["energy"], rel=1e-4)
        assert e["random_rank90"] is not None and e["random_intruders"] is not None
    return spectra


@pytest.mark.parametrize("arch,variant", [("llama", "lora"), ("llama", "rslora"), ("qwen2", "lora"), ("gpt2", "lora")])
def test_peft_adapter_spectra_match_an_independent_svd(root, tmp_path, arch, variant):
    base = F.base_folder(root, arch)
    adapter = F.make_adapter(base, tmp_path / "adapter", use_rslora=variant == "rslora")
    run_dir, events = analysed(tmp_path, base, adapter=adapter)
    spectra = check(events, base, lambda m: F.lora_delta(adapter, m), transposed=("c_attn", "c_fc", "c_proj"))
    assert len(spectra) == (8 if arch == "gpt2" else 14)  # every adapted matrix, none twice
    assert {e["lora_rank"] for e in spectra} == {4}
    assert all(1 <= e["rank90"] <= 4 for e in spectra)
    assert {e["kind"] for e in spectra} == {"attention", "mlp"} and {e["layer"] for e in spectra} == {0, 1}
    assert not [e for e in events if e["type"] in ("train", "eval")]  # no training; this experiment has no evals
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["lora"]["variant"] == variant and cfg["lora"]["rank"] == 4 and cfg["method"] == "lora"


def test_dora_adapter_matches_peft_merged_weights(root, tmp_path):
    """DoRA's change is W_merged − W_base with W_merged from PEFT's own merge (not low rank)."""
    base = F.base_folder(root, "llama")
    adapter = F.make_adapter(base, tmp_path / "adapter", use_dora=True, target_modules=["up_proj", "o_proj"])
    _, events = analysed(tmp_path, base, adapter=adapter)
    from peft import PeftModel
    merged = PeftModel.from_pretrained(F.load(base), str(adapter)).merge_and_unload().state_dict()
    tensors = F.base_tensors(base)
    spectra = check(events, base, lambda m: merged[m + ".weight"].double().numpy() - tensors[m + ".weight"])
    assert {e["name"] for e in spectra} == {"up_proj", "o_proj"} and len(spectra) == 4
    assert all(sum(v > 1e-3 * e["singular_values"][0] for v in e["singular_values"]) > 4 for e in spectra)  # beyond r


def test_embedding_adapter_is_skipped_with_a_note(root, tmp_path):
    base = F.base_folder(root, "llama")
    adapter = F.make_adapter(base, tmp_path / "adapter", target_modules=["q_proj", "embed_tokens"])
    _, events = analysed(tmp_path, base, adapter=adapter)
    assert [e["module"] for e in events if e["type"] == "spectrum"] == [
        "model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"]
    notes = [e["message"] for e in events if e["type"] == "log"]
    assert any("model.embed_tokens" in n and "embedding" in n and "skipped" in n for n in notes), notes


def test_sharded_full_checkpoint_matches_an_independent_svd(root, tmp_path):
    base = F.base_folder(root, "llama")
    tuned = F.make_full(base, tmp_path / "ckpt", skip=("layers.1.mlp.down_proj",))
    index = json.loads((tuned / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2  # model-0000x-of-0000n.safetensors
    run_dir, events = analysed(tmp_path, base, model=tuned)
    t, b = F.base_tensors(tuned), F.base_tensors(base)
    spectra = check(events, base, lambda m: t[m + ".weight"] - b[m + ".weight"])
    assert len(spectra) == 13 and all(e["lora_rank"] is None for e in spectra)
    assert "model.layers.1.mlp.down_proj" not in {e["module"] for e in spectra}
    assert any("unchanged" in e["message"] and "layers.1.mlp.down_proj" in e["message"]
               for e in events if e["type"] == "log")
    started = next(e for e in events if e["type"] == "run_started")
    assert started["method"] == "full" and started["kind"] == "analysis"


def test_pickle_adapter_is_loaded_weights_only(root, tmp_path):
    """adapter_model.bin (older PEFT, some trainers) reads the same as the safetensors file."""
    base = F.base_folder(root, "llama")
    st = F.make_adapter(base, tmp_path / "st", target_modules=["v_proj"])
    binary = tmp_path / "bin"
    binary.mkdir()
    (binary / "adapter_config.json").write_text((st / "adapter_config.json").read_text())
    from safetensors.torch import load_file
    torch.save(load_file(str(st / "adapter_model.safetensors")), binary / "adapter_model.bin")
    strip = lambda evs: [{k: v for k, v in e.items() if k != "time"} for e in evs if e["type"] == "spectrum"]  # noqa: E731
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert strip(analysed(tmp_path / "a", base, adapter=st)[1]) == strip(analysed(tmp_path / "b", base, adapter=binary)[1])


def test_cli_makes_a_completed_analysis_run_with_evals_at_base_and_checkpoint_step(root, tmp_path):
    base = F.base_folder(root, "llama")
    adapter = F.make_adapter(base, tmp_path / "checkpoint-120", target_modules=["q_proj", "v_proj"])
    (adapter / "trainer_state.json").write_text(json.dumps({"global_step": 120, "log_history": []}))
    data = str(TRAINER / "tests" / "fixtures" / "code.jsonl")
    exp = experiment(tmp_path, evals={"learning": [{"name": "code", "type": "loss", "data": data, "max_examples": 2}],
                                      "forgetting": [{"name": "prose", "type": "loss", "data": data, "max_examples": 2}]})
    runs = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "finetune_lab", "analyse", "--base", f"hf:{base}", "--adapter",
                           str(adapter), "--experiment", exp, "--runs-dir", str(runs), "--name", "their-lora"],
                          env={**os.environ, "PYTHONPATH": str(TRAINER)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["status"] == "completed" and last["run"].startswith("their-lora-")
    run_dir = runs / last["run"]
    events = assert_valid_run_files(run_dir)
    assert [e["type"] for e in events][0] == "run_started" and events[-1]["type"] == "run_finished"
    assert [e["step"] for e in events if e["type"] == "eval"] == [0, 120]
    assert {e["step"] for e in events if e["type"] == "spectrum"} == {120}
    assert not [e for e in events if e["type"] == "train"]
    ev0, ev = (e for e in events if e["type"] == "eval")
    assert ev0["learning"]["delta"] == 0 and ev["learning"]["delta"] == pytest.approx(ev["learning"]["value"] - ev0["learning"]["value"])
    status = json.loads((run_dir / "status.json").read_text())
    assert (status["state"], status["step"], status["total_steps"]) == ("completed", 120, 120)
    meta = json.loads((run_dir / "meta.json").read_text())
    import jsonschema
    jsonschema.validate(meta, schema("meta"))
    assert meta["kind"] == "analysis" and meta["experiment_name"] == "their-lora"
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    validate_config(cfg)
    assert cfg["source"] == {"adapter": str(adapter.resolve()), "step": 120} and cfg["model"]["base"] == f"hf:{base}"
    assert "eval step 120" in (run_dir / "train.log").read_text()
