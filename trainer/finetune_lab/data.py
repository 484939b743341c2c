"""Data: built-in corpora, JSONL files, and the deterministic batches the trainer consumes.

Public names used by evals.py: ``load_texts``, ``load_examples``.
References (schema dataRef): ``builtin:brown`` | ``builtin:python-stdlib`` |
``builtin:arithmetic`` with optional ``#heldout`` / ``#train``, or a path to a ``.jsonl`` file
(relative to ``base_dir``, the folder of the experiment/run config).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sysconfig
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .paths import brown_dir

HELDOUT_PERCENT = 5  # documents whose id hashes below this go to the held-out split
DATA_VERSION = 1  # bump when a built-in corpus's processing changes (part of the base cache key)


# ---------------------------------------------------------------------------- references

def parse_ref(ref: str) -> tuple[str, str]:
    """'builtin:brown#heldout' -> ('builtin:brown', 'heldout'); split defaults to 'train'."""
    source, _, split = ref.partition("#")
    split = split or "train"
    if split not in ("train", "heldout"):
        raise ValueError(f"unknown split '#{split}' in data reference '{ref}'")
    return source, split


def is_heldout(doc_id: str) -> bool:
    """Deterministic ~5% split by a hash of the document id (stable across machines)."""
    digest = hashlib.sha1(doc_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELDOUT_PERCENT


def _split(docs: list[tuple[str, object]], split: str) -> list:
    want = split == "heldout"
    return [doc for doc_id, doc in docs if is_heldout(doc_id) == want]


def _jsonl_path(source: str, base_dir: Path) -> Path:
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = Path(base_dir) / path
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    return path


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from e
    return rows


# ---------------------------------------------------------------------------- Brown

_NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "''", "'", "]", "n't", "'s", "'re", "'ll", "'d", "'m", "'ve"}
_NO_SPACE_AFTER = {"(", "``", "["}


def _brown_sentence(line: str) -> str:
    """'The/at jury/nn said/vbd ./.' -> 'The jury said.' (tags stripped, punctuation attached)."""
    words = [tok.rsplit("/", 1)[0] for tok in line.split()]
    out = ""
    for i, w in enumerate(words):
        text = {"``": '"', "''": '"'}.get(w, w)
        if i > 0 and w not in _NO_SPACE_BEFORE and words[i - 1] not in _NO_SPACE_AFTER:
            out += " "
        out += text
    return out


@lru_cache(maxsize=1)
def brown_documents() -> tuple[tuple[str, str], ...]:
    """(file id, text) for each Brown file ca01..cr09: sentences rejoined into paragraphs."""
    docs = []
    for path in sorted(brown_dir().iterdir()):
        if not re.fullmatch(r"c[a-r]\d\d", path.name):
            continue
        paragraphs = []
        for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            sentences = [_brown_sentence(line) for line in block.splitlines() if line.strip()]
            if sentences:
                paragraphs.append(" ".join(sentences))
        docs.append((path.name, "\n\n".join(paragraphs)))
    if not docs:
        raise FileNotFoundError(f"no Brown files (ca01..cr09) in {brown_dir()}")
    return tuple(docs)


# ---------------------------------------------------------------------------- Python stdlib

@lru_cache(maxsize=1)
def stdlib_documents() -> tuple[tuple[str, str], ...]:
    """(relative path, source) of the running interpreter's stdlib .py files, sorted.
    Tests, site-packages and IDLE are left out (they are not the library itself)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages", "test", "tests", "idlelib", "idle_test", "__pycache__"}
    docs = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if skip.intersection(rel.parts[:-1]):
            continue
        try:
            docs.append((rel.as_posix(), path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, OSError):
            continue
    return tuple(docs)


# ---------------------------------------------------------------------------- arithmetic

_NAMES = ["Tom", "Ana", "Li", "Sam", "Maya", "Omar", "Eva", "Ben", "Zoe", "Raj"]
_THINGS = ["apples", "books", "marbles", "coins", "pencils", "stickers", "cards", "shells"]


def _arithmetic_problem(rng: random.Random) -> dict:
    name, thing = rng.choice(_NAMES), rng.choice(_THINGS)
    kind = rng.choice(["add", "sub", "mul", "two_step"])
    a, b = rng.randint(2, 20), rng.randint(2, 20)
    if kind == "add":
        q = f"{name} has {a} {thing} and gets {b} more. How many {thing} does {name} have?"
        work, ans = f"{a} + {b} = {a + b}", a + b
    elif kind == "sub":
        a = a + b
        q = f"{name} has {a} {thing} and gives away {b}. How many {thing} are left?"
        work, ans = f"{a} - {b} = {a - b}", a - b
    elif kind == "mul":
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        q = f"{name} has {a} boxes with {b} {thing} in each box. How many {thing} are there?"
        work, ans = f"{a} * {b} = {a * b}", a * b
    else:
        c = rng.randint(1, a + b - 1)
        q = f"{name} has {a} {thing}, gets {b} more, then loses {c}. How many {thing} does {name} have now?"
        work, ans = f"{a} + {b} = {a + b}, then {a + b} - {c} = {a + b - c}", a + b - c
    return {"prompt": f"Question: {q}\nAnswer:", "response": f" {work}. The answer is {ans}.",
            "answer": str(ans)}


@lru_cache(maxsize=1)
def arithmetic_examples(n: int = 4000, seed: int = 1234) -> tuple[tuple[str, dict], ...]:
    """``n`` seeded word problems; the id is the prompt, so duplicates share a split."""
    rng = random.Random(seed)
    return tuple((ex["prompt"], ex) for ex in (_arithmetic_problem(rng) for _ in range(n)))


# ---------------------------------------------------------------------------- public loaders

def load_texts(ref: str, base_dir: Path) -> list[str]:
    """Documents of a text data reference.

    Args:
        ref: builtin:brown | builtin:python-stdlib | builtin:arithmetic (prompt+response),
            each with optional #heldout; or a .jsonl of {"text": ...} rows (or prompt/response,
            or messages, which are flattened).
        base_dir: folder that relative .jsonl paths are relative to.
    Returns:
        list of document strings in a deterministic order.
    """
    source, split = parse_ref(ref)
    if source == "builtin:brown":
        return list(_split(list(brown_documents()), split))
    if source == "builtin:python-stdlib":
        return list(_split(list(stdlib_documents()), split))
    if source == "builtin:arithmetic":
        return [ex["prompt"] + ex["response"] for ex in load_examples(ref, base_dir)]
    rows = _read_jsonl(_jsonl_path(source, base_dir))
    return [row["text"] if "text" in row else (lambda e: e["prompt"] + e["response"])(_example(row, i))
            for i, row in enumerate(rows)]


def _flatten_messages(messages: list[dict]) -> dict:
    """Chat -> prompt/response with a plain template: 'Role: content' lines, then 'Assistant:'.
    The response is the last assistant message; earlier turns become the prompt."""
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    if last is None:
        raise ValueError("a 'messages' row has no assistant message")
    prompt = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages[:last])
    return {"prompt": prompt + "Assistant:", "response": " " + messages[last]["content"]}


