"""Tokenizers behind one small interface: encode/decode and the special token ids.

The built-in models use bytes (no vocabulary file, no download): ids 0..255 are the UTF-8
bytes, then bos, eos, pad. ``hf:`` models keep their own tokenizer behind the same interface.
Both also give a transformers tokenizer (``hf()``) for libraries that drive one themselves,
such as lm-evaluation-harness (its HFLM accepts only a PreTrainedTokenizer(Fast)).
"""

from __future__ import annotations

from functools import lru_cache

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

    def hf(self):
        """The same vocabulary as a transformers tokenizer (``byte_level_hf_tokenizer``)."""
        return byte_level_hf_tokenizer()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map, which the `tokenizers` ByteLevel
    pre-tokenizer and decoder use (github.com/openai/gpt-2, src/encoder.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) \
        + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return dict(zip(bs, map(chr, cs)))


@lru_cache(maxsize=1)
def byte_level_hf_tokenizer():
    """ByteTokenizer's vocabulary as a ``PreTrainedTokenizerFast``: ids 0..255 are the bytes, 256
    ``<bos>``, 257 ``<eos>``, 258 ``<pad>`` (a BPE over the 256 byte symbols with no merges).

    ``encode(text)`` is ``[bos] + list(text.encode("utf-8"))``: a bos first, as Llama's tokenizer
    adds one and as instruction training starts each example (data.InstructionBatches).
    ``<eos>`` written in a text stays five bytes (split_special_tokens), as ByteTokenizer does.

    Returns:
        transformers.PreTrainedTokenizerFast: shared; do not mutate.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    b2u = _bytes_to_unicode()
    core = Tokenizer(models.BPE(vocab={b2u[b]: b for b in range(256)}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>",
                                  pad_token="<pad>", split_special_tokens=True, name_or_path="finetune-lab-bytes")
    assert tok.convert_tokens_to_ids(["<bos>", "<eos>", "<pad>"]) == [ByteTokenizer.bos_token_id,
                                                                      ByteTokenizer.eos_token_id,
                                                                      ByteTokenizer.pad_token_id]
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", ByteTokenizer.bos_token_id)])
    tok.add_bos_token = True
    return tok


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

    def hf(self):
        """The transformers tokenizer itself."""
        return self.tok
