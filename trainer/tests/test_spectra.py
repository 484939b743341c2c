"""Spectra of ΔW: the QR shortcut, rank90, intruders, random baselines, and the tracker on a
tiny Llama (full and PEFT LoRA), validated against schemas/events.schema.json."""

import json
import math
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from finetune_lab import spectra as S  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def event_validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "schemas" / "events.schema.json").read_text())
    return jsonschema.Draft7Validator(schema)


def _validate(validator, payload, type_):
    event = {"v": 1, "type": type_, "time": time.time(), **payload}
    json.loads(json.dumps(event))  # plain JSON types only
    errors = list(validator.iter_errors(event))
    assert not errors, [e.message for e in errors]


# --------------------------------------------------------------------------- pure functions

@pytest.mark.parametrize("out_f,in_f,r", [(64, 48, 4), (32, 96, 16), (20, 20, 32), (128, 128, 1), (8, 300, 8)])
@pytest.mark.parametrize("scale_kind", ["lora", "rslora"])
def test_qr_spectrum_equals_dense(out_f, in_f, r, scale_kind):
    g = torch.Generator().manual_seed(out_f * 1000 + in_f + r)
    A = torch.randn(r, in_f, generator=g) / math.sqrt(in_f)
    B = torch.randn(out_f, r, generator=g)
    alpha = 2 * r
    scale = alpha / r if scale_kind == "lora" else alpha / math.sqrt(r)
    qr = S.lora_delta_singular_values(A, B, scale)
    dense = torch.linalg.svdvals(scale * B.double() @ A.double())
    n = qr.numel()
    assert n == min(r, out_f, in_f)
    torch.testing.assert_close(qr.double(), dense[:n], rtol=1e-4, atol=1e-4 * float(dense[0]))
    assert float(torch.cat([dense[n:], torch.zeros(1, dtype=dense.dtype)]).max()) < 1e-6 * float(dense[0])  # the rest are zero
    assert torch.all(qr[:-1] >= qr[1:])  # descending


def test_qr_spectrum_half_precision_and_zero_b():
    A = torch.randn(4, 32).bfloat16()
    assert S.lora_delta_singular_values(A, torch.zeros(16, 4).bfloat16(), 2.0).abs().max() == 0
    B = torch.randn(16, 4).half()
    sv = S.lora_delta_singular_values(A.half(), B, 0.5)
    assert sv.dtype == torch.float32 and sv.numel() == 4


@pytest.mark.parametrize("shape", [(16, 96), (96, 16), (40, 40)])
def test_wide_matrices_are_decomposed_through_their_transpose_with_the_same_result(shape):
    # The tracker decomposes a wide matrix as its transpose (several times faster in LAPACK);
    # σ must be the same and U must span the same directions (columns equal up to sign).
    g = torch.Generator().manual_seed(3)
    w = torch.randn(*shape, generator=g)
    ref_u, ref_s, _ = torch.linalg.svd(w, full_matrices=False)
    torch.testing.assert_close(S.singular_values(w), ref_s, rtol=1e-5, atol=1e-5)
    u = S.left_singular_vectors(w)
    assert u.shape == ref_u.shape == (shape[0], min(shape))
    torch.testing.assert_close((u * ref_u).sum(0).abs(), torch.ones(min(shape)), rtol=0, atol=1e-4)
    torch.testing.assert_close(u @ (u.T @ w), w, rtol=0, atol=1e-4)  # W lies in the span of U


def test_rank90_known_spectra():
    assert S.rank90(torch.tensor([1.0] + [0.0] * 9)) == 1
    assert S.rank90(torch.ones(10)) == 9  # 9 of 10 equal values is exactly 90%
    assert S.rank90(torch.ones(100)) == 90
    assert S.rank90([3.0, 1.0, 1.0, 0.0]) == 2  # 9 + 1 = 10 of 11 >= 0.9
    assert S.rank90(torch.tensor([0.0, 3.0, 1.0])) == 1  # order does not matter: 9/10
    assert S.rank90(torch.zeros(5)) == 0
    assert S.rank90(torch.zeros(0)) == 0
    d = torch.diag(torch.tensor([4.0, 2.0, 2.0, 1.0, 1.0]))  # σ² 16,4,4,1,1 of 26: 24/26 at k=3
    assert S.rank90(torch.linalg.svdvals(d)) == 3


def test_intruders_identical_is_zero_and_injected_direction_counts():
    g = torch.Generator().manual_seed(0)
    w_base = torch.randn(64, 96, generator=g) / 10
    assert S.intruder_count(w_base, w_base.clone()) == 0
    assert S.intruder_count(w_base, w_base + 1e-4 * torch.randn(64, 96, generator=g)) == 0
    # U_base is a complete basis of R^64, so an intruder is a direction spread over many of its
    # vectors: the equal mix of all 64 has |cos| = 1/8 with each.
    u_base = S.left_singular_vectors(w_base)
    mix = u_base.sum(dim=1) / 8.0
    v = torch.randn(96, generator=g)
    w_tuned = w_base + 50.0 * torch.outer(mix, v / v.norm())  # a new dominant direction
    assert S.intruder_count(w_base, w_tuned, k=10, eps=0.5) == 1
    assert S.intruder_count(w_base, w_tuned, k=10, eps=0.1) == 0  # 1/8 > 0.1
    assert S.intruder_count(w_base, w_tuned, u_base=u_base) == 1
    # an existing direction made dominant is not an intruder
    assert S.intruder_count(w_base, w_base + 50.0 * torch.outer(u_base[:, 30], v / v.norm())) == 0


