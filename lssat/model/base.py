"""What both masking paths share: the full pass, the weight-decay exemptions, and BatchNorm
running statistics frozen during the masked pass."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batchnorms(module: nn.Module) -> list[_BatchNorm]:
    """Every BatchNorm layer of ``module`` (a hybrid ViT's CNN stem, a CNN)."""
    return [m for m in module.modules() if isinstance(m, _BatchNorm)]


@contextmanager
def frozen_bn_stats(modules: list[_BatchNorm]) -> Iterator[None]:
    """Batch statistics still normalise, but running statistics (mean, var and
    ``num_batches_tracked``) are not updated: the masked pass's mostly zeroed images never
    shape the statistics used at evaluation."""
    saved = [(m.momentum, _clone(m.num_batches_tracked)) for m in modules]
    for m in modules:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(modules, saved, strict=True):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def _clone(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().clone()


class MaskedNet(nn.Module):
    """Base of :class:`~lssat.model.vit.ViTMAE` and :class:`~lssat.model.dense.DenseMAE`.

    Subclasses set ``encoder`` (a timm model) and ``decoder`` (with a ``mask_token``, or None
    when there is no auxiliary task) and add their own ``masked`` pass.
    """

    encoder: nn.Module
    decoder: nn.Module | None

    def full(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> logits ``[B, K]``."""
        return self.encoder.forward_head(self.encoder.forward_features(x))

    def no_weight_decay(self) -> set[str]:
        """Parameter names (relative to this module) exempt from weight decay."""
        names = {f"encoder.{n}" for n in getattr(self.encoder, "no_weight_decay", set)()}
        if self.decoder is not None:
            names.add("decoder.mask_token")
        return names
