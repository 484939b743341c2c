import torch
from peft import PeftModel

from finetune_lab.lora import apply_method, resolve_targets
from finetune_lab.builtin import build_builtin
from finetune_lab.train import run

LORA = {"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all", "variant": "lora"}


def logits(model, x):
    model.eval()
    with torch.no_grad():
        return model(input_ids=x).logits


def test_targets_resolve_per_architecture():
    model = build_builtin("tiny")
    assert resolve_targets(model, "all") == "all-linear"
    assert resolve_targets(model, "attention") == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert resolve_targets(model, "mlp") == ["down_proj", "gate_proj", "up_proj"]


def test_lora_at_init_equals_base_and_merge_equals_unmerged():
    x = torch.randint(0, 256, (2, 16))
    base = build_builtin("tiny", seed=1)
    expected = logits(base, x)
    model = apply_method(base, "lora", LORA, seed=0)
    assert torch.allclose(logits(model, x), expected, atol=1e-6)
    with torch.no_grad():  # move the adapters away from B = 0
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.05)
    unmerged = logits(model, x)
    assert not torch.allclose(unmerged, expected, atol=1e-4)
    merged = model.merge_and_unload()
    assert torch.allclose(logits(merged, x), unmerged, atol=1e-4)


def test_saved_adapter_reloads_with_peft(make_run):
    run_dir = make_run()
    assert run(run_dir) == 0
    from finetune_lab.pretrain import pretrained_builtin
    from conftest import PRETRAIN_STEPS
    x = torch.randint(0, 256, (2, 16))
    # the trained model, rebuilt the way the trainer does, then loaded with plain PEFT
    reloaded = PeftModel.from_pretrained(pretrained_builtin("tiny", steps=PRETRAIN_STEPS),
                                         run_dir / "checkpoints/step-000004")
    base = pretrained_builtin("tiny", steps=PRETRAIN_STEPS)
    from safetensors.torch import load_file
    keys = load_file(str(run_dir / "checkpoints/step-000004/adapter_model.safetensors")).keys()
    assert any(k.startswith("base_model.model.") and k.endswith("lora_A.weight") for k in keys)
    assert not torch.allclose(logits(reloaded, x), logits(base, x), atol=1e-5)


def test_adapter_save_reload_gives_equal_logits(tmp_path):
    from finetune_lab.pretrain import pretrained_builtin
    from conftest import PRETRAIN_STEPS
    x = torch.randint(0, 256, (2, 16))
    model = apply_method(pretrained_builtin("tiny", steps=PRETRAIN_STEPS), "lora", LORA, seed=0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.05)
    model.save_pretrained(tmp_path / "adapter")
    reloaded = PeftModel.from_pretrained(pretrained_builtin("tiny", steps=PRETRAIN_STEPS), tmp_path / "adapter")
    assert torch.allclose(logits(reloaded, x), logits(model, x), atol=1e-6)
