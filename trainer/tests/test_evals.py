"""Evaluator on a tiny random Llama: loss / multiple_choice / exact_match payloads validate
against schemas/events.schema.json, deltas are 0 at the first call, answers are extracted."""

import json
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from finetune_lab import evals as E  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SEQ = 48

PROSE = ("The jury said the election was well run. It found no evidence of fraud in the city. "
         "The mayor thanked the voters for their patience today. Rain fell on the old town all night long. "
         "She walked to the market and bought fresh bread for the family. The river rose above the bridge "
         "after the storm. Children played in the park until the sun went down. ") * 4


class Bytes:
    """The built-in models' tokenizer interface (ids 0..255 bytes, then bos, eos, pad)."""
    bos_token_id, eos_token_id, pad_token_id, vocab_size = 256, 257, 258, 259

    def encode(self, text):
        return list(text.encode("utf-8"))

    def decode(self, ids):
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def model():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=259, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                                   bos_token_id=256, eos_token_id=257, pad_token_id=258)
    return transformers.LlamaForCausalLM(cfg).train()


@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema")
    return jsonschema.Draft7Validator(json.loads((REPO / "schemas" / "events.schema.json").read_text()))


@pytest.fixture
def stand_in_data(monkeypatch):
    """builtin:brown as a few sentences of prose, so no corpus is needed; the rest is data.py's."""
    from finetune_lab import data

    real_texts, real_examples = data.load_texts, data.load_examples

    def load_texts(ref, base_dir):
        return [PROSE, PROSE[::-1]] if ref.startswith("builtin:brown") else real_texts(ref, base_dir)

    def load_examples(ref, base_dir):
        if ref.startswith("builtin:brown"):
            return [{"prompt": "", "response": t} for t in load_texts(ref, base_dir)]
        return real_examples(ref, base_dir)

    monkeypatch.setattr(data, "load_texts", load_texts)
    monkeypatch.setattr(data, "load_examples", load_examples)


def _valid(validator, payload):
    event = {"v": 1, "type": "eval", "time": time.time(), **payload}
    json.loads(json.dumps(event))
    errors = list(validator.iter_errors(event))
    assert not errors, [e.message for e in errors]


def test_extract_answer():
    assert E.extract_answer(" 3 + 4 = 7. The answer is 7.") == "7"
    assert E.extract_answer("The answer is: 1,250 apples") == "1,250"
    assert E.extract_answer("so 12 - 5 = 7, then 7 * 2 = 14") == "14"
    assert E.extract_answer("the answer is Paris. Then 3") == "Paris"
    assert E.extract_answer("The answer is 3.5.") == "3.5"
    assert E.extract_answer("no numbers here") is None
    assert E.answers_match("1,000", "1000") and E.answers_match("7.0", "7") and not E.answers_match("8", "7")
    assert E.answers_match(" paris", "Paris") and not E.answers_match(None, "7")


def test_builders_are_deterministic():
    a = E.cloze_from_texts([PROSE], 5)
    assert a == E.cloze_from_texts([PROSE], 5)
    assert all(len(it["choices"]) == 4 and 0 <= it["label"] < 4 for it in a)
    assert len({c for c in a[0]["choices"]}) == 4
    ex = [{"prompt": "Question: 3 + 4?\nAnswer:", "response": " 3 + 4 = 7. The answer is 7.", "answer": "7"}]
    it = E.choices_from_examples(ex, 1)[0]
    assert it["choices"][it["label"]] == ex[0]["response"]
    wrong = [c for i, c in enumerate(it["choices"]) if i != it["label"]]
    assert all(c.startswith(" 3 + 4 = ") and "answer is 7." not in c for c in wrong)
    assert E.aggregate([]) is None
    mixed = E.aggregate([{"value": 2.0, "higher_is_better": False}, {"value": 0.5, "higher_is_better": True}])
    assert mixed == {"value": -0.75, "higher_is_better": True}


