"""Circular local binary patterns, bit-exact to ``skimage.feature.local_binary_pattern``.

scikit-image samples neighbour ``i`` of pixel ``(r, c)`` at ``(r + rr[i], c + cc[i])`` with
``rr[i] = round(-R sin(2 pi i / P), 5)`` and ``cc[i] = round(R cos(2 pi i / P), 5)``, bilinearly,
with zeros outside the image, and the fractional offsets ``dr = (r + rr) - floor(r + rr)``
computed per pixel in float64 (so they differ by an ulp from row to row). In float64 this module
repeats exactly those operations, in the same order, on whole images at once:

* a neighbour on integer offsets is the shifted image itself (no arithmetic);
* the horizontal step ``top = (1 - dc) * left + dc * right`` depends only on the column offset,
  so it is computed once per distinct column offset over the whole padded image, and the
  vertical step ``(1 - dr) * top + dr * bottom`` reads that image shifted by whole rows.

No fused multiply-add is used (torch's ``mul``/``add`` round each step like C does), which is
what makes the result bit-exact, ties included. In float32 each bilinear step is a single
``add(alpha=)`` pass instead (see ``_neighbour_values``); only exact ties between unequal
pixels can then differ from scikit-image (measured <= 0.2 % of pixels on 8-bit photos).

Images are processed as one flat, zero-padded buffer so every shifted neighbour is a plain
strided view of it (no copies, no gathers); codes are accumulated in ``uint8`` bytes and the
``ror`` / ``uniform`` / ``nri_uniform`` mappings are lookup tables over the ``default`` code.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from lssat.descriptors.kirsch import work_dtype

METHODS = ("default", "ror", "uniform", "nri_uniform", "var")
P_RANGE = (4, 24)
TIE_SLACK = 2.0**-22  # float32 path: sample >= centre * (1 - slack); see _neighbour_values
_LUT_MAX_P = 16  # ror / nri_uniform lookup tables up to 2**16 entries; direct formulas above


# ------------------------------------------------------------------------------ code arithmetic
def num_codes(P: int, method: str) -> int | None:
    """Size of the code set of one LBP map (``None`` for the continuous ``var``)."""
    if method == "default":
        return 1 << P
    if method == "ror":
        return necklace_count(P)
    if method == "uniform":
        return P + 2
    if method == "nri_uniform":
        return P * (P - 1) + 3
    return None


def max_code(P: int, method: str) -> int:
    """Largest code value a map can hold (``var`` has none: 0)."""
    return {
        "default": (1 << P) - 1,
        "ror": (1 << P) - 1,
        "uniform": P + 1,
        "nri_uniform": P * (P - 1) + 2,
    }.get(method, 0)


def necklace_count(P: int) -> int:
    """Number of distinct rotation-minimal P-bit codes (binary necklaces of length P)."""
    total = sum(_euler_phi(d) * (1 << (P // d)) for d in range(1, P + 1) if P % d == 0)
    return total // P


def _euler_phi(n: int) -> int:
    return sum(1 for k in range(1, n + 1) if math.gcd(k, n) == 1)


def map_codes(code: torch.Tensor, P: int, method: str) -> torch.Tensor:
    """Direct ``ror`` / ``uniform`` / ``nri_uniform`` value of integer ``default`` codes
    (int32/int64, any shape) -> int64; see :func:`codes_from_bits`."""
    code = code.to(torch.int64)
    if method not in ("default", "ror", "uniform", "nri_uniform"):
        raise ValueError(f"method {method!r} has no integer code mapping")
    return codes_from_bits([(code >> i) & 1 for i in range(P)], P, method)


def codes_from_bits(bits: list[torch.Tensor], P: int, method: str) -> torch.Tensor:
    """``method`` codes (int64) from the P bit maps (int64 0/1, bit ``i`` = neighbour ``i``).

    Follows scikit-image's loop line by line: ``uniform`` counts 0/1 changes between bits
    ``i`` and ``i + 1`` for ``i < P - 1`` (no wrap-around). Elementwise only (no stacks), so
    ``torch.compile`` fuses it into the kernel that made the bits (``fused.py``).
    """
    code = sum(b << i for i, b in enumerate(bits))
    if method == "default":
        return code
    if method == "ror":
        best, cur = code, code
        for _ in range(P - 1):
            cur = (cur >> 1) | ((cur & 1) << (P - 1))
            best = torch.minimum(best, cur)
        return best
    n_ones = sum(bits)
    changes = sum(b ^ c for b, c in zip(bits[:-1], bits[1:], strict=True))
    if method == "uniform":
        return torch.where(changes <= 2, n_ones, P + 1)
    first_one = torch.full_like(code, -1)
    first_zero = torch.full_like(code, -1)
    for i in reversed(range(P)):  # the last assignment wins: the lowest index
        first_one = torch.where(bits[i] == 1, i, first_one)
        first_zero = torch.where(bits[i] == 0, i, first_zero)
    return _nri_value(n_ones, changes <= 2, first_one, first_zero, P)


def _nri_value(
    n_ones: torch.Tensor,
    uniform: torch.Tensor,
    first_one: torch.Tensor,
    first_zero: torch.Tensor,
    P: int,
) -> torch.Tensor:
    """skimage's ``nri_uniform`` code from the number of ones, the uniformity test and the
    lowest indices of a one and of a zero (either may be anything where it does not exist)."""
    rot = torch.where(first_one == 0, n_ones - first_zero, P - first_one)
    value = 1 + (n_ones - 1) * P + rot
    value = torch.where(n_ones == 0, 0, value)
    value = torch.where(n_ones == P, P * (P - 1) + 1, value)
    return torch.where(uniform, value, P * (P - 1) + 2)


@functools.lru_cache(maxsize=64)
def _lut_cpu(P: int, method: str) -> torch.Tensor:
    return map_codes(torch.arange(1 << P, dtype=torch.int64), P, method).to(torch.int32)


_LUTS: dict[tuple[int, str, torch.device, torch.dtype], torch.Tensor] = {}


def lut(P: int, method: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``[2**P]`` table default code -> ``method`` code, cached per device and dtype."""
    key = (P, method, device, dtype)
    table = _LUTS.get(key)
    if table is None:
        table = _LUTS[key] = _lut_cpu(P, method).to(device=device, dtype=dtype)
    return table


