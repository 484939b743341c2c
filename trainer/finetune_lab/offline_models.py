"""Hugging Face model folders built offline (no download): a byte-level BPE tokenizer trained with
the ``tokenizers`` library on a few lines, and a randomly initialised causal LM from a config.
Saved with ``save_pretrained``, such a folder loads as ``hf:<folder>`` exactly like a user's
model. Used by the tests (tiny models of six architecture families) and the memory and speed
benchmarks (~100M and ~1B Llama configs). The model's vocabulary may be larger than the
tokenizer's (a benchmark wants Llama 3's 128,256-row embedding): ids the tokenizer never produces
are simply never seen.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_TEXT = [
    "def add(a, b):\n    return a + b\n",
    "The quick brown fox jumps over the lazy dog.\n",
    "Question: What is 2 + 3?\nAnswer: 2 + 3 = 5.\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n",
]


def byte_bpe_tokenizer(texts: list[str] | None = None, vocab_size: int = 300, chat_template: str | None = None,
                       extra_special: list[str] | None = None):
    """A PreTrainedTokenizerFast over a byte-level BPE trained on ``texts``, with bos ``<s>``,
    eos ``</s>`` and pad ``<pad>`` (ids 0, 1, 2), then ``extra_special`` tokens (e.g. ChatML's
    ``<|im_start|>``, ``<|im_end|>``), and ``chat_template`` when given."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator((texts or SAMPLE_TEXT) * 4, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "</s>", "<pad>", *(extra_special or [])],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                  additional_special_tokens=list(extra_special or []))
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok


def save_model_folder(folder: Path | str, model_type: str = "llama", tokenizer=None, seed: int = 0,
                      weights: bool = True, dtype=None, device: str = "cpu", **config) -> Path:
    """Write ``folder`` with config.json, the tokenizer's files and (``weights``) random weights.

    Args:
        folder: where to write (created).
        model_type: a transformers architecture name (llama, qwen2, gpt2, ...).
        tokenizer: a tokenizer to save beside the model (default: byte_bpe_tokenizer()).
        seed: seeds the random initialisation.
        weights: False writes config.json and the tokenizer only (enough for the estimate).
        dtype: the weights' dtype (default fp32).
        device: where to initialise them (a 1B model initialises in seconds on a GPU).
        **config: the architecture's config fields (hidden_size, num_hidden_layers, ...);
            vocab_size defaults to the tokenizer's size.

    Returns:
        Path: the folder.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = tokenizer or byte_bpe_tokenizer()
    tok.save_pretrained(folder)
    config.setdefault("vocab_size", len(tok))
    cfg = AutoConfig.for_model(model_type, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                               pad_token_id=tok.pad_token_id, **config)
    if not weights:
        cfg.save_pretrained(folder)
        return folder
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype or torch.float32)
    model.save_pretrained(folder)
    return folder
