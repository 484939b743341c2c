"""``model.base: hf:<local folder>``: a user's transformers model and tokenizer, no download."""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import TRAINER, assert_valid_run_files

from finetune_lab.train import run

LINES = [
    "def add(a, b):\n    return a + b\n",
    "for i in range(10):\n    print(i * i)\n",
    "The quick brown fox jumps over the lazy dog.\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n",
]


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A tiny LlamaForCausalLM with a real (byte-level BPE) HF tokenizer, saved with save_pretrained."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("hf-model")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(LINES * 4, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


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