@functools.lru_cache(maxsize=64)
def _necklace_rank_cpu(P: int) -> torch.Tensor:
    """``[2**P]`` table: ror code -> its rank among the sorted ror codes (hist index)."""
    values = torch.unique(_lut_cpu(P, "ror"))
    rank = torch.full((1 << P,), -1, dtype=torch.int64)
    rank[values.long()] = torch.arange(values.numel())
    return rank


def necklace_rank(P: int, device: torch.device) -> torch.Tensor:
    """Table mapping a ``ror`` code to ``0 .. necklace_count(P) - 1`` (P <= 16)."""
    key = (P, "rank", device, torch.int64)
    table = _LUTS.get(key)
    if table is None:
        table = _LUTS[key] = _necklace_rank_cpu(P).to(device)
    return table


# ---------------------------------------------------------------------------- sampling plan
def offsets(P: int, R: float) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour (row, col) offsets ``[P]`` exactly as scikit-image computes them."""
    i = np.arange(P, dtype=np.float64)
    rr = -float(R) * np.sin(2 * np.pi * i / P)
    cc = float(R) * np.cos(2 * np.pi * i / P)
    return np.round(rr, 5), np.round(cc, 5)


@dataclass(frozen=True)
class _Neighbour:
    index: int
    kr: int  # floor of the row offset
    kc: int  # floor of the column offset
    row_w: tuple[torch.Tensor, torch.Tensor] | None  # (1 - dr, dr) per output row, [H * Wp]
    row_s: tuple[float, float] | None  # the same as scalars (float32 path)
    group: int | None  # column-interpolation group (index into _Plan.groups) or None
    outside: bool = False  # every sample falls outside the image: the sample is 0


@dataclass(frozen=True)
class _Group:
    kc: int
    col_w: tuple[torch.Tensor, torch.Tensor]  # (1 - dc, dc) per padded column, [Hp * Wp]
    col_s: tuple[float, float]  # the same as scalars (float32 path)


@dataclass(frozen=True)
class _Plan:
    H: int
    W: int
    pad: int
    neighbours: tuple[_Neighbour, ...]
    groups: tuple[_Group, ...]

    @property
    def Hp(self) -> int:  # noqa: N802 - image-size convention
        return self.H + 2 * self.pad

    @property
    def Wp(self) -> int:  # noqa: N802
        return self.W + 2 * self.pad

    @property
    def margin(self) -> int:
        return self.pad + 1


def padding(rr: np.ndarray, cc: np.ndarray, H: int, W: int) -> tuple[np.ndarray, int]:
    """``(outside [P] bool, pad)``: neighbours whose 4 pixels are outside the image for every
    pixel (they sample 0, so any R works without padding by more than the image size), and
    the zero padding the others need."""
    outside = (np.floor(rr) >= H) | (np.ceil(rr) <= -H) | (np.floor(cc) >= W) | (np.ceil(cc) <= -W)
    inside = np.abs(np.concatenate([rr[~outside], cc[~outside]]))
    return outside, max(1, int(math.ceil(inside.max())) if inside.size else 1)


def fractions(start: int, stop: int, offset: float) -> np.ndarray:
    """Per-position fractional part ``(k + offset) - floor(k + offset)`` for k in [start, stop)
    (float64, as scikit-image computes it)."""
    pos = np.arange(start, stop, dtype=np.float64) + offset
    low = np.floor(pos)
    if not np.all(low - np.arange(start, stop) == math.floor(offset)):
        raise RuntimeError(f"LBP offset {offset} has no common integer floor")  # 5 decimals: never
    return pos - low


@dataclass(frozen=True)
class Tap:
    """How neighbour ``i`` is sampled: its offsets ``(rr, cc)``, their floors ``(kr, kc)``,
    which axes interpolate, or ``outside`` (every sample beyond the image: 0)."""

    rr: float
    cc: float
    kr: int
    kc: int
    row_frac: bool
    col_frac: bool
    outside: bool


def taps(P: int, R: float, H: int, W: int) -> tuple[int, tuple[Tap, ...]]:
    """``(pad, taps)``: the zero padding and the P neighbours' sampling, as scikit-image
    places them on an ``H x W`` image (shared by the eager and the compiled LBP)."""
    rr, cc = offsets(P, R)
    outside, pad = padding(rr, cc, H, W)
    out = []
    for r, c, away in zip(rr.tolist(), cc.tolist(), outside.tolist(), strict=True):
        kr, kc = math.floor(r), math.floor(c)
        out.append(Tap(r, c, kr, kc, r != kr, c != kc, bool(away)))
    return pad, tuple(out)


def _scalars(offset: float) -> tuple[float, float]:
    frac = offset - math.floor(offset)
    return 1.0 - frac, frac


@functools.lru_cache(maxsize=32)
def _plan(P: int, R: float, H: int, W: int, device: torch.device, dtype: torch.dtype) -> _Plan:
    pad, all_taps = taps(P, R, H, W)
    Hp, Wp = H + 2 * pad, W + 2 * pad

    def vec(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(values).to(device=device, dtype=dtype)

    groups: list[_Group] = []
    group_of: dict[float, int] = {}
    neighbours = []
    for i, tap in enumerate(all_taps):
        if tap.outside:
            neighbours.append(_Neighbour(i, 0, 0, None, None, None, outside=True))
            continue
        row_w = row_s = None
        if tap.row_frac:
            dr = fractions(0, H, tap.rr)
            row_w = (vec(np.repeat(1 - dr, Wp)), vec(np.repeat(dr, Wp)))
            row_s = _scalars(tap.rr)
        group = None
        if tap.col_frac:
            if tap.cc not in group_of:
                dc = fractions(-pad, W + pad, tap.cc)
                group_of[tap.cc] = len(groups)
                col_w = (vec(np.tile(1 - dc, Hp)), vec(np.tile(dc, Hp)))
                groups.append(_Group(tap.kc, col_w, _scalars(tap.cc)))
            group = group_of[tap.cc]
        neighbours.append(_Neighbour(i, tap.kr, tap.kc, row_w, row_s, group))
    return _Plan(H, W, pad, tuple(neighbours), tuple(groups))


def _lerp_scaled(
    a: torch.Tensor, b: torch.Tensor, wa: float, wb: float, out: torch.Tensor
) -> float:
    """``out = (wa * a + wb * b) / scale`` in one pass; returns ``scale = max(wa, wb)``."""
    if wa >= wb:
        torch.add(a, b, alpha=wb / wa, out=out)
        return wa
    torch.add(b, a, alpha=wa / wb, out=out)
    return wb


def _neighbour_values(
    x: torch.Tensor, plan: _Plan, order: list[int], share: bool, exact: bool
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield ``(i, sample_i, centre)`` as ``[B, H * Wp]`` tensors over interior rows.

    ``x``: ``[B, H, W]`` in the working dtype. Columns outside ``[pad, pad + W)`` of each row
    are padding garbage; the caller crops them. Yielded tensors are only valid until the next
    one is requested (buffers are reused).

    ``exact``: scikit-image's per-pixel float64 weights and operation order (no fused
    multiply-add), so ``sample_i`` is bit-identical to its ``texture[i]``. Otherwise
    (float32) each interpolation is one ``add(alpha=)`` pass scaled by the larger weight, and
    ``sample_i`` and ``centre`` are both divided by the same positive scale: the comparison
    ``sample >= centre`` keeps its meaning with about half the passes. The scaled centre is
    lowered by ``TIE_SLACK`` (relative, about 2 float32 ulps): where all interpolated pixels
    equal the centre, scikit-image's float64 sample always comes out ``>=`` the centre, while
    float32 rounding would flip a coin; with the slack those flat ties agree (the float32
    mismatch on 8-bit photos drops from ~0.5-5 % to ~0-0.3 %). With ``share`` the
    horizontally interpolated image of a column group is kept until its last neighbour.
    """
    B, H, W = x.shape
    pad, Hp, Wp, m = plan.pad, plan.Hp, plan.Wp, plan.margin
    n = B * Hp * Wp
    buf = x.new_empty(n + 2 * m)  # zero margins and borders, the image inside: one pass
    buf[:m].zero_()
    buf[m + n :].zero_()
    padded = buf[m : m + n].view(B, Hp, Wp)
    padded[:, :pad].zero_()
    padded[:, pad + H :].zero_()
    padded[:, pad : pad + H, :pad].zero_()
    padded[:, pad : pad + H, pad + W :].zero_()
    padded[:, pad : pad + H, pad : pad + W] = x

    def rows(t: torch.Tensor, start: int, count: int, offset: int) -> torch.Tensor:
        """``[B, count * Wp]`` view of ``t`` from padded row ``start``, shifted by ``offset``."""
        return t.as_strided((B, count * Wp), (Hp * Wp, 1), start * Wp + offset)

    centre = rows(buf, pad, H, m)
    centres: dict[float, torch.Tensor] = {1.0: centre}  # centre / scale (fast path)
    last_use = {}
    for pos, i in enumerate(order):
        g = plan.neighbours[i].group
        if g is not None:
            last_use[g] = pos
    cache: dict[int, tuple[torch.Tensor, float]] = {}
    spare: list[torch.Tensor] = []  # freed interpolation images, reused
    value = x.new_empty((B, H * Wp))
    tmp = x.new_empty((B, H * Wp)) if exact else None
    tmp_full = None
    zero = x.new_zeros(1).expand(B, H * Wp)
    for pos, i in enumerate(order):
        nb = plan.neighbours[i]
        scale = 1.0
        if nb.outside:
            yield i, zero, centre
            continue
        if nb.group is None:
            source, base = buf, m + nb.kc  # plain shifted image
        else:
            if nb.group not in cache:
                grp = plan.groups[nb.group]
                left = rows(buf, 0, Hp, m + grp.kc)
                right = rows(buf, 0, Hp, m + grp.kc + 1)
                img = spare.pop() if spare else x.new_empty((B, Hp * Wp))
                if exact:
                    if tmp_full is None:
                        tmp_full = x.new_empty((B, Hp * Wp))
                    torch.mul(left, grp.col_w[0], out=img)
                    img.add_(torch.mul(right, grp.col_w[1], out=tmp_full))
                    cache[nb.group] = (img, 1.0)
                else:
                    cache[nb.group] = (img, _lerp_scaled(left, right, *grp.col_s, out=img))
            img, scale = cache[nb.group]
            source, base = img.view(-1), 0
        top = rows(source, pad + nb.kr, H, base)
        if nb.row_w is None:
            sample = top
        else:
            bottom = rows(source, pad + nb.kr + 1, H, base)
            if exact:  # not addcmul / add(alpha=): those use FMA on CPU and CUDA
                torch.mul(top, nb.row_w[0], out=value)
                torch.mul(bottom, nb.row_w[1], out=tmp)
                value.add_(tmp)
            else:
                scale *= _lerp_scaled(top, bottom, *nb.row_s, out=value)
            sample = value
        if scale not in centres:
            scaled = torch.mul(centre, 1.0 / scale)
            centres[scale] = scaled.sub_(scaled.abs().mul_(TIE_SLACK))
        yield i, sample, centres[scale]
        if nb.group is not None and (not share or last_use[nb.group] == pos):
            spare.append(cache.pop(nb.group)[0])


