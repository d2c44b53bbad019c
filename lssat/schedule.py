"""Per-iteration learning-rate schedule: linear warm-up, then cosine decay to ``min_lr``."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


class WarmupCosine:
    """LR multiplier for optimiser step ``t`` (0-based), picklable and state-dict friendly.

    ``(t + 1) / warmup`` during the ``warmup`` steps, then a half cosine from 1 down to
    ``min_factor`` at ``total`` steps.
    """

    def __init__(self, warmup: int, total: int, min_factor: float) -> None:
        self.warmup = int(warmup)
        self.total = max(int(total), 1)
        self.min_factor = float(min_factor)

    def __call__(self, t: int) -> float:
        if t < self.warmup:
            return (t + 1) / self.warmup
        span = max(self.total - self.warmup, 1)
        progress = min((t - self.warmup) / span, 1.0)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_factor + (1.0 - self.min_factor) * cosine


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, lr: float, min_lr: float
) -> LambdaLR:
    """A ``LambdaLR`` stepping once per optimiser step; ``min_lr`` is absolute."""
    min_factor = min(min_lr / lr, 1.0) if lr > 0 else 0.0
    warmup = min(max(int(warmup_steps), 0), total_steps)
    return LambdaLR(optimizer, WarmupCosine(warmup, total_steps, min_factor))
