"""The one RGB -> grey conversion every descriptor uses (integer-valued, so LBP stays exact)."""

from __future__ import annotations

import torch

# ITU-R BT.601 luma in 15-bit fixed point, the integers of OpenCV 4's uint8 COLOR_RGB2GRAY
# (checked equal on all 2**24 colours): Y = (9798 R + 19235 G + 3735 B + 16384) >> 15.
_WEIGHTS = (9798, 19235, 3735)
_SHIFT = 15


def to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, 3, H, W]`` RGB -> float32 ``[B, 1, H, W]`` integer-valued grey in 0..255.

    ``Y = (9798 R + 19235 G + 3735 B + 16384) >> 15`` (BT.601 weights 0.299/0.587/0.114 in
    15-bit fixed point, rounded half up; the same integers as OpenCV's ``COLOR_RGB2GRAY``).
    Runs on ``rgb``'s device.
    """
    if not isinstance(rgb, torch.Tensor):
        raise ValueError(f"to_gray: rgb must be a torch.Tensor, got {type(rgb).__name__}")
    if rgb.dtype != torch.uint8:
        raise ValueError(
            f"to_gray: rgb dtype is {rgb.dtype}; allowed: torch.uint8 (convert with "
            "x.round().clamp(0, 255).to(torch.uint8))"
        )
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ValueError(f"to_gray: rgb shape is {tuple(rgb.shape)}; allowed: [B, 3, H, W]")
    if rgb.shape[0] == 0:
        raise ValueError("to_gray: rgb is an empty batch (B = 0); allowed: B >= 1")
    x = rgb.to(torch.int32)
    y = x[:, 0:1] * _WEIGHTS[0] + x[:, 1:2] * _WEIGHTS[1] + x[:, 2:3] * _WEIGHTS[2]
    return ((y + (1 << (_SHIFT - 1))) >> _SHIFT).to(torch.float32)
