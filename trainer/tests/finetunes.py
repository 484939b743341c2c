"""Finetunes made the way other tools make them, offline: tiny transformers bases saved with
save_pretrained (Llama, Qwen2, GPT-2) with a byte-level BPE tokenizer trained here, PEFT adapters
from get_peft_model + save_pretrained (LoRA, rsLoRA, DoRA, embeddings), full checkpoints from
save_pretrained with a small max_shard_size; and the independent reference: numpy's SVD of the
dense ΔW, computed from the saved files without any of the trainer's code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file as load_np

LINES = ["def add(a, b):\n    return a + b\n", "The quick brown fox jumps over the lazy dog.\n",
         "class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n"]


def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(LINES * 4, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "</s>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def model_for(arch: str, vocab: int, hidden: int = 32, seed: int = 0):
    """A tiny random causal LM: llama | qwen2 | gpt2."""
    import transformers as T
    torch.manual_seed(seed)
    ids = dict(bos_token_id=0, eos_token_id=1, pad_token_id=2)
    if arch == "gpt2":
        return T.GPT2LMHeadModel(T.GPT2Config(vocab_size=vocab, n_embd=hidden, n_layer=2, n_head=2, n_positions=128, **ids))
    cls, cfg = (T.Qwen2ForCausalLM, T.Qwen2Config) if arch == "qwen2" else (T.LlamaForCausalLM, T.LlamaConfig)
    return cls(cfg(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                   num_attention_heads=2, num_key_value_heads=2 if arch == "llama" else 1, max_position_embeddings=128, **ids))


def base_folder(root: Path, arch: str = "llama", hidden: int = 32, seed: int = 0) -> Path:
    """hf:<folder> as a user has it: config, weights and tokenizer saved with save_pretrained."""
    folder = root / f"base-{arch}-{hidden}-{seed}"
    if not (folder / "config.json").exists():
        tok = tokenizer()
        tok.save_pretrained(folder)
        model_for(arch, len(tok), hidden, seed).save_pretrained(folder)
    return folder


def load(folder: Path):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)


def make_adapter(base: Path, out: Path, seed: int = 1, scale: float = 0.3, **lora) -> Path:
    """PEFT's get_peft_model + save_pretrained, with B moved off zero as training would."""
    import peft
    torch.manual_seed(seed)
    cfg = dict(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0) | lora
    model = peft.get_peft_model(load(base), peft.LoraConfig(**cfg))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.add_(scale * torch.randn_like(p))
    model.save_pretrained(out)
    return out


def make_full(base: Path, out: Path, seed: int = 2, max_shard_size: str = "30KB", skip: tuple[str, ...] = ()) -> Path:
    """A full finetune saved with transformers' save_pretrained, sharded (index + shards)."""
    model = load(base)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() == 2 and not any(s in n for s in skip):
                p.add_(0.02 * torch.randn(p.shape, generator=g))
    model.save_pretrained(out, max_shard_size=max_shard_size)
    return out


# ----------------------------------------------------------------------------- the reference

def base_tensors(folder: Path) -> dict[str, np.ndarray]:
    """Every tensor of a saved model, from its safetensors files (one or shards), as float64."""
    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out |= {k: v.astype(np.float64) for k, v in load_np(str(f)).items()}
    return out


def reference(w_base: np.ndarray, w_tuned: np.ndarray, k: int = 10, eps: float = 0.5) -> dict:
    """Singular values, rank90 and intruders of W_tuned against W_base ([out, in]), in float64 numpy:
    Biderman et al.'s rank90 and Shuttleworth et al.'s intruders, from their definitions."""
    s = np.linalg.svd(w_tuned - w_base, compute_uv=False)
    energy = np.cumsum(s ** 2)
    rank90 = int(np.searchsorted(energy, 0.9 * energy[-1] * (1 - 1e-12)) + 1) if energy[-1] > 0 else 0
    u_base = np.linalg.svd(w_base, full_matrices=False)[0]
    u_tuned = np.linalg.svd(w_tuned, full_matrices=False)[0][:, :k]
    intruders = int((np.abs(u_tuned.T @ u_base).max(axis=1) < eps).sum())
    return {"sv": s, "rank90": rank90, "intruders": intruders, "energy": float(energy[-1])}


def lora_delta(adapter: Path, module: str) -> np.ndarray:
    """ΔW [out, in] = s·B·A of one module, straight from adapter_model.safetensors and
    adapter_config.json (s = alpha/r, or alpha/√r with use_rslora)."""
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    w = load_np(str(adapter / "adapter_model.safetensors"))
    a = w[f"base_model.model.{module}.lora_A.weight"].astype(np.float64)
    b = w[f"base_model.model.{module}.lora_B.weight"].astype(np.float64)
    r = a.shape[0]
    scale = cfg["lora_alpha"] / (np.sqrt(r) if cfg.get("use_rslora") else r)
    return scale * b @ a
