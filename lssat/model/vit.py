"""ViT path: true MAE (visible tokens only through the encoder, a light transformer decoder).

Removed patches are zeroed before ``patch_embed``, so a hybrid ViT's CNN stem sees zeros there,
never the removed pixels; a BatchNorm stem's running statistics are frozen during the masked pass
(as on the dense path), so only full images shape the statistics used at evaluation.
"""

from __future__ import annotations

import torch
from timm.layers import build_sincos2d_pos_embed, trunc_normal_
from timm.models import checkpoint_seq
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from lssat.masking import PatchMask, gather_tokens, upsample_mask
from lssat.model.base import MaskedNet, batchnorms, frozen_bn_stats


class TransformerDecoder(nn.Module):
    """MAE decoder: embed visible tokens, insert mask tokens, add fixed 2-D sin-cos positions,
    ``depth`` timm ``Block``s, predict ``out_dim`` values per patch.

    Input ``[B, P + Lk, E]`` (P prefix tokens kept from the encoder), ``ids_restore`` ``[B, L]``;
    output ``[B, L, out_dim]`` in row-major patch order.
    """

    def __init__(
        self,
        in_dim: int,
        dim: int,
        depth: int,
        heads: int,
        grid: tuple[int, int],
        num_prefix: int,
        out_dim: int,
    ) -> None:
        super().__init__()
        self.num_prefix = num_prefix
        self.embed = nn.Linear(in_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        pos = build_sincos2d_pos_embed(list(grid), dim=dim)  # [L, dim]
        pos = torch.cat([torch.zeros(num_prefix, dim), pos], 0).unsqueeze(0)
        self.register_buffer("pos_embed", pos, persistent=False)  # [1, P + L, dim]
        self.blocks = nn.Sequential(
            *[Block(dim, heads, mlp_ratio=4.0, qkv_bias=True) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(dim)
        self.pred = nn.Linear(dim, out_dim)
        trunc_normal_(self.mask_token, std=0.02)
        self.apply(_init_linear)

    def forward(self, x: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        prefix, visible = x[:, : self.num_prefix], x[:, self.num_prefix :]
        b, num = ids_restore.shape
        masked = self.mask_token.to(x.dtype).expand(b, num - visible.shape[1], -1)
        patches = gather_tokens(torch.cat([visible, masked], 1), ids_restore)
        x = torch.cat([prefix, patches], 1) + self.pos_embed.to(x.dtype)
        x = self.norm(self.blocks(x))
        return self.pred(x[:, self.num_prefix :])


def _init_linear(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class ViTMAE(MaskedNet):
    """A timm ``VisionTransformer`` with an MAE masked pass and its normal full pass."""

    def __init__(
        self,
        encoder: VisionTransformer,
        target_dim: int | None,
        decoder_dim: int,
        decoder_depth: int,
        decoder_heads: int,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.grid: tuple[int, int] = tuple(encoder.patch_embed.grid_size)  # type: ignore[assignment]
        self.num_prefix = int(encoder.num_prefix_tokens)
        self._bns = batchnorms(encoder)  # a hybrid ViT's BatchNorm stem (none in a plain ViT)
        self.decoder = (
            TransformerDecoder(
                encoder.embed_dim,
                decoder_dim,
                decoder_depth,
                decoder_heads,
                self.grid,
                self.num_prefix,
                target_dim,
            )
            if target_dim
            else None
        )

    def masked(self, x: torch.Tensor, pm: PatchMask) -> torch.Tensor:
        """``[B, 3, H, W]`` and a mask -> per-patch prediction ``[B, L, D]``.

        Removed patches of ``x`` are zeroed before ``patch_embed``: a plain patch embedding
        is unaffected (it never mixes patches), and a hybrid ViT's CNN stem, whose receptive
        field crosses patch borders, sees zeros there instead of the removed pixels.
        """
        e = self.encoder
        x = x * (1.0 - upsample_mask(pm.mask, self.grid, tuple(x.shape[-2:]))).to(x.dtype)
        with frozen_bn_stats(self._bns):
            x = e._pos_embed(e.patch_embed(x))  # [B, P + L, E], pos-embedded, prefix first
            p = self.num_prefix
            x = torch.cat([x[:, :p], gather_tokens(x[:, p:], pm.ids_keep)], 1)
            x = e.norm_pre(x)
            if e.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint_seq(e.blocks, x)
            else:
                x = e.blocks(x)
        return self.decoder(e.norm(x), pm.ids_restore)