def lbp(gray: torch.Tensor, P: int = 8, R: float = 1.0, method: str = "uniform") -> torch.Tensor:
    """LBP map ``[B, 1, H, W]`` of grey images ``[B, 1, H, W]`` (codes as float values).

    float64 input: bit-exact to scikit-image (``var`` too, NaN where the variance is 0).
    float32: the one-pass interpolation of ``_neighbour_values`` (codes may differ on exact
    ties between unequal pixels; ``var`` is computed in float64 and rounded). float16 and
    bfloat16: computed in float32, returned in the input dtype. Parameters are assumed
    validated (``compute`` does it).
    """
    B, _, H, W = gray.shape
    x = gray[:, 0]
    if method == "var":
        return _lbp_var(x, P, R).to(gray.dtype).unsqueeze(1)
    work = work_dtype(gray.dtype)
    x = x.to(work)
    plan = _plan(P, float(R), H, W, x.device, work)
    Wp, pad = plan.Wp, plan.pad
    n_bytes = (P + 7) // 8
    planes = None
    if P > _LUT_MAX_P and method in ("uniform", "nri_uniform"):
        planes = torch.empty((P, B, H * Wp), dtype=torch.bool, device=x.device)
    else:
        acc = x.new_zeros((n_bytes, B, H * Wp), dtype=torch.uint8)
        bit = torch.empty((B, H * Wp), dtype=torch.bool, device=x.device)
    # neighbours sharing a column interpolation are consecutive: one interpolated image alive
    order = sorted(
        range(P),
        key=lambda i: (plan.neighbours[i].group is not None, plan.neighbours[i].group or 0, i),
    )
    exact = work == torch.float64
    for i, value, centre in _neighbour_values(x, plan, order, share=True, exact=exact):
        if planes is not None:
            torch.ge(value, centre, out=planes[i])
        else:
            torch.ge(value, centre, out=bit)
            acc[i // 8].add_(bit.view(torch.uint8), alpha=1 << (i % 8))
    if planes is not None:
        planes = planes.view(P, B, H, Wp)[..., pad : pad + W]
        out = _from_planes(planes, P, method)
        return out.to(gray.dtype).unsqueeze(1)
    acc = acc.view(n_bytes, B, H, Wp)[..., pad : pad + W]  # crop happens in the next copy
    if P <= 8 and method == "default":
        return acc[0].to(gray.dtype).unsqueeze(1)
    code = acc[0].to(torch.int32)
    for k in range(1, n_bytes):
        code.bitwise_or_(acc[k].to(torch.int32) << (8 * k))
    if method == "default":
        return code.to(gray.dtype).unsqueeze(1)
    if P <= _LUT_MAX_P:
        out_dtype = gray.dtype if gray.dtype in (torch.float32, torch.float64) else torch.float32
        table = lut(P, method, x.device, out_dtype)
        out = torch.index_select(table, 0, code.view(-1)).view(B, 1, H, W)
    else:
        out = map_codes(code, P, method).view(B, 1, H, W)
    return out.to(gray.dtype)


def _from_planes(planes: torch.Tensor, P: int, method: str) -> torch.Tensor:
    """``uniform`` / ``nri_uniform`` codes from bit planes ``[P, B, H, W]`` (bool) -> int64."""
    n_ones = planes.sum(0, dtype=torch.int16)
    changes = torch.ne(planes[1:], planes[:-1]).sum(0, dtype=torch.int16)
    uniform = changes <= 2
    if method == "uniform":
        return torch.where(uniform, n_ones, P + 1)
    first_one = planes.to(torch.uint8).argmax(0)
    first_zero = torch.logical_not(planes).to(torch.uint8).argmax(0)
    return _nri_value(n_ones.long(), uniform, first_one, first_zero, P)


def _lbp_var(x: torch.Tensor, P: int, R: float) -> torch.Tensor:
    """scikit-image's ``var``: biased variance of the P samples, NaN where it is 0 (float64)."""
    x = x.to(torch.float64)
    B, H, W = x.shape
    plan = _plan(P, float(R), H, W, x.device, torch.float64)
    total = sq = None
    samples = _neighbour_values(x, plan, list(range(P)), share=False, exact=True)
    for _, value, _centre in samples:
        if total is None:
            total, sq = value.clone(), torch.mul(value, value)
        else:
            total.add_(value)
            sq.add_(torch.mul(value, value))
    var = (sq - total * total / P) / P
    var = var.masked_fill_(var == 0, float("nan"))
    pad = plan.pad
    return var.view(B, H, plan.Wp)[..., pad : pad + W]
