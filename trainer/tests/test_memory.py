"""The memory estimate: the activation formula against autograd's own saved tensors, the parts of
known models, `python -m finetune_lab estimate` against schemas/estimate.schema.json, the advice,
and the out-of-memory path of a run."""

import json
import os
import subprocess
import sys

import jsonschema
import pytest
import torch

from conftest import TRAINER, assert_valid_run_files, schema

from finetune_lab.config import load_schema
from finetune_lab.estimate import estimate_run, oom_message
from finetune_lab.lora import apply_method
from finetune_lab.memory import GIB, Plan, saved_activation_bytes
from finetune_lab.model_shape import lora_shape, model_shape
from finetune_lab.offline_models import save_model_folder

TINY = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=300, tie_word_embeddings=False)
# Llama-3-8B's shape: only config.json is written, no weights (the estimate never needs them).
LLAMA3_8B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                 num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, tie_word_embeddings=False)
LORA = {"rank": 8, "alpha": 16, "dropout": 0.05, "target_modules": "all", "variant": "lora"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_model_folder(tmp_path_factory.mktemp("tiny"), "llama", weights=False, **TINY)


@pytest.fixture(scope="module")
def llama8b(tmp_path_factory):
    folder = save_model_folder(tmp_path_factory.mktemp("llama8b"), "llama", weights=False, **LLAMA3_8B)
    assert not list(folder.glob("*.safetensors"))
    return folder


def autograd_saved_bytes(folder, method: str, precision: str, dropout: float, checkpointing: bool,
                         batch: int, seq: int) -> int:
    """Bytes of the tensors autograd saves in one forward (storages once, parameters left out),
    the model held as the trainer holds it in ``precision`` (LoRA: bf16 base and fp32 adapters)."""
    from transformers import AutoConfig, AutoModelForCausalLM
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder), attn_implementation="sdpa")
    bf16_base = precision == "bf16-true" or (precision == "bf16-mixed" and method == "lora")
    model = apply_method(model.to(torch.bfloat16) if bf16_base else model, method, {**LORA, "dropout": dropout}, 0)
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.to(torch.bfloat16 if (method, precision) == ("full", "bf16-true") else torch.float32)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            saved.setdefault(s.data_ptr(), s.nbytes())
        return t
    x = torch.randint(0, TINY["vocab_size"], (batch, seq))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            logits = model(input_ids=x).logits
        torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), x.flatten())
    return sum(saved.values())


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("precision", ["fp32", "bf16-mixed", "bf16-true"])
@pytest.mark.parametrize("method,dropout", [("full", 0.0), ("lora", 0.05), ("lora", 0.0)])
def test_saved_activations_match_autograd(tiny, method, dropout, precision, checkpointing):
    batch, seq = 2, 24
    measured = autograd_saved_bytes(tiny, method, precision, dropout, checkpointing, batch, seq)
    shape = model_shape(f"hf:{tiny}")
    lora = lora_shape(f"hf:{tiny}", LORA) if method == "lora" else None
    plan = Plan(method=method, precision=precision, device="cpu", batch_size=batch, seq_len=seq,
                gradient_checkpointing=checkpointing, lora_dropout=dropout)
    estimate = saved_activation_bytes(shape, lora, plan)
    if precision == "bf16-mixed" and not checkpointing:  # autocast's weight copies are saved tensors too
        estimate += 2 * (shape.matmul_params if method == "full" else lora.params_matmul)
    if precision == "bf16-mixed" and checkpointing and method == "full":
        estimate += 2 * shape.head_params  # the head's copy (outside the checkpointed layers)
    error = (estimate - measured) / measured
    # RoPE's cos/sin and the token ids are left out (-0.5%); LoRA's first layer keeps a little
    # less than the others (its input needs no gradient): at most a few % with 3 layers
    upper = 0.07 if method == "lora" and not checkpointing else 0.02
    assert -0.01 <= error <= upper, (measured, estimate)