def test_random_baselines():
    r = S.random_rank90((128, 128), seed=0)
    assert 60 <= r <= 72, r  # ≈66, as random_rank90's docstring says
    r2 = S.random_rank90((128, 512), seed=0)
    assert 90 <= r2 <= 106, r2  # ≈98
    assert S.random_rank90((128, 128), seed=0) == r  # cached, deterministic
    u = S.left_singular_vectors(torch.randn(128, 128))
    # at width 128 random directions have max |cos| ≈ 0.2–0.35: all intruders at ε = 0.5,
    assert S.random_intruder_count(u, k=10, eps=0.5) == 10
    # and none at ε = 0.1 (max |cos| >= 1/√128 ≈ 0.088 against a complete basis, in practice > 0.15).
    assert S.random_intruder_count(u, k=10, eps=0.1) == 0


def test_names_kinds_layers():
    assert S.canonical_name("base_model.model.model.layers.3.mlp.up_proj") == "model.layers.3.mlp.up_proj"
    assert S.module_kind("model.layers.0.self_attn.q_proj") == "attention"
    assert S.module_kind("model.layers.0.mlp.down_proj") == "mlp"
    assert S.module_kind("transformer.h.2.attn.c_attn") == "attention"
    assert S.module_kind("transformer.h.2.attn.c_proj") == "attention"
    assert S.module_kind("transformer.h.2.mlp.c_proj") == "mlp"
    assert S.module_kind("transformer.h.2.mlp.c_fc") == "mlp"
    assert S.module_kind("lm_head") is None
    assert S.layer_index("model.layers.11.mlp.up_proj") == 11
    assert S.layer_index("transformer.h.7.attn.c_attn") == 7
    assert S.selects(["q_proj", r".*\.mlp\.down_proj"], "model.layers.0.self_attn.q_proj", "attention")
    assert S.selects(["q_proj", r".*\.mlp\.down_proj"], "model.layers.1.mlp.down_proj", "mlp")
    assert not S.selects(["q_proj"], "model.layers.0.self_attn.k_proj", "attention")
    assert not S.selects("attention", "model.layers.0.mlp.up_proj", "mlp")


# --------------------------------------------------------------------------- the tracker

def _tiny_llama():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return transformers.LlamaForCausalLM(cfg)


def _peft(model, **kw):
    peft = pytest.importorskip("peft")
    cfg = peft.LoraConfig(r=kw.pop("r", 4), lora_alpha=kw.pop("alpha", 8), target_modules=kw.pop("targets", "all-linear"),
                          lora_dropout=0.0, **kw)
    return peft.get_peft_model(model, cfg)


def _perturb(params, scale=0.05):
    with torch.no_grad():
        for p in params:
            p.add_(scale * torch.randn_like(p))


SPECTRA_CFG = {"every_steps": 10, "modules": "all", "top_k": 8, "intruder_k": 10, "intruder_epsilon": 0.5}


def test_tracker_full(event_validator):
    model = _tiny_llama()
    tr = S.SpectraTracker(model, "full", SPECTRA_CFG, None, seed=0)
    assert len(tr.targets) == 2 * 7  # q k v o gate up down per layer; no embeddings, no head
    ev0 = tr.compute(model, 0)
    assert all(e["rank90"] == 0 and e["energy"] == 0 and e["intruders"] == 0 for e in ev0)
    _perturb([p for n, p in model.named_parameters() if "proj" in n])
    evs = tr.compute(model, 5)
    assert len(evs) == 14
    for e in evs:
        _validate(event_validator, e, "spectrum")
        assert e["lora_rank"] is None and e["rank90"] > 1 and len(e["singular_values"]) == 8
        assert e["singular_values"] == sorted(e["singular_values"], reverse=True)
    q = next(e for e in evs if e["module"] == "model.layers.1.self_attn.q_proj")
    assert (q["kind"], q["layer"], q["name"], q["shape"]) == ("attention", 1, "q_proj", [32, 32])
    down = next(e for e in evs if e["module"] == "model.layers.0.mlp.down_proj")
    assert (down["kind"], down["shape"]) == ("mlp", [32, 64])
    assert len(S.SpectraTracker(model, "full", {**SPECTRA_CFG, "modules": "mlp"}, None, 0).targets) == 6


