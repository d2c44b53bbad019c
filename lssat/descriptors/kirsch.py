"""Kirsch compass responses and the codes built on them: LDP (Jabid et al.) and LDN (Rivera et al.).

Directions follow the LBP neighbour order: 0 = east, then counter-clockwise (1 = north-east,
2 = north, ..., 7 = south-east). Kirsch mask ``i`` weighs the three ring neighbours around
direction ``i`` by 5, the other five by -3 and the centre by 0, so its response is
``8 * (n[i-1] + n[i] + n[i+1]) - 3 * sum(n)``; on integer-valued images every response is an
integer (|m| <= 15 * 255), exact in float32, so ties are real ties. Borders replicate the edge
pixel (no reference to match here; zeros would invent edges at the frame).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# (row, col) offset of ring neighbour i (i = 0 east, counter-clockwise; rows grow downwards)
RING = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))
K_RANGE = (1, 7)


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


@dataclass(frozen=True)
class Ring:
    """The 3x3 ring of every pixel as flat ``[B, L]`` views of one edge-padded buffer.

    ``L = H * (W + 2) - 2``: position ``q`` is padded pixel ``(1 + (q + 1) // (W + 2),
    (q + 1) % (W + 2))``, so each row carries two padding columns of garbage; ``crop`` keeps
    the ``[B, H, W]`` image part. Contiguous inner runs make the elementwise ops fast.
    """

    neighbours: list[torch.Tensor]  # 8 x [B, L], direction order
    centre: torch.Tensor  # [B, L]
    H: int
    W: int

    def crop(self, t: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` (contiguous) -> ``[B, H, W]`` view of the real pixels."""
        B, L = t.shape
        return t.as_strided((B, self.H, self.W), (L, self.W + 2, 1), t.storage_offset())


def ring(gray: torch.Tensor) -> Ring:
    """The edge-replicated 8-neighbourhood of ``[B, 1, H, W]`` in ``work_dtype``."""
    B, _, H, W = gray.shape
    x = F.pad(gray.to(work_dtype(gray.dtype)), (1, 1, 1, 1), mode="replicate")
    Wp, size, L = W + 2, (H + 2) * (W + 2), H * (W + 2) - 2

    def view(dr: int, dc: int) -> torch.Tensor:
        return x.as_strided((B, L), (size, 1), (1 + dr) * Wp + 1 + dc)

    return Ring([view(dr, dc) for dr, dc in RING], view(0, 0), H, W)


def kirsch(gray: torch.Tensor) -> tuple[torch.Tensor, Ring]:
    """Kirsch responses ``[8, B, L]`` (direction-major, flat ``Ring`` layout) and the ring."""
    r = ring(gray)
    n = r.neighbours
    minus_three_total = n[0] + n[1]
    for v in n[2:]:
        minus_three_total.add_(v)
    minus_three_total.mul_(-3)
    pairs = [n[i] + n[(i + 1) % 8] for i in range(8)]  # n[i] + n[i+1]
    out = n[0].new_empty((8, *n[0].shape))
    for i in range(8):
        torch.add(pairs[i - 1], n[(i + 1) % 8], out=out[i])  # n[i-1] + n[i] + n[i+1]
        out[i].mul_(8).add_(minus_three_total)
    return out, r


def ldp(gray: torch.Tensor, k: int = 3) -> torch.Tensor:
    """LDP code ``[B, 1, H, W]``: bit i set for the k directions with the largest |response|.

    Ties are broken towards the lower direction index (a flat patch gives bits 0..k-1).
    """
    a, r = kirsch(gray)
    a.abs_()
    # rank[i] = #{j > i: a[j] > a[i]} + #{j < i: a[j] >= a[i]}  (0 = strongest)
    rank = torch.arange(8, dtype=torch.uint8, device=a.device).view(8, 1, 1)
    rank = rank.expand(a.shape).clone()
    beats = torch.empty(a.shape[1:], dtype=torch.bool, device=a.device)
    for i in range(8):
        for j in range(i + 1, 8):
            torch.gt(a[j], a[i], out=beats)
            rank[i].add_(beats.view(torch.uint8))
            rank[j].sub_(beats.view(torch.uint8))
    code = torch.zeros(a.shape[1:], dtype=torch.uint8, device=a.device)
    for i in range(8):
        code.add_(torch.lt(rank[i], k).view(torch.uint8), alpha=1 << i)
    return r.crop(code).unsqueeze(1).to(gray.dtype)


def ldn(gray: torch.Tensor) -> torch.Tensor:
    """LDN code ``[B, 1, H, W]`` = ``8 * argmax + argmin`` of the signed Kirsch responses
    (first direction on ties), 0..63."""
    m, r = kirsch(gray)
    # running arg-max / arg-min over the 8 directions (a reduction over dim 0 is slow on CPU)
    high, low = m[0].clone(), m[0].clone()
    arg_high = torch.zeros(m.shape[1:], dtype=torch.uint8, device=m.device)
    arg_low = torch.zeros_like(arg_high)
    better = torch.empty(m.shape[1:], dtype=torch.bool, device=m.device)
    for i in range(1, 8):  # arg += better * (i - arg): uint8 arithmetic, cheaper than where
        torch.gt(m[i], high, out=better)
        arg_high.add_(torch.rsub(arg_high, i).mul_(better.view(torch.uint8)))
        torch.maximum(high, m[i], out=high)
        torch.lt(m[i], low, out=better)
        arg_low.add_(torch.rsub(arg_low, i).mul_(better.view(torch.uint8)))
        torch.minimum(low, m[i], out=low)
    return r.crop(arg_high.mul_(8).add_(arg_low)).unsqueeze(1).to(gray.dtype)


@functools.lru_cache(maxsize=8)
def ldp_codes(k: int) -> tuple[int, ...]:
    """The ``C(8, k)`` possible LDP codes, ascending."""
    return tuple(c for c in range(256) if bin(c).count("1") == k)


def ldp_num_codes(k: int) -> int:
    """Number of distinct LDP codes for ``k``: ``C(8, k)``."""
    return math.comb(8, k)


_RANKS: dict[tuple[int, torch.device], torch.Tensor] = {}


def ldp_rank(k: int, device: torch.device) -> torch.Tensor:
    """``[256]`` table: LDP code -> its index among ``ldp_codes(k)`` (-1 if impossible)."""
    key = (k, device)
    if key not in _RANKS:
        table = torch.full((256,), -1, dtype=torch.int64)
        table[list(ldp_codes(k))] = torch.arange(math.comb(8, k))
        _RANKS[key] = table.to(device)
    return _RANKS[key]
