"""train.gradient_checkpointing: transformers' own (non-reentrant) activation checkpointing
gives the losses and gradient norms of a run without it, for LoRA (with dropout, whose masks
the recomputation must replay) and full finetuning."""

import pytest
import torch
from conftest import assert_valid_run_files
from test_precision import train_recipe


def train_stats(events):
    return [(e["loss"], e["grad_norm"]) for e in events if e["type"] == "train"]


@pytest.mark.parametrize("method, lr", [("lora", 1e-2), ("full", 1e-3)])
def test_gradient_checkpointing_gives_the_same_losses(make_run, method, lr):
    stats, saved = {}, {}
    for on in (False, True):
        run_dir = make_run(f"gc-{on}", method=method, lora={"rank": 4, "dropout": 0.1},
                           train={"steps": 4, "batch_size": 2, "warmup_steps": 1, "lr": lr, "seed": 3,
                                  "gradient_checkpointing": on},
                           checkpoint={"every_steps": 0, "keep_last": 1})
        recipe = train_recipe(run_dir)
        base = recipe.model.get_base_model() if method == "lora" else recipe.model
        assert base.is_gradient_checkpointing is on
        saved[on] = saved_tensors(recipe.model)
        events = assert_valid_run_files(run_dir)
        assert events[-1]["status"] == "completed"
        stats[on] = train_stats(events)
    assert saved[True] < saved[False] / 2, saved  # the layers' activations are not kept
    assert len(stats[True]) == 4
    for (loss, norm), (loss_gc, norm_gc) in zip(stats[False], stats[True]):
        assert abs(loss - loss_gc) < 1e-5 and abs(norm - norm_gc) < 1e-4 * max(1.0, norm), (stats[False], stats[True])


def saved_tensors(model) -> int:
    """How many tensors one forward saves for the backward outside checkpointed regions (inside
    one, torch.utils.checkpoint's own hooks take them and keep only the layer's inputs)."""
    count = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: count.append(1) or t, lambda t: t):
        loss = model(input_ids=torch.ones((1, 8), dtype=torch.long), use_cache=False).logits.float().mean()
    loss.backward()
    return len(count)