def test_llama3_8b_parts(llama8b):
    """Known numbers: 8.03B parameters; LoRA r16 on all linear layers trains 41,943,040."""
    base = f"hf:{llama8b}"
    run = {"name": "x", "model": {"base": base}, "data": {"train": "builtin:brown", "seq_len": 2048},
           "train": {"batch_size": 1, "device": "cuda", "precision": "bf16-mixed"}}
    lora = estimate_run({**run, "method": "lora", "lora": {"rank": 16}}, gpus=[], gpu_gib=80)
    assert lora["params"] == {"total": 8_030_261_248, "trainable": 41_943_040}
    # bf16 frozen base + fp32 adapters; gradients and AdamW states of the adapters only
    assert lora["weights_gib"] == pytest.approx((8_030_261_248 * 2 + 41_943_040 * 4 + 41_943_040 * 2) / GIB, abs=0.01)
    assert lora["gradients_gib"] == pytest.approx(41_943_040 * 4 / GIB, abs=0.01)
    assert lora["optimizer_gib"] == pytest.approx(41_943_040 * 8 / GIB, abs=0.01)
    assert lora["fits"] is True and lora["device"] == "cuda" and lora["devices"] == 1

    full = estimate_run({**run, "method": "full"}, gpus=[], gpu_gib=80)
    # fp32 master weights + autocast's bf16 copies; fp32 gradients; AdamW 2 x fp32
    assert full["gradients_gib"] == pytest.approx(8_030_261_248 * 4 / GIB, abs=0.01)
    assert full["optimizer_gib"] == pytest.approx(8_030_261_248 * 8 / GIB, abs=0.01)
    assert full["weights_gib"] > 8_030_261_248 * 4 / GIB
    assert full["fits"] is False and full["limit"]["source"] == "setting"
    texts = [a["text"] for a in full["advice"]]
    assert any(t.startswith("method: lora") for t in texts)
    assert any("launcher.sharding: fsdp" in t for t in texts)
    assert "train.gradient_checkpointing: true" in texts
    assert full["advice"][0]["fits"], "the advice lists what fits first"
    lora_advice = next(a for a in full["advice"] if a["set"] == {"method": "lora"})
    assert lora_advice["total_gib"] == pytest.approx(lora["total_gib"], abs=0.01)

    fsdp = estimate_run({**run, "method": "full", "launcher": {"kind": "torchrun", "nproc_per_node": 8,
                                                              "sharding": "fsdp"}}, gpus=[], gpu_gib=80)
    assert fsdp["devices"] == 8
    assert fsdp["optimizer_gib"] == pytest.approx(full["optimizer_gib"] / 8, abs=0.01)
    assert fsdp["total_gib"] < full["total_gib"] / 3 and fsdp["fits"] is True

    ckpt = estimate_run({**run, "method": "full", "train": {**run["train"], "gradient_checkpointing": True}},
                        gpus=[], gpu_gib=80)
    # each layer keeps its input (32 x 2048 x 4096 fp32 = 1 GiB), one layer is recomputed; the loss's
    # fp32 log-probabilities over 128,256 tokens (12 bytes each per position: 2.9 GiB) stay
    assert ckpt["activations_gib"] < full["activations_gib"] / 3
    assert ckpt["activations_gib"] > 3 * 128256 * 2048 * 4 / GIB


def test_cpu_run_is_checked_against_host_ram(tiny):
    memory = estimate_run({"name": "x", "model": {"base": f"hf:{tiny}"}, "data": {"train": "builtin:brown"},
                           "method": "lora", "train": {"device": "cpu"}}, gpus=[])
    assert memory["device"] == "cpu" and memory["precision"] == "fp32"
    assert memory["limit"]["source"] == "host" and memory["fits"] is True and memory["advice"] == []


def run_estimate_cli(configs, *args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "finetune_lab", "estimate", "--config", "-", *args],
        input=json.dumps(configs), capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(TRAINER), "HF_HUB_OFFLINE": "1", **(env or {})})


