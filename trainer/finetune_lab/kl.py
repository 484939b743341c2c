"""Eval type ``kl_to_base``: how far the model's next-token distribution has moved from the
base model's, a forgetting signal that needs no labelled benchmark. "RL's Razor" (Shenfeld et
al. 2025, arXiv 2509.04259) found this KL on held-out data predicts forgetting.

Value: mean over the tokens of ``n`` held-out windows (``seq_len`` tokens each, packed as the
loss eval packs text) of KL(p_base || p_tuned) in nats, lower is better, 0 at step 0.

- LoRA: p_base is the same model with its adapters disabled (PEFT's ``disable_adapter()``):
  exact, and no second copy of the model.
- Full finetuning: the base's weights are gone after the first update, so its log-probabilities
  are cached when the base is seen (step 0, or ``remember_base``): the ``top_k`` most likely
  tokens per position and one bucket holding the rest of the mass. The KL is then taken between
  the two distributions coarsened to those k + 1 outcomes, which by the data-processing
  inequality is a lower bound on the true KL; it is exact where the vocabulary has at most k
  tokens. The event says which (``approximation``).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

EVAL_BATCH_TOKENS = 8192  # rows per forward = this // seq_len: bounds the [B, T, V] logits


def _autocast(device):
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def uses_adapters(model) -> bool:
    """A PEFT model whose adapters can be switched off for the base's distribution."""
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def coarse_kl(base_logp: torch.Tensor, base_idx: torch.Tensor, tuned_logp: torch.Tensor) -> torch.Tensor:
    """KL between the base's top-k + tail distribution and the tuned model's on the same k + 1
    outcomes, per position.

    Args:
        base_logp (torch.Tensor): (N, k) the base's log-probabilities of its k likeliest tokens.
        base_idx (torch.Tensor): (N, k) those tokens' ids.
        tuned_logp (torch.Tensor): (N, V) the tuned model's log-probabilities.

    Returns:
        torch.Tensor: (N,) KL in nats, clamped at 0 (rounding can make it -1e-9).
    """
    t = tuned_logp.gather(1, base_idx)  # (N, k)
    pb = base_logp.exp()
    tail_b = (1 - pb.sum(1)).clamp_min(0)
    tail_t = (1 - t.exp().sum(1)).clamp_min(1e-30)
    head = (pb * (base_logp - t)).sum(1)
    tail = torch.where(tail_b > 0, tail_b * (tail_b.clamp_min(1e-30).log() - tail_t.log()), torch.zeros_like(tail_b))
    return (head + tail).clamp_min(0)


class KlToBase:
    """One ``kl_to_base`` eval.

    Args:
        windows (list[list[int]]): token windows (seq_len tokens each) of the eval's data.
        top_k (int): tokens per position kept of the base's distribution (full finetuning).
    """

    def __init__(self, windows: list[list[int]], top_k: int = 32):
        self.x = torch.tensor(windows, dtype=torch.long)  # (n, T)
        self.top_k = int(top_k)
        self.cache: tuple[torch.Tensor, torch.Tensor] | None = None  # base top-k (logp, idx), on CPU

    def _batches(self):
        rows = max(1, EVAL_BATCH_TOKENS // self.x.shape[1])
        for b in range(0, self.x.shape[0], rows):
            yield b, self.x[b: b + rows]

    @staticmethod
    def _logp(model, x: torch.Tensor, device) -> torch.Tensor:
        with _autocast(device):
            logits = model(input_ids=x.to(device), use_cache=False).logits
        return torch.log_softmax(logits.float(), dim=-1).flatten(0, 1)  # (B*T, V)

    def remember_base(self, model, device) -> None:
        """Cache the base's top-k log-probabilities (full finetuning; ``model`` must be the base).
        A LoRA model needs none: its base is one ``disable_adapter()`` away."""
        if uses_adapters(model):
            return
        logps, idxs = [], []
        with torch.inference_mode():
            for _, x in self._batches():
                lp = self._logp(model, x, device)
                k = min(self.top_k, lp.shape[-1])
                v, i = lp.topk(k, dim=-1)
                logps.append(v.cpu())
                idxs.append(i.cpu())
        self.cache = (torch.cat(logps), torch.cat(idxs))

    def score(self, model, device) -> dict:
        """Mean per-token KL(p_base || p_tuned) of ``model`` (the first call caches the base when
        nothing was cached: the evaluator's first model is the base).

        Returns:
            dict: {metric: "kl", value, higher_is_better: False, n, tokens, approximation}.
        """
        lora = uses_adapters(model)
        if not lora and self.cache is None:
            self.remember_base(model, device)
        total, tokens, start = 0.0, 0, 0
        for _, x in self._batches():
            tuned = self._logp(model, x, device)
            if lora:
                with model.disable_adapter():
                    base = self._logp(model, x, device)
                kl = (base.exp() * (base - tuned)).sum(-1).clamp_min(0)
            else:
                v, i = self.cache
                rows = slice(start, start + tuned.shape[0])
                kl = coarse_kl(v[rows].to(tuned.device), i[rows].to(tuned.device), tuned)
            start += tuned.shape[0]
            total += float(kl.sum())
            tokens += kl.numel()
        vocab = int(self.cache[1].shape[1]) if self.cache is not None else None
        if lora:
            approx = "exact: the base is the same model with its LoRA adapters disabled"
        elif vocab is not None and vocab >= self._vocab(model):
            approx = "exact: the cached base distribution covers the whole vocabulary"
        else:
            mass = float(self.cache[0].exp().sum(1).mean())
            approx = (f"lower bound: the base's top-{self.top_k} log-probabilities per token, cached at step 0, "
                      "and one bucket for the rest of its mass (KL between the coarsened distributions); "
                      f"the top {self.top_k} held {mass:.0%} of the base's probability on average")
        return {"metric": "kl", "value": total / max(1, tokens), "higher_is_better": False,
                "n": int(self.x.shape[0]), "tokens": tokens, "approximation": approx}

    @staticmethod
    def _vocab(model) -> int:
        cfg = getattr(model, "config", None)
        return int(getattr(cfg, "vocab_size", 0) or 0) or 1 << 30
