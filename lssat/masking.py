"""Random patch masking (MAE-style argsort of noise) and patch (un)folding.

Conventions: patches are taken row-major over the image grid, as MAE's ``patchify``;
a patch vector is laid out ``(p, p, C)`` (channels last); ``mask`` is ``1 = removed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PatchMask:
    """One random mask per sample over ``L`` patches.

    ``ids_keep`` ``[B, Lk]`` indices of the visible patches (in shuffled order),
    ``mask`` ``[B, L]`` float, ``1 = removed``, ``0 = visible``,
    ``ids_restore`` ``[B, L]`` the inverse permutation of the shuffle (``argsort(ids_shuffle)``).
    """

    ids_keep: torch.Tensor
    mask: torch.Tensor
    ids_restore: torch.Tensor

    @property
    def num_masked(self) -> int:
        """Masked patches per sample (the same for every sample)."""
        return self.mask.shape[1] - self.ids_keep.shape[1]


def num_masked_patches(num_patches: int, ratio: float) -> int:
    """How many of ``num_patches`` a ``ratio`` removes: round(L * ratio), kept in [1, L - 1].

    ``ratio == 0`` masks nothing. At least one patch stays visible and, for ``ratio > 0``, at
    least one is removed, so both the encoder and the loss always have something to work on.
    """
    if ratio <= 0 or num_patches < 2:
        return 0
    return min(num_patches - 1, max(1, round(num_patches * ratio)))


def random_masking(
    batch: int,
    num_patches: int,
    ratio: float,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> PatchMask:
    """Per-sample random masking by sorting uniform noise (MAE).

    Returns a :class:`PatchMask` with exactly ``num_masked_patches(L, ratio)`` removed patches
    in every sample.
    """
    num_keep = num_patches - num_masked_patches(num_patches, ratio)
    noise = torch.rand(batch, num_patches, device=device, generator=generator)
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: small noise is kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :num_keep]
    mask = torch.ones(batch, num_patches, device=noise.device)
    mask[:, :num_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return PatchMask(ids_keep=ids_keep, mask=mask, ids_restore=ids_restore)


def gather_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Select tokens: ``x`` ``[B, L, D]``, ``ids`` ``[B, K]`` -> ``[B, K, D]``."""
    return torch.gather(x, 1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, L, p*p*C]`` with row-major patches, ``(p, p, C)`` per patch."""
    b, c, h, w = x.shape
    gh, gw = h // patch, w // patch
    x = x.reshape(b, c, gh, patch, gw, patch)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(b, gh * gw, patch * patch * c)


def unpatchify(x: torch.Tensor, patch: int, grid: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``[B, L, p*p*C]`` -> ``[B, C, gh*p, gw*p]``."""
    b, _, d = x.shape
    gh, gw = grid
    c = d // (patch * patch)
    x = x.reshape(b, gh, gw, patch, patch, c)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(b, c, gh * patch, gw * patch)


def mask_to_grid(mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``[B, L]`` -> ``[B, 1, gh, gw]`` (same values, ``1 = removed``)."""
    return mask.reshape(mask.shape[0], 1, grid[0], grid[1])


def upsample_mask(mask: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Patch mask ``[B, L]`` -> ``[B, 1, H, W]`` at a resolution that is a multiple of ``grid``."""
    m = mask_to_grid(mask, grid)
    return m.repeat_interleave(size[0] // grid[0], 2).repeat_interleave(size[1] // grid[1], 3)
