"""Random-weight Hugging Face models built from a config, no download: a folder that
``model.base: hf:<folder>`` loads exactly as it loads a user's model (config.json, weights,
tokenizer). The tests train tiny ones of each architecture family; the benchmarks build ~100M
and ~1B Llama configs.

The tokenizer is a byte-level BPE trained offline with the ``tokenizers`` library on a few
texts, wrapped in transformers' PreTrainedTokenizerFast. The model's vocabulary may be larger
than the tokenizer's (a benchmark wants Llama 3's 128,256-row embedding and head): ids the
tokenizer never produces are simply never seen.
"""

from __future__ import annotations

from pathlib import Path

import torch

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}

# Tiny configs per architecture family (AutoConfig.for_model's names). Phi-3 fuses q/k/v and
# gate/up into one matrix each; GPT-2 stores its matrices as Conv1D ([in, out]); GPT-NeoX fuses
# query_key_value; Gemma ties the head to the embeddings.
TINY = {
    "llama": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=2, max_position_embeddings=128),
    "qwen2": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, max_position_embeddings=128),
    "gemma": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=16, max_position_embeddings=128),
    "phi3": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=2, max_position_embeddings=128),
    "gpt2": dict(n_embd=32, n_layer=2, n_head=2, n_positions=128),
    "gpt_neox": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                     max_position_embeddings=128),
}

# Llama shapes for the benchmarks. "1b" is Llama-3.2-1B's (1.24B parameters with its 128,256
# vocabulary and tied embeddings); "100m" a GPT-2-small-sized Llama (100M parameters with a 32,000 vocabulary, tied).
LLAMA_SIZES = {
    "100m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=4, max_position_embeddings=4096, vocab_size=32000, tie_word_embeddings=True),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, max_position_embeddings=8192, vocab_size=128256, tie_word_embeddings=True,
               rope_theta=500000.0),
}


def train_tokenizer(texts: list[str], vocab_size: int = 300):
    """A byte-level BPE tokenizer trained on ``texts``, as a PreTrainedTokenizerFast with
    <s>, </s> and <pad> (ids 0, 1, 2)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, **SPECIAL)


def write_random_model(folder: Path | str, kind: str, tokenizer, seed: int = 0, dtype: torch.dtype = torch.float32,
                       device: str = "cpu", **config) -> Path:
    """Save a randomly initialised ``kind`` causal LM and ``tokenizer`` into ``folder``.

    Args:
        folder (Path | str): created if missing.
        kind (str): a transformers model type (llama, qwen2, gemma, phi3, gpt2, gpt_neox, ...).
        tokenizer: a PreTrainedTokenizerFast (``train_tokenizer``).
        seed (int): seeds the weights.
        dtype (torch.dtype): the dtype saved.
        device (str): where to initialise (a 1B model initialises in seconds on a GPU).
        **config: the config's fields (``TINY[kind]`` or ``LLAMA_SIZES[size]``); vocab_size
            defaults to the tokenizer's.

    Returns:
        Path: the folder.
    """
    from transformers import AutoConfig, AutoModelForCausalLM
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = {f"{name}_id": tokenizer.convert_tokens_to_ids(tok) for name, tok in SPECIAL.items()}
    cfg = AutoConfig.for_model(kind, **{"vocab_size": len(tokenizer), **ids, **config})
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
