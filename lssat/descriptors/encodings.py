"""Descriptor maps -> values in [0, 1] (``normalize``) and per-patch MAE targets (``encode``).

Encodings of a map ``[B, C, H, W]`` for patch size ``p`` (``L = (H / p) * (W / p)`` patches,
row-major, the order of timm / MAE ``patchify``):

* ``map``: ``normalize``'d map patchified like pixels, ``D = p * p * C`` (within a patch:
  row, column, channel). ``hog`` maps are constant over each cell, so they are first sampled
  every ``g = gcd(p, cell)`` pixels (lossless): ``D = (p / g)**2 * bins`` (MaskFeat's target
  when ``cell`` divides ``p``).
* ``hist``: per patch and channel, the fraction of the patch's pixels holding each code,
  channels concatenated: ``D = sum(num_codes)``. ``lbp`` ``var`` bins its normalised value
  into ``VAR_HIST_BINS`` equal bins; ``hog`` gives the patch's mean orientation histogram,
  L1-normalised (``D = bins``; all zeros on a flat patch).
* ``bits``: bit-planes of the integer code, ``bit_length(max_code)`` planes per channel, as
  channels, patchified: ``D = p * p * sum(planes)``. For ``lbp`` default/ror, ``ltp`` and
  ``ldp`` these are the neighbour-comparison bits themselves; for ``uniform``,
  ``nri_uniform``, ``mslbp`` and ``ldn`` (3 bits argmax, 3 bits argmin) the binary digits
  of the code. Not for continuous maps (``var``, ``hog``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from lssat.descriptors import kirsch as _kirsch
from lssat.descriptors import lbp as _lbp
from lssat.descriptors.registry import (
    ENCODINGS,
    VAR_HIST_BINS,
    DescriptorSpec,
    get,
)
from lssat.errors import ConfigError
from lssat.masking import patchify

_VAR_STD_MAX = 127.5  # largest standard deviation of values in 0..255


def _spec_params(name: str, params: dict[str, Any]) -> tuple[DescriptorSpec, dict[str, Any]]:
    spec = get(name)
    return spec, spec.resolve(**params)


def _is_var(name: str, p: dict[str, Any]) -> bool:
    return name == "lbp" and p["method"] == "var"


def _check_map(desc_map: Any, spec: DescriptorSpec, p: dict[str, Any]) -> None:
    if not isinstance(desc_map, torch.Tensor):
        raise ValueError(f"desc_map must be a torch.Tensor, got {type(desc_map).__name__}")
    channels = spec.channels(**p)
    if desc_map.ndim != 4 or desc_map.shape[1] != channels:
        raise ValueError(
            f"desc_map has shape {tuple(desc_map.shape)}; descriptor {spec.name!r} gives "
            f"[B, {channels}, H, W]"
        )
    if not desc_map.is_floating_point():
        raise ValueError(f"desc_map dtype is {desc_map.dtype}; allowed: a float dtype")


def _check_encoding(spec: DescriptorSpec, encoding: Any, p: dict[str, Any]) -> None:
    if encoding not in ENCODINGS:
        raise ConfigError(f"unknown encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")
    allowed = spec.encodings(**p)
    if encoding not in allowed:
        shown = ", ".join(f"{k}={v!r}" for k, v in p.items())
        raise ConfigError(
            f"encoding {encoding!r} does not apply to descriptor {spec.name!r} ({shown}); "
            f"allowed: {', '.join(allowed)}"
        )


def _check_patch(patch_size: Any) -> int:
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"patch_size is {patch_size!r}; allowed: an integer >= 1")
    return patch_size


def normalize(desc_map: torch.Tensor, name: str, **params: Any) -> torch.Tensor:
    """Map ``[B, C, H, W]`` -> same shape and dtype, values in [0, 1], NaN -> 0.

    Codes are divided by the channel's largest code. ``lbp`` ``var`` becomes
    ``log1p(std) / log1p(127.5)`` (std = sqrt(var)); its NaN (zero variance) becomes 0, the
    value of a zero standard deviation. ``hog`` is already in [0, 1].
    """
    spec, p = _spec_params(name, params)
    _check_map(desc_map, spec, p)
    if _is_var(name, p):
        std = desc_map.clamp(min=0).sqrt()
        out = torch.log1p(std) / math.log1p(_VAR_STD_MAX)
    elif name == "hog":
        out = desc_map
    else:
        top = torch.tensor(spec.max_codes(**p), dtype=desc_map.dtype, device=desc_map.device)
        out = desc_map / top.view(1, -1, 1, 1)
    return torch.nan_to_num(out, nan=0.0).clamp(0.0, 1.0)


def _codes(desc_map: torch.Tensor) -> torch.Tensor:
    return desc_map.round().long()


def _hist_index(
    desc_map: torch.Tensor, name: str, p: dict[str, Any]
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Per-pixel histogram index ``[B, C, H, W]`` (long) and the per-channel sizes."""
    spec = get(name)
    if _is_var(name, p):
        v = normalize(desc_map, name, **p)
        return (v * VAR_HIST_BINS).long().clamp_(0, VAR_HIST_BINS - 1), (VAR_HIST_BINS,)
    sizes = spec.num_codes(**p)
    code = _codes(desc_map)
    if name == "lbp" and p["method"] == "ror":
        table = _lbp.necklace_rank(p["P"], code.device)
        code = table[code.clamp(0, table.numel() - 1)]
    elif name == "ldp":
        table = _kirsch.ldp_rank(p["k"], code.device)
        code = table[code.clamp(0, 255)]
    return code, sizes


