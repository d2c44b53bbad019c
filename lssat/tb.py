"""TensorBoard output of one trial: every reported scalar, and a reconstruction picture.

The picture (tag ``reconstruction``) has four rows over a fixed validation batch: the input,
the reconstruction target, the masked input (removed patches grey) and the reconstruction
(predicted removed patches pasted among the visible patches' targets). RGB targets are shown
in colour. Descriptor targets whose patch vector holds a per-pixel map (``map``, ``bits``:
``D`` a multiple of ``p * p``) are un-patchified and their channels averaged; per-patch
histograms (``hist``) fill each patch with the histogram's centroid bin in [0, 1]. Target and
reconstruction share one grey scale per image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torchvision.utils import make_grid

from lssat.masking import unpatchify, upsample_mask


class TrialWriter:
    """Scalars and reconstruction pictures for one trial (a thin ``SummaryWriter`` wrapper)."""

    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def scalars(self, metrics: dict[str, float], step: int) -> None:
        """Every numeric metric under its own name."""
        for key, value in metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.writer.add_scalar(key, float(value), step)

    def reconstruction(self, vis: dict[str, torch.Tensor], model: Any, step: int) -> None:
        """Add the four-row picture made by :func:`picture` for ``model.visualise`` output."""
        self.writer.add_image("reconstruction", picture(vis, model), step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def _to_image(values: torch.Tensor, patch: int, grid: tuple[int, int]) -> torch.Tensor:
    """``[B, L, D]`` -> ``[B, C, H, W]`` (C = D / p^2) or ``[B, 1, H, W]`` for histograms."""
    d = values.shape[-1]
    if d % (patch * patch) == 0:
        return unpatchify(values, patch, grid)
    weights = values.clamp_min(0)
    bins = torch.linspace(0, 1, d, device=values.device)
    centroid = (weights * bins).sum(-1) / weights.sum(-1).clamp_min(1e-8)  # [B, L]
    return upsample_mask(centroid, grid, (grid[0] * patch, grid[1] * patch))


def _grey(img: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    img = img.mean(1, keepdim=True)
    return ((img - lo) / (hi - lo).clamp_min(1e-8)).clamp(0, 1).expand(-1, 3, -1, -1)


def picture(vis: dict[str, torch.Tensor], model: Any) -> torch.Tensor:
    """``[3, H', W']`` grid in [0, 1]: rows input, target, masked input, reconstruction."""
    patch, grid = model.patch, model.grid
    mean, std = model.mean / 255, model.std / 255
    rgb = (vis["rgb"] * std + mean).clamp(0, 1)
    mask = upsample_mask(vis["mask"], grid, tuple(rgb.shape[-2:]))  # [B, 1, H, W]
    m = vis["mask"].unsqueeze(-1)
    recon = vis["pred"] * m + vis["target"] * (1 - m)
    target_img = _to_image(vis["target"], patch, grid)
    recon_img = _to_image(recon, patch, grid)
    if model.config.reconstruct == "rgb" and target_img.shape[1] == 3:
        target_img = (target_img * std + mean).clamp(0, 1)
        recon_img = (recon_img * std + mean).clamp(0, 1)
    else:
        flat = target_img.mean(1).flatten(1)
        lo = flat.min(1).values.view(-1, 1, 1, 1)
        hi = flat.max(1).values.view(-1, 1, 1, 1)
        target_img, recon_img = _grey(target_img, lo, hi), _grey(recon_img, lo, hi)
    masked = rgb * (1 - mask) + 0.5 * mask
    rows = torch.cat([rgb, target_img, masked, recon_img]).float().cpu()
    return make_grid(rows, nrow=rgb.shape[0], padding=1, pad_value=1.0)
