"""What the older eval types score, built deterministically from the trainer's data: answers
extracted from generations (exact_match) and multiple-choice items (a HellaSwag-like cloze from
text; arithmetic answers with nearby wrong numbers). evals.py scores them; the built-in lm-eval
tasks (tasks/builtin_data.py) build their datasets with the same functions.
"""

from __future__ import annotations

import math
import random
import re

_CHOICES = 4  # true choice + 3 distractors, as HellaSwag and ARC


# ---------------------------------------------------------------------------- answer extraction

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_ANSWER_IS = re.compile(r"the answer is[:\s]*", re.IGNORECASE)


def extract_answer(text: str) -> str | None:
    """The final answer in a generation: what follows the first "The answer is" (its number if
    it has one, else the text up to the end of the sentence), else the last number in the text.

    Args:
        text (str): decoded generation.

    Returns:
        str | None: the answer, or None when there is none.
    """
    m = _ANSWER_IS.search(text)
    if m:
        rest = text[m.end():]
        sentence = re.split(r"\n|(?<!\d)\.(?!\d)|\.\s|\.$", rest, maxsplit=1)[0]
        num = _NUMBER.search(sentence)
        if num:
            return num.group(0).rstrip(".")
        return sentence.strip().rstrip(".") or None
    nums = _NUMBER.findall(text)
    return nums[-1].rstrip(".") if nums else None


def answers_match(predicted: str | None, answer: str) -> bool:
    """Numbers compare as numbers ("1,000" == "1000.0"); other text case- and space-insensitively."""
    if predicted is None:
        return False

    def num(s: str) -> float | None:
        try:
            return float(s.replace(",", "").strip())
        except ValueError:
            return None

    a, b = num(predicted), num(str(answer))
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-6)
    return " ".join(predicted.lower().split()) == " ".join(str(answer).lower().split())


# ---------------------------------------------------------------------------- building tasks

def _data():
    # Imported lazily: data.py is the trainer's, and tests may stand in for it.
    from finetune_lab import data
    return data


def _is_text_ref(ref: str) -> bool:
    return ref.partition("#")[0] in ("builtin:brown", "builtin:python-stdlib")


def _split_units(text: str, code: bool) -> list[str]:
    """Sentences of prose, or non-blank lines of code."""
    if code:
        return [ln.strip() for ln in text.splitlines() if ln.strip()]
    out = []
    for para in re.split(r"\n\s*\n", text):
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[\"'(A-Z])", para) if s.strip()]
    return out


def cloze_from_texts(texts: list[str], n: int, code: bool = False, seed: int = 0) -> list[dict]:
    """A HellaSwag-like cloze, deterministic: context = the previous unit and the first half of a
    unit (sentence or code line), choices = its true ending and the endings of 3 others.

    Args:
        texts (list[str]): documents.
        n (int): examples wanted.
        code (bool): split into lines (code) instead of sentences (prose).
        seed (int): selection seed.

    Returns:
        list[dict]: {context, choices (4 str, each with its leading space), label}.
    """
    items = []  # (previous unit, head, tail)
    for text in texts:
        units = _split_units(text, code)
        for i, u in enumerate(units):
            words = u.split()
            if 6 <= len(words) <= 40:
                half = len(words) // 2
                prev = units[i - 1] if i else ""
                items.append((prev, " ".join(words[:half]), " ".join(words[half:])))
    if len(items) < _CHOICES:
        raise ValueError("not enough text for a multiple-choice cloze")
    rng = random.Random(seed)
    picked = rng.sample(range(len(items)), min(n, len(items)))
    out = []
    for i in picked:
        prev, head, tail = items[i]
        others = []
        while len(others) < _CHOICES - 1:
            j = rng.randrange(len(items))
            if j != i and items[j][2] != tail and items[j][2] not in others:
                others.append(items[j][2])
        choices = [tail] + others
        rng.shuffle(choices)
        sep = "\n" if code else " "
        out.append({"context": (prev + sep if prev else "") + head,
                    "choices": [" " + c for c in choices], "label": choices.index(tail)})
    return out


def _distractors(answer: str, pool: list[str], rng: random.Random) -> list[str]:
    try:
        a = int(answer.replace(",", ""))
        cands = [a + 1, a - 1, a + 2, a - 2, a + 10, a - 10, 2 * a, a + 3]
        cands = [str(c) for c in cands if c >= 0 and c != a]
    except ValueError:
        cands = [p for p in pool if p != answer]
    cands = list(dict.fromkeys(cands))
    if len(cands) < _CHOICES - 1:
        raise ValueError(f"cannot build distractors for answer {answer!r}")
    return rng.sample(cands, _CHOICES - 1)


def _with_answer(response: str, answer: str, new: str) -> str:
    """The response with its final answer (after "= " or "is ", else its last occurrence) replaced."""
    pat = re.compile(r"(= |is )" + re.escape(answer) + r"(?![\d])")
    if pat.search(response):
        return pat.sub(lambda m: m.group(1) + new, response)
    i = response.rfind(answer)
    return response[:i] + new + response[i + len(answer):] if i >= 0 else response


def choices_from_examples(examples: list[dict], n: int, seed: int = 0) -> list[dict]:
    """Multiple choice from instruction examples with an ``answer`` (builtin:arithmetic): context
    = the prompt, choices = the true response and 3 with the answer replaced by a wrong one."""
    rng = random.Random(seed)
    pool = sorted({str(ex["answer"]) for ex in examples})
    out = []
    for ex in examples[:n]:
        ans = str(ex["answer"])
        responses = [ex["response"]] + [_with_answer(ex["response"], ans, d)
                                         for d in _distractors(ans, pool, rng)]
        order = list(range(_CHOICES))
        rng.shuffle(order)
        out.append({"context": ex["prompt"], "choices": [responses[k] for k in order],
                    "label": order.index(0), "instruction": True})
    return out
