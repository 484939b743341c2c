"""Bad input to `analyse` is refused before anything is written, with a message that names the
file, the module and what was expected; a base named on the Hub comes from the cache (offline)."""

import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

import finetunes as F
from conftest import TRAINER

from finetune_lab.analysis_plan import plan_analysis
from finetune_lab.base_weights import WeightFiles
from finetune_lab.sources import SourceError


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("finetunes")


def cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "finetune_lab", "analyse", *map(str, args)],
                          env={**os.environ, "PYTHONPATH": str(TRAINER), **(env or {})}, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def refused(*args, **kw) -> str:
    with pytest.raises(SourceError) as e:
        plan_analysis(*args, **kw)
    return str(e.value)


def test_a_base_that_does_not_match_names_the_first_module_and_both_shapes(root, tmp_path):
    adapter = F.make_adapter(F.base_folder(root, "llama", hidden=48), tmp_path / "adapter")
    runs = tmp_path / "runs"
    proc = cli("--base", f"hf:{F.base_folder(root, 'llama')}", "--adapter", adapter, "--runs-dir", runs)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith("error: the base does not match the adapter: model.layers.0.self_attn.q_proj is [32, 32] "
                          "in the base"), err
    assert "[48, 48] in the adapter" in err and "lora_B [48, 4]" in err
    assert not runs.exists()  # nothing started, nothing written
    ckpt = F.make_full(F.base_folder(root, "llama", hidden=48), tmp_path / "ckpt")
    msg = refused(f"hf:{F.base_folder(root, 'llama')}", None, str(ckpt))
    assert "the base does not match the checkpoint" in msg and "[32, 32] in the base" in msg and "[48, 48]" in msg


