"""Tokenizers behind one small interface: encode/decode and the special token ids.

The built-in models use bytes (no vocabulary file, no download): ids 0..255 are the UTF-8
bytes, then bos, eos, pad. ``hf:`` models keep their own tokenizer behind the same interface.
"""

from __future__ import annotations

import numpy as np


class ByteTokenizer:
    """UTF-8 bytes plus three special tokens. vocab_size = 259."""

    bos_token_id = 256
    eos_token_id = 257
    pad_token_id = 258
    vocab_size = 259
    name = "bytes"

    def encode(self, text: str) -> list[int]:
        """Text -> token ids (no special tokens added)."""
        return list(text.encode("utf-8"))

    def encode_array(self, text: str) -> np.ndarray:
        """Fast path for long texts: uint8 bytes as an int32 array."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)

    def decode(self, ids) -> str:
        """Token ids -> text; special tokens dropped, invalid UTF-8 replaced."""
        return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode("utf-8", errors="replace")


class HFTokenizer:
    """Adapter giving a transformers tokenizer the ByteTokenizer interface."""

    def __init__(self, tok):
        self.tok = tok
        self.name = getattr(tok, "name_or_path", "hf")
        self.eos_token_id = tok.eos_token_id
        self.bos_token_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        self.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.vocab_size = len(tok)

    def encode(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def encode_array(self, text: str) -> np.ndarray:
        return np.asarray(self.encode(text), dtype=np.int32)

    def decode(self, ids) -> str:
        return self.tok.decode([int(i) for i in ids], skip_special_tokens=True)
