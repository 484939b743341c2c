"""Eval type kl_to_base: mean per-token KL(p_base || p_tuned), 0 at step 0 and positive after
training; LoRA's is exact (adapters disabled), full finetuning's a lower bound from the base's
cached top-k log-probabilities (exact when k covers the vocabulary)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import PRETRAIN_STEPS, assert_valid_run_files  # noqa: E402
from finetune_lab.evals import Evaluator  # noqa: E402
from finetune_lab.kl import coarse_kl  # noqa: E402
from finetune_lab.lora import apply_method  # noqa: E402
from finetune_lab.tokenizer import ByteTokenizer  # noqa: E402

KL = {"name": "kl", "type": "kl_to_base", "data": "builtin:arithmetic#heldout", "n": 4}


@pytest.fixture
def base():
    from finetune_lab.pretrain import pretrained_builtin
    return pretrained_builtin("tiny", steps=PRETRAIN_STEPS)


def exact_kl(base_model, tuned_model, x: torch.Tensor) -> float:
    with torch.no_grad():
        pb = torch.log_softmax(base_model(input_ids=x).logits.float(), -1)
        pt = torch.log_softmax(tuned_model(input_ids=x).logits.float(), -1)
    return float((pb.exp() * (pb - pt)).sum(-1).mean())


def perturb(params, scale: float = 0.05) -> None:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn(p.shape, generator=g) * scale)


def test_coarse_kl_is_a_lower_bound_and_exact_over_the_whole_vocabulary():
    g = torch.Generator().manual_seed(1)
    pb = torch.log_softmax(torch.randn(50, 40, generator=g) * 2, -1)
    pt = torch.log_softmax(torch.randn(50, 40, generator=g) * 2, -1)
    exact = (pb.exp() * (pb - pt)).sum(-1)
    for k in (1, 5, 20):
        v, i = pb.topk(k, -1)
        assert bool((coarse_kl(v, i, pt) <= exact + 1e-6).all())
    v, i = pb.topk(40, -1)
    assert torch.allclose(coarse_kl(v, i, pt), exact, atol=1e-5)
    assert float(coarse_kl(v, i, pb).abs().max()) < 1e-6  # a distribution against itself


def test_lora_kl_is_exact_through_disabled_adapters(base, tmp_path):
    model = apply_method(copy.deepcopy(base), "lora", {"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all",
                                                      "variant": "lora"}, 0).eval()
    ev = Evaluator({"forgetting": [KL]}, ByteTokenizer(), 32, "cpu", tmp_path)
    ev.remember_base(model)  # nothing to cache: the base is the same model without its adapters
    first = ev.evaluate(model, 0)["tasks"][0]
    assert first["value"] == 0.0 and first["approximation"].startswith("exact")  # B = 0: the base itself
    perturb([p for n, p in model.named_parameters() if "lora_" in n])
    after = ev.evaluate(model, 1)["tasks"][0]
    x = ev.tasks[0]["runner"].x
    assert after["value"] > 0
    assert after["value"] == pytest.approx(exact_kl(base.eval(), model, x), rel=1e-4)
    assert (after["n"], after["tokens"], after["metric"], after["higher_is_better"]) == (4, 4 * 32, "kl", False)


@pytest.mark.parametrize("top_k", [8, 259])
def test_full_kl_from_the_cached_top_k(base, tmp_path, top_k):
    frozen = copy.deepcopy(base).eval()
    model = base.eval()
    ev = Evaluator({"forgetting": [{**KL, "top_k": top_k}]}, ByteTokenizer(), 32, "cpu", tmp_path)
    ev.remember_base(model)
    assert ev.evaluate(model, 0)["tasks"][0]["value"] == 0.0
    perturb(model.parameters(), 0.02)  # "training": the base's weights are gone
    entry = ev.evaluate(model, 1)["tasks"][0]
    exact = exact_kl(frozen, model, ev.tasks[0]["runner"].x)
    assert 0 < entry["value"] <= exact * (1 + 1e-4)  # fp32 rounding aside, never above the true KL
    if top_k >= 259:  # k covers the byte vocabulary: exact
        assert entry["value"] == pytest.approx(exact, rel=1e-4) and entry["approximation"].startswith("exact")
    else:
        # how tight depends on the mass the top k held (the event says it): loose for this flat tiny base
        assert entry["approximation"].startswith("lower bound: the base's top-8") and "% of the base's probability" in entry["approximation"]


@pytest.mark.parametrize("method", ["lora", "full"])
def test_training_runs_report_kl_from_zero(make_run, method):
    from finetune_lab.train import run
    run_dir = make_run(method=method, evals={"every_steps": 2, "forgetting": [KL]})
    assert run(run_dir) == 0
    kl = [e["tasks"][0] for e in assert_valid_run_files(run_dir) if e["type"] == "eval"]
    assert [k["value"] for k in kl][0] == 0.0 and len(kl) == 3
    assert kl[-1]["value"] > 0
