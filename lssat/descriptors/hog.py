"""HOG-like targets (MaskFeat): per-cell gradient-orientation histograms, block-normalised.

1. Gradients as in scikit-image's ``hog``: central differences ``x[r, c+1] - x[r, c-1]`` and
   ``x[r+1, c] - x[r-1, c]``, zero on the image border.
2. Unsigned orientation ``atan2(gy, gx) mod pi`` (rows grow downwards), hard-assigned to
   ``bins`` equal bins over [0, pi), weighted by the gradient magnitude.
3. Sums over ``cell x cell`` cells (the last row/column of cells may be partial when H or W is
   not a multiple of ``cell``).
4. Block normalisation: each cell histogram is divided by the L2 norm of the 3x3 block of cells
   centred on it (all bins, zero cells beyond the border) plus ``EPS``, so every value is in
   [0, 1]; MaskFeat normalises each cell alone, Dalal & Triggs use 2x2 blocks.
5. The map is the cell's histogram repeated over the cell's pixels: ``[B, bins, H, W]``, so it
   has the image's size like every other descriptor map.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lssat.descriptors.kirsch import work_dtype

EPS = 1e-5
CELL_RANGE = (1, 256)
BINS_RANGE = (2, 180)


def cell_histograms(gray: torch.Tensor, cell: int = 8, bins: int = 9) -> torch.Tensor:
    """Block-normalised cell histograms ``[B, bins, ceil(H / cell), ceil(W / cell)]``."""
    x = gray[:, 0].to(work_dtype(gray.dtype))
    B, H, W = x.shape
    gx = torch.zeros_like(x)
    gy = torch.zeros_like(x)
    gx[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    gy[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    mag = torch.hypot(gx, gy)
    theta = torch.remainder(torch.atan2(gy, gx), math.pi)
    index = (theta * (bins / math.pi)).long().clamp_(0, bins - 1)
    Hc, Wc = -(-H // cell), -(-W // cell)
    per_pixel = x.new_zeros((B, bins, Hc * cell, Wc * cell))
    per_pixel[:, :, :H, :W].scatter_(1, index.unsqueeze(1), mag.unsqueeze(1))
    hist = per_pixel.view(B, bins, Hc, cell, Wc, cell).sum((3, 5))
    energy = hist.square().sum(1, keepdim=True)
    block = F.avg_pool2d(energy, 3, stride=1, padding=1, count_include_pad=True) * 9
    return hist / (block.sqrt() + EPS)


def hog(gray: torch.Tensor, cell: int = 8, bins: int = 9) -> torch.Tensor:
    """HOG map ``[B, bins, H, W]``: each pixel carries its cell's normalised histogram."""
    H, W = gray.shape[-2:]
    hist = cell_histograms(gray, cell, bins)
    full = hist.repeat_interleave(cell, 2).repeat_interleave(cell, 3)
    return full[:, :, :H, :W].to(gray.dtype).contiguous()