def _example(row: dict, index: int) -> dict:
    if "prompt" in row and "response" in row:
        ex = {"prompt": str(row["prompt"]), "response": str(row["response"])}
    elif "messages" in row:
        ex = _flatten_messages(row["messages"])
    elif "text" in row:
        ex = {"prompt": "", "response": str(row["text"])}
    else:
        raise ValueError(f"row {index + 1}: expected prompt/response, messages or text fields")
    if "answer" in row:
        ex["answer"] = str(row["answer"])
    return ex


def load_examples(ref: str, base_dir: Path) -> list[dict]:
    """Instruction examples: dicts with ``prompt``, ``response`` (and ``answer`` for arithmetic).

    The prompt is exactly what the model sees before the response (templates applied), so
    ``prompt + response`` is the training text and generation starts right after ``prompt``.
    Text-only sources become examples with an empty prompt.
    """
    source, split = parse_ref(ref)
    if source == "builtin:arithmetic":
        return [dict(ex) for ex in _split(list(arithmetic_examples()), split)]
    if source.startswith("builtin:"):
        return [{"prompt": "", "response": t} for t in load_texts(ref, base_dir)]
    return [_example(row, i) for i, row in enumerate(_read_jsonl(_jsonl_path(source, base_dir)))]


# ---------------------------------------------------------------------------- batches

