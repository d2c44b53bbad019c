"""What both masking paths share: the full pass and the weight-decay exemptions."""

from __future__ import annotations

import torch
from torch import nn


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