def _histograms(index: torch.Tensor, sizes: tuple[int, ...], p: int, name: str) -> torch.Tensor:
    """Per-patch normalised histograms ``[B, L, sum(sizes)]`` of ``index`` ``[B, C, H, W]``."""
    B, C, H, W = index.shape
    h, w = H // p, W // p
    top = torch.tensor(sizes, device=index.device).view(1, C, 1, 1)
    if bool(((index < 0) | (index >= top)).any()):
        raise ValueError(f"desc_map holds values that are not {name!r} codes")
    D = sum(sizes)
    offsets = torch.tensor((0, *sizes[:-1]), device=index.device).cumsum(0).view(1, C, 1, 1)
    rows = torch.arange(H, device=index.device) // p
    cols = torch.arange(W, device=index.device) // p
    patch = (rows.view(H, 1) * w + cols.view(1, W)).view(1, 1, H, W)
    flat = (patch * D + offsets + index).view(B, -1)
    out = torch.zeros((B, h * w * D), dtype=torch.float32, device=index.device)
    out.scatter_add_(1, flat, torch.ones(flat.shape, dtype=torch.float32, device=index.device))
    return out.view(B, h * w, D) / (p * p)


def _bit_planes(desc_map: torch.Tensor, widths: list[int]) -> torch.Tensor:
    code = _codes(desc_map)
    planes = []
    for c, width in enumerate(widths):
        shifts = torch.arange(width, device=code.device).view(1, width, 1, 1)
        planes.append((code[:, c : c + 1] >> shifts) & 1)
    return torch.cat(planes, 1).to(desc_map.dtype)


def _widths(spec: DescriptorSpec, p: dict[str, Any]) -> list[int]:
    return [int(m).bit_length() for m in spec.max_codes(**p)]


def encode(
    desc_map: torch.Tensor, name: str, encoding: str, patch_size: int, **params: Any
) -> torch.Tensor:
    """Per-patch targets ``[B, L, D]`` of a descriptor map ``[B, C, H, W]`` (see module doc).

    ``D == target_dim(name, encoding, patch_size, **params)``; H and W must be multiples of
    ``patch_size``. Output dtype: the map's (``hist``: float64 for float64 maps, else float32).
    """
    spec, p = _spec_params(name, params)
    _check_encoding(spec, encoding, p)
    size = _check_patch(patch_size)
    _check_map(desc_map, spec, p)
    H, W = desc_map.shape[-2:]
    if H % size or W % size:
        raise ValueError(f"desc_map is {H}x{W}; H and W must be multiples of patch_size {size}")
    if encoding == "map":
        x = normalize(desc_map, name, **p)
        if name == "hog":
            step = math.gcd(size, p["cell"])
            return patchify(x[:, :, ::step, ::step], size // step)
        return patchify(x, size)
    if encoding == "bits":
        return patchify(_bit_planes(desc_map, _widths(spec, p)), size)
    work = torch.float64 if desc_map.dtype == torch.float64 else torch.float32
    if name == "hog":
        mean = F.avg_pool2d(torch.nan_to_num(desc_map.to(work), nan=0.0), size)
        mean = mean / mean.sum(1, keepdim=True).clamp(min=torch.finfo(work).tiny)
        return mean.flatten(2).transpose(1, 2)
    index, sizes = _hist_index(desc_map, name, p)
    return _histograms(index, sizes, size, name).to(work)


def target_dim(name: str, encoding: str, patch_size: int, **params: Any) -> int:
    """``D`` of ``encode``'s ``[B, L, D]`` output, from names and numbers only."""
    spec, p = _spec_params(name, params)
    _check_encoding(spec, encoding, p)
    size = _check_patch(patch_size)
    if encoding == "map":
        if name == "hog":
            step = math.gcd(size, p["cell"])
            return (size // step) ** 2 * p["bins"]
        return size * size * spec.channels(**p)
    if encoding == "bits":
        return size * size * sum(_widths(spec, p))
    if name == "hog":
        return p["bins"]
    if _is_var(name, p):
        return VAR_HIST_BINS
    return sum(spec.num_codes(**p))