@pytest.mark.parametrize("variant", ["lora", "rslora"])
def test_tracker_lora(event_validator, variant):
    base = _tiny_llama()
    model = _peft(base, r=4, alpha=8, use_rslora=(variant == "rslora"))
    tr = S.SpectraTracker(model, "lora", SPECTRA_CFG, {"rank": 4, "alpha": 8, "variant": variant}, seed=0)
    assert len(tr.targets) == 14 and tr.targets[0].module.startswith("model.layers.0.")
    ev0 = tr.compute(model, 0)
    for e in ev0:  # B is zero at init: no change yet
        _validate(event_validator, e, "spectrum")
        assert e["rank90"] == 0 and e["energy"] == 0 and e["lora_rank"] == 4 and e["intruders"] == 0
    _perturb([p for n, p in model.named_parameters() if "lora_" in n], 0.5)
    evs = tr.compute(model, 3)
    for e in evs:
        _validate(event_validator, e, "spectrum")
        assert 1 <= e["rank90"] <= 4 and len(e["singular_values"]) == 4
    # the QR values equal the dense ΔW's, with PEFT's own scale (alpha/r or alpha/sqrt(r))
    layer = model.base_model.model.model.layers[0].self_attn.v_proj
    dense = torch.linalg.svdvals(layer.get_delta_weight("default").float())[:4]
    e = next(e for e in evs if e["module"] == "model.layers.0.self_attn.v_proj")
    torch.testing.assert_close(torch.tensor(e["singular_values"]), dense, rtol=1e-4, atol=1e-5)
    assert layer.scaling["default"] == (2.0 if variant == "lora" else 4.0)


def test_tracker_lora_attention_only_and_dora(event_validator):
    model = _peft(_tiny_llama(), r=2, alpha=4, targets=["q_proj", "v_proj"])
    tr = S.SpectraTracker(model, "lora", SPECTRA_CFG, None, seed=1)
    assert {t.name for t in tr.targets} == {"q_proj", "v_proj"}  # no adapter, no change: skipped
    dora = _peft(_tiny_llama(), r=2, alpha=4, targets=["up_proj"], use_dora=True)
    tr = S.SpectraTracker(dora, "lora", SPECTRA_CFG, {"variant": "dora"}, seed=1)
    assert all(e["rank90"] == 0 for e in tr.compute(dora, 0))  # magnitude starts at ‖W‖_row: W' = W
    _perturb([p for n, p in dora.named_parameters() if "lora_" in n], 0.5)
    evs = tr.compute(dora, 1)
    layer = dora.base_model.model.model.layers[0].mlp.up_proj
    w_base = layer.base_layer.weight.detach().clone()
    layer.merge()
    dense = torch.linalg.svdvals(layer.base_layer.weight.detach() - w_base)
    layer.unmerge()
    e = next(e for e in evs if e["module"] == "model.layers.0.mlp.up_proj")
    _validate(event_validator, e, "spectrum")
    torch.testing.assert_close(torch.tensor(e["singular_values"]), dense[:8], rtol=1e-3, atol=1e-5)
    sv = e["singular_values"]
    assert sum(x > 1e-3 * sv[0] for x in sv) > 2  # beyond r = 2: the magnitude rescaling is not low rank


def test_tracker_full_reads_w_base_from_the_base_files_or_a_snapshot(tmp_path):
    """W_base of full finetuning: from the base's own safetensors when they hold the model's
    starting weights, else from a snapshot taken at the start; both give the same events, and
    neither is fooled by a base file whose values differ from what the model started from."""
    transformers = pytest.importorskip("transformers")
    _tiny_llama().save_pretrained(tmp_path / "base", max_shard_size="20KB")  # sharded, with an index
    assert (tmp_path / "base" / "model.safetensors.index.json").exists()

    def events(model):
        tr = S.SpectraTracker(model, "full", SPECTRA_CFG, None, seed=0)
        torch.manual_seed(5)
        _perturb([p for n, p in model.named_parameters() if "proj" in n])
        return tr.base.source, tr.compute(model, 2)

    load = lambda: transformers.LlamaForCausalLM.from_pretrained(tmp_path / "base", torch_dtype=torch.float32)  # noqa: E731
    source_files, from_files = events(load())
    assert source_files == f"files in {tmp_path / 'base'}"
    m = load()
    m.name_or_path = m.config._name_or_path = ""  # built in memory, as far as the tracker can tell
    source_snap, from_snapshot = events(m)
    assert source_snap == "a snapshot of the starting weights"
    assert from_files == from_snapshot and len(from_files) == 14 and all(e["rank90"] > 1 for e in from_files)
    changed = load()
    with torch.no_grad():
        changed.model.layers[0].mlp.up_proj.weight.add_(1.0)  # no longer what the files hold
    source_changed, from_changed = events(changed)
    assert source_changed == "a snapshot of the starting weights"
    # the same change from its own start: ΔW of the shifted matrix equal up to rounding, the others exact
    up = "model.layers.0.mlp.up_proj"
    assert [e for e in from_changed if e["module"] != up] == [e for e in from_files if e["module"] != up]
    torch.testing.assert_close(*(torch.tensor(next(e for e in evs if e["module"] == up)["singular_values"])
                                 for evs in (from_changed, from_files)), rtol=1e-5, atol=0)
