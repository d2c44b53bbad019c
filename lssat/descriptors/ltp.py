"""Local ternary patterns (Tan & Triggs): LBP with a dead zone ``t``, split in two binary codes."""

from __future__ import annotations

import torch

from lssat.descriptors.kirsch import ring


def ltp(gray: torch.Tensor, t: float = 5.0) -> torch.Tensor:
    """LTP codes ``[B, 2, H, W]`` of grey images ``[B, 1, H, W]`` (codes 0..255 as floats).

    The 8 neighbours of the 3x3 ring, in LBP order (0 = east, counter-clockwise), edge
    replicated. Channel 0 (upper) sets bit i where ``n_i - c >= t``, channel 1 (lower) where
    ``n_i - c <= -t``; differences within ``(-t, t)`` set neither.
    """
    r = ring(gray)
    centre = r.centre
    upper = torch.zeros(centre.shape, dtype=torch.uint8, device=gray.device)
    lower = torch.zeros_like(upper)
    diff = torch.empty_like(centre)
    bit = torch.empty(centre.shape, dtype=torch.bool, device=gray.device)
    for i, n in enumerate(r.neighbours):
        torch.sub(n, centre, out=diff)
        upper.add_(torch.ge(diff, t, out=bit).view(torch.uint8), alpha=1 << i)
        lower.add_(torch.le(diff, -t, out=bit).view(torch.uint8), alpha=1 << i)
    return torch.stack([r.crop(upper), r.crop(lower)], 1).to(gray.dtype)
