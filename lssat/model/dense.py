"""Dense (CNN / hierarchical) path: ConvNeXt-V2-style masking on the patch grid, simplified.

The masked pass zeroes the removed patches of the input and re-applies the mask after every
stage whose map is a whole multiple of the patch grid (stride <= patch size); coarser stages
mix visible and removed patches and are left alone. Unlike ConvNeXt-V2 (mask before and after
every convolution) activations spread into removed positions within a stage, and BatchNorm
batch statistics include the zeroed positions; its running statistics are frozen during the
masked pass, so only full, unmasked images shape the statistics used at evaluation. Because
the input's removed pixels are zeroed first, every activation is still a function of the
visible pixels only (``tests/test_no_leak.py``); see ``docs/model.md``.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.convnext import ConvNeXtBlock
from torch import nn

from lssat.masking import PatchMask, mask_to_grid, upsample_mask
from lssat.model.backbone import Backbone
from lssat.model.base import MaskedNet, batchnorms, frozen_bn_stats

__all__ = ["ConvDecoder", "DenseMAE", "frozen_bn_stats"]


class ConvDecoder(nn.Module):
    """Light conv decoder: final features ``[B, C, h, w]`` -> ``[B, L, out_dim]`` on the grid.

    1x1 projection (with pixel-shuffle up-sampling when the grid is an integer multiple of the
    map, else interpolation), mask tokens at removed patches, ``depth`` ConvNeXt blocks, 1x1
    prediction.
    """

    def __init__(
        self,
        in_chs: int,
        dim: int,
        depth: int,
        feat_size: tuple[int, int],
        grid: tuple[int, int],
        out_dim: int,
    ) -> None:
        super().__init__()
        self.grid = grid
        scale = grid[0] // feat_size[0] if grid[0] % feat_size[0] == 0 else 0
        self.shuffle = scale if scale > 1 and grid[1] == feat_size[1] * scale else 1
        self.proj = nn.Conv2d(in_chs, dim * self.shuffle**2, 1)
        self.mask_token = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.blocks = nn.Sequential(
            *[ConvNeXtBlock(dim, kernel_size=7, ls_init_value=None) for _ in range(depth)]
        )
        self.pred = nn.Conv2d(dim, out_dim, 1)
        trunc_normal_(self.mask_token, std=0.02)

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``feats`` ``[B, C, h, w]``, ``mask`` ``[B, L]`` (1 = removed) -> ``[B, L, out_dim]``."""
        x = self.proj(feats)
        if self.shuffle > 1:
            x = F.pixel_shuffle(x, self.shuffle)
        elif tuple(x.shape[-2:]) != self.grid:
            x = F.interpolate(x, size=self.grid, mode="bilinear", align_corners=False)
        m = mask_to_grid(mask, self.grid).to(x.dtype)
        x = x * (1 - m) + self.mask_token.to(x.dtype) * m
        x = self.pred(self.blocks(x))
        return x.flatten(2).transpose(1, 2)


class DenseMAE(MaskedNet):
    """A timm CNN (or NHWC hierarchical model) with a dense masked pass and its full pass."""

    def __init__(
        self,
        backbone: Backbone,
        grid: tuple[int, int],
        target_dim: int | None,
        decoder_dim: int,
        decoder_depth: int,
    ) -> None:
        super().__init__()
        self.encoder = backbone.model
        self.grid = grid
        self.final_channels_last = backbone.final_channels_last
        self._mask: torch.Tensor | None = None  # [B, L] (1 = removed) while the masked pass runs
        self.masked_stages: list[str] = []
        for st in backbone.stages:
            h, w = st.size
            if h >= grid[0] and w >= grid[1] and h % grid[0] == 0 and w % grid[1] == 0:
                module = self.encoder.get_submodule(st.module)
                module.register_forward_hook(partial(self._stage_hook, st.channels_last))
                self.masked_stages.append(st.module)
        self._bns = batchnorms(self.encoder)
        self.decoder = (
            ConvDecoder(
                int(self.encoder.num_features),
                decoder_dim,
                decoder_depth,
                backbone.final_size,
                grid,
                target_dim,
            )
            if target_dim
            else None
        )

    def _stage_hook(
        self, channels_last: bool, _module: nn.Module, _inp: object, out: torch.Tensor
    ) -> torch.Tensor | None:
        if self._mask is None:
            return None
        h, w = (out.shape[1], out.shape[2]) if channels_last else (out.shape[2], out.shape[3])
        keep = (1.0 - upsample_mask(self._mask, self.grid, (h, w))).to(out.dtype)
        if channels_last:
            keep = keep.permute(0, 2, 3, 1)
        return out * keep

    def masked(self, x: torch.Tensor, pm: PatchMask) -> torch.Tensor:
        """``[B, 3, H, W]`` and a mask -> per-patch prediction ``[B, L, D]``."""
        x = x * (1.0 - upsample_mask(pm.mask, self.grid, tuple(x.shape[-2:]))).to(x.dtype)
        self._mask = pm.mask
        try:
            with frozen_bn_stats(self._bns):
                feats = self.encoder.forward_features(x)
        finally:
            self._mask = None
        if self.final_channels_last:
            feats = feats.permute(0, 3, 1, 2)
        return self.decoder(feats, pm.mask)
