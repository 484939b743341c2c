"""train.precision: fp32, bf16-mixed and bf16-true for real (dtypes of the weights, the
optimizer state and the checkpoint), on builtin:tiny on the CPU, with losses close to fp32's."""

import torch
from conftest import assert_valid_run_files
from safetensors.torch import load_file

from finetune_lab import precision as prec
from finetune_lab.checkpoint import STATE_FILE
from finetune_lab.train import Recipe

MODES = ["fp32", "bf16-mixed", "bf16-true"]


def train_recipe(run_dir):
    """Train ``run_dir`` in this process and return the recipe, for its model and optimizer."""
    recipe = Recipe(run_dir)
    recipe.setup()
    recipe.cleanup(recipe.train())
    return recipe


def dtypes(tensors) -> set[torch.dtype]:
    return {t.dtype for t in tensors}


def optimizer_state_dtypes(optimizer) -> set[torch.dtype]:
    return {v.dtype for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v) and v.dim() > 0}


def run_modes(make_run, method: str, lr: float) -> dict:
    out = {}
    for mode in MODES:
        run_dir = make_run(mode, method=method, train={"steps": 4, "batch_size": 2, "warmup_steps": 1, "lr": lr,
                                                       "precision": mode},
                           checkpoint={"every_steps": 0, "keep_last": 1})
        recipe = train_recipe(run_dir)
        events = assert_valid_run_files(run_dir)
        assert events[-1]["status"] == "completed", events[-1]
        out[mode] = (recipe, events, run_dir / "checkpoints" / "step-000004")
    return out


def losses(events) -> list[float]:
    return [e["loss"] for e in events if e["type"] == "train"]


def assert_close_to_fp32(runs: dict) -> None:
    reference = losses(runs["fp32"][1])
    assert len(reference) == 4 and all(torch.isfinite(torch.tensor(reference)))
    for mode in ("bf16-mixed", "bf16-true"):
        got = losses(runs[mode][1])
        # bf16 has 8 bits of mantissa: a forward differs by ~1e-3 here; four steps keep it < 1e-2
        assert max(abs(a - b) for a, b in zip(got, reference)) < 1e-2, (mode, got, reference)
        assert got != reference, f"{mode} gave fp32's losses exactly: was anything in bf16?"


def test_full_finetuning_precision_modes(make_run):
    runs = run_modes(make_run, "full", 1e-3)
    for mode, (recipe, events, ckpt) in runs.items():
        started = next(e for e in events if e["type"] == "run_started")
        assert started["precision"] == mode
        want = torch.bfloat16 if mode == "bf16-true" else torch.float32  # bf16-mixed: fp32 master weights
        assert dtypes(recipe.model.parameters()) == {want}, mode
        assert optimizer_state_dtypes(recipe.optimizer) == {want}, mode
        assert dtypes(load_file(str(ckpt / "model.safetensors")).values()) == {want}, mode  # keeps the dtype
        saved = torch.load(ckpt / STATE_FILE, weights_only=False)["optimizer"]["state"]
        assert {v.dtype for s in saved.values() for v in s.values() if v.dim() > 0} == {want}, mode
    assert_close_to_fp32(runs)
    cpu_warnings = [e["message"] for e in runs["bf16-true"][1] if e["type"] == "log" and e["level"] == "warning"]
    assert any("bf16-true on the CPU" in m and "slower than fp32" in m for m in cpu_warnings), cpu_warnings
    assert not [e for e in runs["fp32"][1] if e["type"] == "log" and "on the CPU" in e.get("message", "")]


def test_lora_precision_modes_keep_adapters_fp32_over_a_bf16_base(make_run):
    runs = run_modes(make_run, "lora", 1e-2)
    for mode, (recipe, events, ckpt) in runs.items():
        assert next(e for e in events if e["type"] == "run_started")["precision"] == mode
        frozen = [p for p in recipe.model.parameters() if not p.requires_grad]
        trained = [p for p in recipe.model.parameters() if p.requires_grad]
        assert dtypes(frozen) == {torch.float32 if mode == "fp32" else torch.bfloat16}, mode
        assert dtypes(trained) == {torch.float32}, mode  # adapters stay fp32, as PEFT keeps them
        assert optimizer_state_dtypes(recipe.optimizer) == {torch.float32}, mode
        assert dtypes(load_file(str(ckpt / "adapter_model.safetensors")).values()) == {torch.float32}, mode
    assert_close_to_fp32(runs)


def test_resolve_precision():
    cpu = torch.device("cpu")
    assert prec.resolve_precision("auto", cpu) == "fp32"
    assert prec.resolve_precision("bf16", cpu) == "bf16-mixed"  # the older name
    assert prec.resolve_precision("bf16-true", cpu) == "bf16-true"
    assert prec.base_dtype("bf16-mixed", "full") == torch.float32
    assert prec.base_dtype("bf16-mixed", "lora") == torch.bfloat16
    assert prec.base_dtype("bf16-true", "full") == torch.bfloat16
    assert prec.base_dtype("fp32", "lora") == torch.float32