class PackedText:
    """Documents joined with eos into one token stream, cut into windows of seq_len + 1.

    Batch ``i`` is a pure function of (seed, i): windows are shuffled per epoch with a
    seeded permutation, so resuming at batch i continues the same order.
    """

    def __init__(self, texts: list[str], tokenizer, seq_len: int, batch_size: int, seed: int):
        parts = []
        eos = np.array([tokenizer.eos_token_id], dtype=np.int32)
        for text in texts:
            parts += [tokenizer.encode_array(text), eos]
        stream = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        self.n_windows = (len(stream) - 1) // seq_len
        if self.n_windows < 1:
            raise ValueError(f"not enough text for one sequence of {seq_len} tokens")
        self.stream = torch.from_numpy(stream.astype(np.int64))
        self.seq_len, self.batch_size, self.seed = seq_len, batch_size, seed
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms = {epoch: torch.randperm(self.n_windows, generator=g)}
        return self._perms[epoch]

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (inputs, targets), each (B, T) int64; targets are inputs shifted by one."""
        rows = []
        for j in range(index * self.batch_size, (index + 1) * self.batch_size):
            w = int(self._perm(j // self.n_windows)[j % self.n_windows])
            rows.append(self.stream[w * self.seq_len: w * self.seq_len + self.seq_len + 1])
        chunk = torch.stack(rows)
        return chunk[:, :-1].contiguous(), chunk[:, 1:].contiguous()


class InstructionBatches:
    """bos + prompt + response + eos per example, right-padded; the prompt (and padding) is
    masked out of the loss with -100. Same seeded per-epoch order as PackedText."""

    def __init__(self, examples: list[dict], tokenizer, seq_len: int, batch_size: int, seed: int):
        if not examples:
            raise ValueError("no training examples")
        self.rows = []
        for ex in examples:
            p = [tokenizer.bos_token_id] + tokenizer.encode(ex["prompt"])
            r = tokenizer.encode(ex["response"]) + [tokenizer.eos_token_id]
            budget = seq_len + 1
            if len(p) + len(r) > budget:  # too long: keep at least half the window for the response
                keep_r = min(len(r), max(budget - len(p), budget // 2))
                p, r = p[len(p) - (budget - keep_r):] if budget > keep_r else [], r[:keep_r]
            ids = p + r
            labels = [-100] * len(p) + r
            pad = seq_len + 1 - len(ids)
            self.rows.append((ids + [tokenizer.pad_token_id] * pad, labels + [-100] * pad))
        self._init_rows(self.rows, seq_len, batch_size, seed)

    def _init_rows(self, rows: list[tuple[list[int], list[int]]], seq_len: int, batch_size: int, seed: int) -> None:
        self.rows, self.n_windows = rows, len(rows)
        self.seq_len, self.batch_size, self.seed = seq_len, batch_size, seed
        self._perms: dict[int, torch.Tensor] = {}

    @classmethod
    def from_rows(cls, rows: list[tuple[list[int], list[int]]], seq_len: int, batch_size: int, seed: int):
        """Batches of ready (ids, labels) rows, each seq_len + 1 long (chat.chat_rows)."""
        batches = cls.__new__(cls)
        batches._init_rows(rows, seq_len, batch_size, seed)
        return batches

    _perm = PackedText._perm

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids, labels = [], []
        for j in range(index * self.batch_size, (index + 1) * self.batch_size):
            i, l = self.rows[int(self._perm(j // self.n_windows)[j % self.n_windows])]
            ids.append(i)
            labels.append(l)
        ids, labels = torch.tensor(ids), torch.tensor(labels)
        return ids[:, :-1].contiguous(), labels[:, 1:].contiguous()


def make_batches(data_cfg: dict, tokenizer, batch_size: int, seed: int, base_dir: Path):
    """The training batch source for a run's ``data`` section (format text | instruction | chat)."""
    if data_cfg["format"] == "chat":
        from .chat import chat_rows, load_conversations
        source, _ = parse_ref(data_cfg["train"])
        if source.startswith("builtin:"):
            raise ValueError(f"data.train: data.format chat needs a .jsonl of {{\"messages\": [...]}} rows, not {source}")
        rows = chat_rows(load_conversations(_jsonl_path(source, base_dir)), tokenizer, data_cfg["seq_len"])
        return InstructionBatches.from_rows(rows, data_cfg["seq_len"], batch_size, seed)
    if data_cfg["format"] == "instruction":
        return InstructionBatches(load_examples(data_cfg["train"], base_dir), tokenizer,
                                  data_cfg["seq_len"], batch_size, seed)
    return PackedText(load_texts(data_cfg["train"], base_dir), tokenizer,
                      data_cfg["seq_len"], batch_size, seed)
