"""``data.format: chat``: JSONL rows ``{"messages": [{"role": "system"|"user"|"assistant",
"content": "..."}]}``, rendered by the tokenizer's own chat template, the loss on the assistant's
tokens only (labels -100 elsewhere).

Which tokens are the assistant's:

1. A template that marks them (``{% generation %}`` ... ``{% endgeneration %}``): transformers'
   own ``apply_chat_template(..., return_assistant_tokens_mask=True)``.
2. Any other template (most of them): render the conversation, and for each assistant message k
   render ``messages[:k]`` with the generation prompt and ``messages[:k+1]``; the characters
   between the two are that reply (its content and its end-of-turn marker, so the model learns
   to stop). A token is the assistant's when its characters (the fast tokenizer's offsets)
   overlap such a span. This needs a template that renders a conversation prefix by prefix
   (each shorter rendering a prefix of the longer one); one that does not is refused by name.

The built-in models' byte tokenizer has no Jinja template; its chat format is fixed here
(``byte_chat_tokens``): bos, then per message ``"<Role>: " + content`` and a newline, an
assistant's content ending in eos instead of the newline; the assistant's content and eos are
trained on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .config import ConfigError

ROLES = ("system", "user", "assistant")
IGNORE = -100
_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


# ---------------------------------------------------------------------------- rows

def _row_error(path: Path, line: int, field: str, problem: str) -> ValueError:
    return ValueError(f"{path}:{line}: {field}: {problem}")


def validate_conversation(row, path: Path, line: int) -> list[dict]:
    """The row's messages, checked: a list of {role, content} with roles system, user or
    assistant, string contents and at least one assistant message.

    Raises:
        ValueError: naming the file, the line and the field (``messages[2].role``).
    """
    if not isinstance(row, dict) or "messages" not in row:
        raise _row_error(path, line, "messages", "missing: a chat row is {\"messages\": [{\"role\": ..., \"content\": ...}]}")
    messages = row["messages"]
    if not isinstance(messages, list) or not messages:
        raise _row_error(path, line, "messages", "expected a non-empty list of {role, content}")
    for k, m in enumerate(messages):
        if not isinstance(m, dict):
            raise _row_error(path, line, f"messages[{k}]", "expected an object {role, content}")
        if m.get("role") not in ROLES:
            raise _row_error(path, line, f"messages[{k}].role",
                             f"expected system, user or assistant, got {json.dumps(m.get('role'))}")
        if not isinstance(m.get("content"), str):
            raise _row_error(path, line, f"messages[{k}].content", "expected a string")
    if not any(m["role"] == "assistant" for m in messages):
        raise _row_error(path, line, "messages", "no assistant message: nothing to train on")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def load_conversations(path: Path) -> list[list[dict]]:
    """The conversations of a chat ``.jsonl`` (one per non-empty line), each validated."""
    out = []
    for line, text in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            raise _row_error(path, line, "row", f"not valid JSON ({e.msg})") from e
        out.append(validate_conversation(row, path, line))
    if not out:
        raise ValueError(f"{path}: no conversations")
    return out


# ---------------------------------------------------------------------------- tokens and labels

def byte_chat_tokens(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """The built-in byte tokenizer's chat format (module docstring): (ids, labels)."""
    ids, labels = [tokenizer.bos_token_id], [IGNORE]
    for m in messages:
        header = tokenizer.encode(f"{m['role'].capitalize()}: ")
        body = tokenizer.encode(m["content"])
        end = [tokenizer.eos_token_id] if m["role"] == "assistant" else tokenizer.encode("\n")
        ids += header + body + end
        labels += [IGNORE] * len(header) + (body + end if m["role"] == "assistant" else [IGNORE] * (len(body) + len(end)))
    return ids, labels


def _render(tok, messages: list[dict], generation_prompt: bool) -> str:
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_spans(tok, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of the assistant's replies, by
    rendering prefixes (module docstring, 2).

    Raises:
        ConfigError: the template does not render the conversation prefix by prefix.
    """
    full = _render(tok, messages, False)
    spans = []
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = _render(tok, messages[:k], True) if k else ""
        after = _render(tok, messages[:k + 1], False)
        if not (after.startswith(before) and full.startswith(after)):
            raise ConfigError(
                "data.format chat: this tokenizer's chat template does not render a conversation prefix by "
                "prefix (it changes earlier turns when later ones are added), so the assistant's tokens cannot be "
                "found; give it a template that marks them with {% generation %} ... {% endgeneration %}")
        spans.append((len(before), len(after)))
    return full, spans


def hf_chat_tokens(tok, messages: list[dict]) -> tuple[list[int], list[int]]:
    """(ids, labels) of a conversation through a transformers tokenizer's chat template."""
    if _GENERATION_TAG.search(tok.chat_template):
        out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        ids = list(out["input_ids"])
        return ids, [i if a else IGNORE for i, a in zip(ids, out["assistant_masks"])]
    full, spans = assistant_spans(tok, messages)
    enc = tok(full, add_special_tokens=False, return_offsets_mapping=True)
    labels = [i if any(start < e and end > s for s, e in spans) else IGNORE
              for i, (start, end) in zip(enc["input_ids"], enc["offset_mapping"])]
    return list(enc["input_ids"]), labels


def chat_tokens_for(tokenizer, source: str):
    """A function messages -> (ids, labels) for the run's tokenizer adapter (tokenizer.py).

    Raises:
        ConfigError: an ``hf:`` tokenizer without a chat template, naming the fix.
    """
    tok = getattr(tokenizer, "tok", None)
    if tok is None:  # the built-in byte tokenizer
        return lambda messages: byte_chat_tokens(tokenizer, messages)
    if not getattr(tok, "chat_template", None):
        raise ConfigError(
            f"data.format chat: the tokenizer of {source} has no chat template. Give the model folder one "
            "(tokenizer.chat_template: \"chat_template\" in tokenizer_config.json, or a chat_template.jinja "
            "file) or use data.format: instruction")
    if not getattr(tok, "is_fast", False):
        raise ConfigError(f"data.format chat: the tokenizer of {source} is not a fast tokenizer (no character "
                          "offsets to find the assistant's tokens); save it with tokenizers' fast format")
    return lambda messages: hf_chat_tokens(tok, messages)


# ---------------------------------------------------------------------------- rows

def chat_rows(conversations: list[list[dict]], tokenizer, seq_len: int) -> list[tuple[list[int], list[int]]]:
    """(ids, labels) rows of seq_len + 1 tokens for InstructionBatches.from_rows: labels -100
    outside the assistant's replies, right-padded (labels -100). A conversation longer than that
    is cut at the end; one left with no assistant token is dropped.

    Raises:
        ConfigError: an hf: tokenizer without a chat template (chat_tokens_for).
        ValueError: no conversation has an assistant token within seq_len.
    """
    tokens = chat_tokens_for(tokenizer, getattr(tokenizer, "name", "the model"))
    rows = []
    for messages in conversations:
        ids, labels = tokens(messages)
        ids, labels = ids[:seq_len + 1], labels[:seq_len + 1]
        if all(label == IGNORE for label in labels[1:]):
            continue  # its replies start beyond seq_len: nothing to learn from it
        pad = seq_len + 1 - len(ids)
        rows.append((ids + [tokenizer.pad_token_id] * pad, labels + [IGNORE] * pad))
    if not rows:
        raise ValueError(f"data.train: no conversation has an assistant token within data.seq_len {seq_len}")
    return rows
