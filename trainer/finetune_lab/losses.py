"""The language-modelling loss, one definition for training, pretraining and evals."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # targets with this value are not scored (prompt and padding positions)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy in nats, computed in fp32 (bf16 logits are upcast first, so the
    log-softmax over the vocabulary does not lose precision).

    Args:
        logits (torch.Tensor): [batch, seq, vocab], any float dtype; position t predicts
            ``targets[:, t]``.
        targets (torch.Tensor): [batch, seq] int64 token ids, ``IGNORE_INDEX`` (-100) where a
            position is not scored.
        reduction (str): ``"mean"`` over the scored targets, ``"sum"``, or ``"none"``.

    Returns:
        torch.Tensor: a scalar for ``"mean"`` / ``"sum"``; [batch, seq] for ``"none"`` (0 at
        ignored positions). fp32.
    """
    nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1),
                          ignore_index=IGNORE_INDEX, reduction=reduction)
    return nll.view(targets.shape) if reduction == "none" else nll