@pytest.mark.parametrize("kind", ["IA3", "PREFIX_TUNING"])
def test_a_peft_adapter_that_is_not_lora_is_refused_as_such(root, tmp_path, kind):
    import peft
    base = F.base_folder(root, "llama")
    cfg = (peft.IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"]) if kind == "IA3"
           else peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    peft.get_peft_model(F.load(base), cfg).save_pretrained(tmp_path / "adapter")
    msg = refused(f"hf:{base}", str(tmp_path / "adapter"), None)
    assert f"peft_type is {kind}, not LORA" in msg and "adapter_config.json" in msg and "only LoRA adapters" in msg


class _Payload:
    """A pickle that would run code when loaded: it must never be."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_is_more_than_tensors_is_refused_unexecuted(root, tmp_path):
    base = F.base_folder(root, "llama")
    st = F.make_adapter(base, tmp_path / "st", target_modules=["v_proj"])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_config.json").write_text((st / "adapter_config.json").read_text())
    marker = tmp_path / "pwned"
    with open(bad / "adapter_model.bin", "wb") as f:
        pickle.dump({"base_model.model.x.lora_A.weight": _Payload(marker)}, f)
    proc = cli("--base", f"hf:{base}", "--adapter", bad, "--runs-dir", tmp_path / "runs")
    assert proc.returncode == 2
    assert "adapter_model.bin: refused: not loadable weights-only" in proc.stderr and "never code" in proc.stderr
    assert not marker.exists() and not (tmp_path / "runs").exists()


def test_a_folder_that_is_neither_says_what_it_expected(root, tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    msg = refused(f"hf:{F.base_folder(root, 'llama')}", str(tmp_path), None)
    assert "is neither a PEFT adapter nor a model checkpoint" in msg
    assert "expected adapter_config.json with adapter_model.safetensors" in msg and "model.safetensors.index.json" in msg
    assert "it holds notes.txt" in msg
    assert "no such folder" in refused(f"hf:{F.base_folder(root, 'llama')}", str(tmp_path / "nope"), None)


def test_a_base_without_a_tokenizer_is_refused_when_there_are_evaluations(root, tmp_path):
    adapter = F.make_adapter(F.base_folder(root, "llama"), tmp_path / "adapter", target_modules=["q_proj"])
    bare = tmp_path / "bare"
    F.load(F.base_folder(root, "llama")).save_pretrained(bare)  # config and weights, no tokenizer
    msg = refused(f"hf:{bare}", str(adapter), None)
    assert "has no tokenizer" in msg and "evals are empty" in msg
    exp = tmp_path / "spectra-only.finetune.yaml"
    exp.write_text("name: x\nmodel: {base: builtin:tiny}\ndata: {train: builtin:brown}\nmethod: lora\n")
    assert len(plan_analysis(f"hf:{bare}", str(adapter), None, str(exp)).matrices) == 2  # no evals: spectra only


def test_adapter_and_model_flags_say_which_one_fits(root, tmp_path):
    base = F.base_folder(root, "llama")
    ckpt = F.make_full(base, tmp_path / "ckpt")
    adapter = F.make_adapter(base, tmp_path / "adapter", target_modules=["q_proj"])
    assert "use --model" in refused(f"hf:{base}", str(ckpt), None)
    assert "use --adapter" in refused(f"hf:{base}", None, str(adapter))
    assert "--base must be builtin:<size> or hf:" in refused("gpt2", str(adapter), None)


def test_an_index_naming_a_missing_shard_is_an_error(root, tmp_path):
    ckpt = F.make_full(F.base_folder(root, "llama"), tmp_path / "ckpt")
    shard = sorted(ckpt.glob("model-*.safetensors"))[0]
    shard.unlink()
    msg = refused(f"hf:{F.base_folder(root, 'llama')}", None, str(ckpt))
    assert "model.safetensors.index.json names shard" in msg and shard.name in msg


def test_a_broken_experiment_file_names_the_field(root, tmp_path):
    base = F.base_folder(root, "llama")
    adapter = F.make_adapter(base, tmp_path / "adapter", target_modules=["q_proj"])
    exp = tmp_path / "bad.finetune.yaml"
    exp.write_text("name: x\nmodel: {base: builtin:tiny}\ndata: {train: builtin:brown}\nmethod: lora\n"
                   "spectra: {top_k: -1}\n")
    msg = refused(f"hf:{base}", str(adapter), None, str(exp))
    assert str(exp) in msg and "spectra.top_k" in msg


def _hub_cache(home, repo: str, folder) -> None:
    """A Hugging Face cache entry as huggingface_hub lays it out (refs/main -> snapshots/<hash>/)."""
    entry = home / "hub" / f"models--{repo.replace('/', '--')}"
    snap = entry / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    for f in folder.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text("0" * 40)


def test_a_hub_name_comes_from_the_cache_offline_and_a_missing_one_says_so(root, tmp_path, monkeypatch):
    base = F.base_folder(root, "qwen2")
    adapter = F.make_adapter(base, tmp_path / "adapter", target_modules=["q_proj", "down_proj"])
    _hub_cache(tmp_path / "hf", "someone/tiny-qwen2", base)
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))  # read at import
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    plan = plan_analysis("hf:someone/tiny-qwen2", str(adapter), None)
    assert plan.base.folder.name == "0" * 40 and len(plan.matrices) == 4
    proc = cli("--base", "hf:someone/not-there", "--adapter", adapter, "--runs-dir", tmp_path / "runs",
               env={"HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"), "HF_HUB_OFFLINE": "1",
                    "HTTPS_PROXY": "http://127.0.0.1:9"})
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()[-1]
    assert "someone/not-there" in err and "HF_HUB_OFFLINE is set, so nothing was downloaded" in err


def test_weight_files_resolve_names_across_prefixes(tmp_path):
    """GPT-2's Hub files say h.0.attn.c_attn.weight; a saved GPT2LMHeadModel says transformer.h.0..."""
    from safetensors.torch import save_file
    save_file({"h.0.attn.c_attn.weight": torch.zeros(4, 12), "wte.weight": torch.zeros(8, 4)}, str(tmp_path / "model.safetensors"))
    files = WeightFiles.find(tmp_path)
    assert files.resolve("transformer.h.0.attn.c_attn.weight") == "h.0.attn.c_attn.weight"
    assert files.resolve("base_model.model.transformer.h.0.attn.c_attn.weight") == "h.0.attn.c_attn.weight"
    assert files.resolve("transformer.h.1.attn.c_attn.weight") is None
    assert files.shape("h.0.attn.c_attn.weight") == (4, 12)
    json.dumps(files.names())


def test_a_builtin_base_named_by_its_cache_folder_is_that_builtin(tmp_path):
    """An adapter trained here names the cached built-in folder as base_model_name_or_path."""
    from finetune_lab.pretrain import pretrained_builtin
    from finetune_lab.paths import cache_dir
    import peft
    model = pretrained_builtin("tiny", steps=10)
    folder = next(p for p in (cache_dir() / "bases").iterdir() if p.name.startswith("tiny-") and (p / "pretrain.json").exists()
                  and json.loads((p / "pretrain.json").read_text())["steps"] == 10)
    peft.get_peft_model(model, peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"])).save_pretrained(tmp_path / "a")
    assert json.loads((tmp_path / "a" / "adapter_config.json").read_text())["base_model_name_or_path"] == str(folder)
    plan = plan_analysis(f"hf:{folder}", str(tmp_path / "a"), None)
    assert plan.config["model"] == {"base": "builtin:tiny", "pretrain_steps": 10} and len(plan.matrices) == 2
