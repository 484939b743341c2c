"""``model.base: hf:<local folder>``: a user's transformers model and tokenizer, no download."""

import functools
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import TRAINER, assert_valid_run_files
from finetune_lab.offline_models import byte_bpe_tokenizer, save_model_folder

from finetune_lab.train import run

LINES = [
    "def add(a, b):\n    return a + b\n",
    "for i in range(10):\n    print(i * i)\n",
    "The quick brown fox jumps over the lazy dog.\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n",
]


# Tiny configs per architecture family (AutoConfig.for_model's names). Phi-3 fuses q/k/v and
# gate/up into one matrix each; GPT-2 stores its matrices as Conv1D ([in, out]); GPT-NeoX fuses
# query_key_value; Gemma ties the head to the embeddings.
TINY = {
    "llama": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=2, max_position_embeddings=128),
    "qwen2": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, max_position_embeddings=128),
    "gemma": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=16, max_position_embeddings=128),
    "phi3": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=2, max_position_embeddings=128),
    "gpt2": dict(n_embd=32, n_layer=2, n_head=2, n_positions=128),
    "gpt_neox": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                     max_position_embeddings=128),
}


@functools.cache
def tokenizer():
    """A byte-level BPE tokenizer trained offline (a few hundred tokens)."""
    return byte_bpe_tokenizer(LINES, vocab_size=300)


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A tiny LlamaForCausalLM with a real (byte-level BPE) HF tokenizer, saved with save_pretrained
    (test_export_onnx imports this fixture too)."""
    return save_model_folder(tmp_path_factory.mktemp("hf-model"), "llama", tokenizer(), **TINY["llama"])


@pytest.mark.parametrize("method", ["lora", "full"])
def test_hf_local_folder_trains(make_run, hf_folder, method):
    run_dir = make_run(model={"base": f"hf:{hf_folder}"}, method=method,
                       train={"steps": 2, "batch_size": 2, "warmup_steps": 1, "lr": 1e-3},
                       checkpoint={"every_steps": 0, "keep_last": 1},
                       evals={"every_steps": 2, "learning": [
                           {"name": "code", "type": "loss", "data": str(TRAINER / "tests" / "fixtures" / "code.jsonl"),
                            "max_examples": 2}]})
    assert run(run_dir) == 0, (run_dir / "events.jsonl").read_text()[-2000:]
    events = assert_valid_run_files(run_dir)
    started = next(e for e in events if e["type"] == "run_started")
    assert started["model"] == f"hf:{hf_folder}" and started["method"] == method
    assert [e["step"] for e in events if e["type"] == "eval"] == [0, 2]
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "completed"
    ckpt = run_dir / "checkpoints" / "step-000002"
    assert (ckpt / ("adapter_model.safetensors" if method == "lora" else "model.safetensors")).exists()


def test_unknown_hf_model_offline_fails_fast(make_run, tmp_path):
    run_dir = make_run(model={"base": "hf:not/a-model"})
    env = {**os.environ, "PYTHONPATH": str(TRAINER), "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf-home"),  # an empty cache: nothing to find
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}  # any download would fail loudly
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "finetune_lab", "run", "--run-dir", str(run_dir)],
                          env=env, cwd=run_dir, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert time.time() - t0 < 120
    events = assert_valid_run_files(run_dir)
    error = events[-1]["error"]
    assert events[-1]["status"] == "failed"
    assert "hf:not/a-model" in error and "HF_HUB_OFFLINE" in error and "not a local folder" in error
    assert json.loads((run_dir / "status.json").read_text())["state"] == "failed"


# The matrices each family's spectra report, by kind (short names; GPT-2's c_proj is in both).
ARCH_MODULES = {
    "llama": ({"q_proj", "k_proj", "v_proj", "o_proj"}, {"gate_proj", "up_proj", "down_proj"}),
    "qwen2": ({"q_proj", "k_proj", "v_proj", "o_proj"}, {"gate_proj", "up_proj", "down_proj"}),
    "gemma": ({"q_proj", "k_proj", "v_proj", "o_proj"}, {"gate_proj", "up_proj", "down_proj"}),
    "phi3": ({"qkv_proj", "o_proj"}, {"gate_up_proj", "down_proj"}),
    "gpt2": ({"c_attn", "c_proj"}, {"c_fc", "c_proj"}),
    "gpt_neox": ({"query_key_value", "dense"}, {"dense_h_to_4h", "dense_4h_to_h"}),
}


@pytest.fixture(scope="module")
def arch_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("archs")
    return {kind: save_model_folder(root / kind, kind, tokenizer(), **TINY[kind]) for kind in ARCH_MODULES}


@pytest.mark.parametrize("kind", list(ARCH_MODULES))
def test_architectures_train_and_report_spectra_of_the_right_kinds(make_run, arch_folders, kind):
    """Each family trains LoRA on all / attention / mlp and full finetuning, and its spectra name
    exactly the matrices of the kinds trained (fused qkv_proj, Conv1D c_attn, query_key_value...)."""
    attention, mlp = ARCH_MODULES[kind]
    expected = {"all": ({"attention": attention, "mlp": mlp}), "attention": {"attention": attention},
                "mlp": {"mlp": mlp}}
    for method, target in [("lora", "all"), ("lora", "attention"), ("lora", "mlp"), ("full", "all")]:
        run_dir = make_run(f"{method}-{target}", model={"base": f"hf:{arch_folders[kind]}"}, method=method,
                           lora={"rank": 2, "dropout": 0.0, "target_modules": target},
                           train={"steps": 2, "batch_size": 2, "warmup_steps": 0, "lr": 1e-2 if method == "lora" else 1e-3},
                           spectra={"every_steps": 2, "top_k": 4, "intruder_k": 2},
                           checkpoint={"every_steps": 0, "keep_last": 1})
        assert run(run_dir) == 0, (run_dir / "events.jsonl").read_text()[-2000:]
        events = assert_valid_run_files(run_dir)
        losses = [e["loss"] for e in events if e["type"] == "train"]
        assert len(losses) == 2 and losses[1] != losses[0], (kind, method, target, losses)
        found: dict[str, set[str]] = {}
        for e in (e for e in events if e["type"] == "spectrum" and e["layer"] == 0):
            found.setdefault(e["kind"], set()).add(e["name"])
            assert e["rank90"] >= 1 and e["singular_values"][0] > 0, e  # every trained matrix moved
            if method == "lora":
                assert e["lora_rank"] == 2 and e["rank90"] <= 2
        assert found == expected[target], (kind, method, target, found)