def test_evaluator_all_task_types(model, validator, stand_in_data, tmp_path):
    mc = tmp_path / "mc.jsonl"
    mc.write_text("\n".join(json.dumps({"context": f"{i} plus one is", "choices": [f" {i + 1}", " cat", " blue"],
                                        "label": 0}) for i in range(5)))
    cfg = {"every_steps": 10,
           "learning": [{"name": "arith", "type": "exact_match", "data": "builtin:arithmetic#heldout",
                         "max_examples": 6, "max_new_tokens": 8},
                        {"name": "arith-mc", "type": "multiple_choice", "data": "builtin:arithmetic#heldout",
                         "max_examples": 6},
                        {"name": "arith-loss", "type": "loss", "data": "builtin:arithmetic#heldout",
                         "max_examples": 6}],
           "forgetting": [{"name": "english", "type": "loss", "data": "builtin:brown#heldout", "max_examples": 5},
                          {"name": "cloze", "type": "multiple_choice", "data": "builtin:brown#heldout",
                           "max_examples": 6},
                          {"name": "mc-file", "type": "multiple_choice", "data": "mc.jsonl", "max_examples": 4}]}
    ev = E.Evaluator(cfg, Bytes(), SEQ, "cpu", tmp_path)
    p0 = ev.evaluate(model, 0)
    _valid(validator, p0)
    assert model.training  # restored
    by = {t["name"]: t for t in p0["tasks"]}
    assert by["english"]["metric"] == "loss" and by["english"]["n"] == 5
    assert 4.0 < by["english"]["value"] < 7.0  # random init: about ln(259) = 5.56 nats
    assert by["cloze"]["n"] == 6 and 0 <= by["cloze"]["accuracy_norm"] <= 1
    assert by["mc-file"]["n"] == 4 and by["arith"]["n"] == 6 and by["arith"]["metric"] == "exact_match"
    assert p0["learning"]["higher_is_better"] is True  # mixed directions: normalised
    assert p0["forgetting"]["delta"] == 0 and p0["learning"]["delta"] == 0
    p1 = ev.evaluate(model, 10)  # deterministic: same model, same scores, delta 0
    assert [t["value"] for t in p1["tasks"]] == pytest.approx([t["value"] for t in p0["tasks"]], abs=1e-5)
    with torch.no_grad():
        model.lm_head.weight.mul_(3.0)
    p2 = ev.evaluate(model, 20)
    _valid(validator, p2)
    assert p2["forgetting"]["delta"] != 0


def test_single_role_and_empty_role(model, validator, stand_in_data, tmp_path):
    cfg = {"forgetting": [{"name": "english", "type": "loss", "data": "builtin:brown", "max_examples": 3}]}
    ev = E.Evaluator(cfg, Bytes(), SEQ, "cpu", tmp_path)
    p = ev.evaluate(model, 0)
    _valid(validator, p)
    assert p["learning"] is None and p["forgetting"]["higher_is_better"] is False
    ev2 = E.Evaluator(cfg, Bytes(), SEQ, "cpu", tmp_path)
    ev2.set_baseline({"forgetting": {"value": p["forgetting"]["value"] - 1.0}})  # a resumed run
    assert ev2.evaluate(model, 30)["forgetting"]["delta"] == pytest.approx(1.0)


def test_loss_matches_model_loss(model, stand_in_data, tmp_path):
    cfg = {"forgetting": [{"name": "english", "type": "loss", "data": "builtin:brown", "max_examples": 2}]}
    ev = E.Evaluator(cfg, Bytes(), SEQ, "cpu", tmp_path)
    rows = ev.tasks[0]["items"]
    x = torch.tensor([ids for ids, _ in rows])
    with torch.no_grad():
        ref = model(input_ids=x, labels=x).loss.item()
    assert ev.evaluate(model, 0)["tasks"][0]["value"] == pytest.approx(ref, rel=1e-4)
