"""Optimizers and the learning-rate schedule."""

from __future__ import annotations

import math

import torch


def get_lr(step: int, peak_lr: float, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Learning rate for optimizer step ``step`` (0-based), nanoGPT-style.

    1) linear warmup for ``warmup_steps`` steps;
    2) then ``constant``: peak; ``cosine``: down to 10% of peak at the last step;
       ``inverse_sqrt``: peak * sqrt(warmup / step) (as in the original Transformer).
    """
    if step < warmup_steps:  # 1) warmup
        return peak_lr * (step + 1) / (warmup_steps + 1)
    if schedule == "constant":  # 2)
        return peak_lr
    if schedule == "inverse_sqrt":
        return peak_lr * math.sqrt(max(warmup_steps, 1) / max(step, 1)) if step >= max(warmup_steps, 1) else peak_lr
    if schedule == "cosine":
        min_lr = 0.1 * peak_lr
        ratio = (step - warmup_steps) / max(1, total_steps - 1 - warmup_steps)
        coeff = 0.5 * (1.0 + math.cos(math.pi * min(1.0, ratio)))  # 1 -> 0
        return min_lr + coeff * (peak_lr - min_lr)
    raise ValueError(f"unknown schedule '{schedule}'")


class Lion(torch.optim.Optimizer):
    """Lion: the sign of an interpolated momentum (Chen et al. 2023, "Symbolic Discovery of
    Optimization Algorithms", arXiv 2302.06675, Algorithm 1).

        c = sign(beta1 * m + (1 - beta1) * g);  p -= lr * (c + wd * p);  m = beta2 * m + (1 - beta2) * g

    The paper suggests an LR 3-10x smaller than AdamW's (the update has unit magnitude).
    """

    def __init__(self, params, lr: float = 1e-4, betas=(0.9, 0.99), weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                update = (m * beta1 + p.grad * (1 - beta1)).sign_()
                p.mul_(1 - group["lr"] * group["weight_decay"]).add_(update, alpha=-group["lr"])
                m.mul_(beta2).add_(p.grad, alpha=1 - beta2)
        return loss


def build_optimizer(params, name: str, lr: float, weight_decay: float, device: torch.device):
    """AdamW (fused kernels on CUDA) or Lion over the trainable ``params``."""
    params = [p for p in params if p.requires_grad]
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=device.type == "cuda")
    if name == "lion":
        return Lion(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer '{name}'")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
