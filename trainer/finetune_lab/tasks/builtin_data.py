"""Datasets of the built-in lm-eval tasks (the YAML files beside this one), built from the
trainer's own built-in data, deterministically and without downloads.

lm-evaluation-harness calls these through ``custom_dataset: !function builtin_data.<name>``
with the task's metadata as keyword arguments (ignored here). Each returns {"test": Dataset}.
The finetune_lab package must be importable (it is in the trainer; for lm-eval's own command
line: ``PYTHONPATH=trainer lm_eval --include_path trainer/finetune_lab/tasks ...``).
"""

from __future__ import annotations

from pathlib import Path

CLOZE_ITEMS = 500  # items per cloze task; an eval's `limit` takes the first N


def _dataset(rows: list[dict]) -> dict:
    import datasets
    return {"test": datasets.Dataset.from_list(rows)}


def arithmetic(**_metadata) -> dict:
    """builtin:arithmetic#heldout: {prompt, response, answer} word problems (data.py)."""
    from finetune_lab.data import load_examples
    rows = load_examples("builtin:arithmetic#heldout", Path("."))
    return _dataset([{"prompt": r["prompt"], "response": r["response"], "answer": r["answer"]} for r in rows])


def _cloze(ref: str, code: bool) -> dict:
    from finetune_lab.data import load_texts
    from finetune_lab.eval_items import cloze_from_texts
    items = cloze_from_texts(load_texts(ref, Path(".")), CLOZE_ITEMS, code=code)
    # lm-eval joins context and choice with target_delimiter " ": the choices' own leading space goes
    return _dataset([{"context": it["context"], "choices": [c[1:] for c in it["choices"]], "label": it["label"]}
                     for it in items])


def cloze_english(**_metadata) -> dict:
    """A HellaSwag-like cloze over held-out Brown sentences (evals.cloze_from_texts)."""
    return _cloze("builtin:brown#heldout", code=False)


def cloze_python(**_metadata) -> dict:
    """The same cloze over held-out lines of the Python standard library."""
    return _cloze("builtin:python-stdlib#heldout", code=True)