def test_estimate_command_output_matches_the_schema(llama8b, tmp_path):
    configs = [
        {"name": "a", "model": {"base": f"hf:{llama8b}"}, "data": {"train": "builtin:brown", "seq_len": 1024},
         "method": "full", "train": {"batch_size": 4}},
        {"name": "b", "model": {"base": f"hf:{llama8b}"}, "data": {"train": "builtin:brown"}, "method": "lora",
         "lora": {"rank": 4}},
        {"name": "c", "model": {"base": f"hf:{tmp_path / 'missing'}"}, "data": {"train": "builtin:brown"}, "method": "lora"},
        {"name": "d", "model": {"base": "builtin:tiny"}, "data": {"train": "builtin:brown"}, "method": "lora",
         "train": {"batch_size": 0}},
    ]
    proc = run_estimate_cli(configs, "--gpu-gib", "24")
    assert proc.returncode == 0, proc.stderr
    items = json.loads(proc.stdout)
    estimate_schema = load_schema("estimate")
    jsonschema.validate(items, {"type": "array", "items": {"$ref": "#/definitions/estimateItem"},
                                "definitions": estimate_schema["definitions"]})
    assert [("memory" in i) for i in items] == [True, True, False, False]
    assert items[0]["memory"]["fits"] is False and items[0]["memory"]["advice"]
    assert "model.base" in items[2]["error"] and "missing" in items[2]["error"]
    assert "train.batch_size" in items[3]["error"]


def test_estimate_command_rejects_unreadable_input():
    proc = subprocess.run([sys.executable, "-m", "finetune_lab", "estimate", "--config", "-"], input="[1, 2",
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(TRAINER)})
    assert proc.returncode == 1 and proc.stderr.startswith("error:")


def test_oom_message_names_step_estimate_and_advice(make_run):
    from finetune_lab.config import load_config
    cfg = load_config(make_run(method="full"))
    text = oom_message(cfg, 7, torch.device("cpu"), 1)
    assert text.startswith("out of memory at step 7. Estimate: ")
    assert "GiB on the CPU (weights " in text and "Would lower it: " in text
    assert "train.gradient_checkpointing: true" in text
    assert oom_message(None, 3, None, 1).startswith("out of memory at step 3 (no estimate")


def test_out_of_memory_during_training_fails_the_run_with_the_step(make_run, monkeypatch):
    """An OutOfMemoryError at step 3 (injected into the loss step): the run ends failed with
    "out of memory at step 3" and the estimate's advice; the checkpoint of step 2 stays whole."""
    from finetune_lab import checkpoint as ckpt
    from finetune_lab.train import Recipe, run
    run_dir = make_run(train={"steps": 4, "batch_size": 2, "warmup_steps": 1, "lr": 1e-2})
    original = Recipe._loss_step

    def loss_step(self, x, y):
        if self.step == 2:  # computing step 3 (steps are numbered from 1 in events)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original(self, x, y)
    monkeypatch.setattr(Recipe, "_loss_step", loss_step)
    assert run(run_dir) == 1
    events = assert_valid_run_files(run_dir)
    finished = events[-1]
    assert finished["type"] == "run_finished" and finished["status"] == "failed" and finished["step"] == 3
    assert finished["error"].startswith("out of memory at step 3. Estimate: ")
    assert "Would lower it: " in finished["error"]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and status["step"] == 3 and status["error"] == finished["error"]
    assert [p.name for p in ckpt.list_checkpoints(run_dir)] == ["step-000002"]
    from safetensors.torch import load_file
    assert load_file(run_dir / "checkpoints" / "step-000002" / "adapter_model.safetensors")  # readable
    assert [e["step"] for e in events if e["type"] == "train"] == [1, 2]


def test_schema_examples_agree():
    """The schema's required memory fields are the contract's: total, weights, gradients,
    optimizer, activations (GiB) and devices."""
    memory = schema("estimate")["definitions"]["memory"]
    assert {"total_gib", "weights_gib", "gradients_gib", "optimizer_gib", "activations_gib", "devices"} <= set(memory["required"])
