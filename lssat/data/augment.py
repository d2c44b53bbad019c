"""Training augmentation on uint8 images: random resized crop, horizontal flip, colour jitter.

Images stay uint8 HWC numpy arrays (views of the memory-mapped shards) until the end, and
every step is one OpenCV call: crop = a view, antialiased resize (:func:`resize_hwc`), flip,
and brightness / contrast / saturation folded into one 3x4 colour matrix (``cv2.transform``;
torchvision's per-image ColorJitter costs several times more). Random draws come from torch's
generator, so a DataLoader's per-worker seeding makes them reproducible. The item is a
``[3, S, S]`` view of the HWC result (collation makes the batch contiguous).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as torchvision
_EYE = np.eye(3, dtype=np.float32)
_TO_GREY = np.outer(np.ones(3, np.float32), GREY_WEIGHTS)  # x -> (grey, grey, grey)
MAX_PLAIN_SHRINK = 1.25  # bilinear without a box filter aliases little up to this factor


@dataclass(frozen=True)
class Augment:
    """Augmentation strengths; ``scale`` is the crop's area fraction, ``ratio`` its w/h."""

    scale: tuple[float, float] = (0.8, 1.0)
    ratio: tuple[float, float] = (0.9, 1.1)
    flip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2


def _between(lo: float, hi: float, u: float) -> float:
    return lo + (hi - lo) * u


def crop_box(height: int, width: int, aug: Augment, u: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop of area fraction ``aug.scale`` and aspect ``aug.ratio``
    (log-uniform) from four uniform numbers ``u``; clamped to the image instead of redrawn."""
    target = height * width * _between(*aug.scale, u[0])
    ratio = math.exp(_between(math.log(aug.ratio[0]), math.log(aug.ratio[1]), u[1]))
    w = min(width, max(1, int(round(math.sqrt(target * ratio)))))
    h = min(height, max(1, int(round(math.sqrt(target / ratio)))))
    top = min(int(u[2] * (height - h + 1)), height - h)
    left = min(int(u[3] * (width - w + 1)), width - w)
    return top, left, h, w


def resize_hwc(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``[h, w, 3]`` (any view) -> new uint8 ``[size, size, 3]``, antialiased.

    Shrinking by more than ``MAX_PLAIN_SHRINK`` goes bilinear to the next integer multiple
    ``k * size`` and then through OpenCV's box filter by the exact factor ``k`` (its fast
    path, and no aliasing); anything else is plain bilinear.
    """
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return np.array(image)
    k = math.ceil(max(h, w) / size)
    if max(h, w) <= MAX_PLAIN_SHRINK * size:  # growing, or too little shrinking to alias
        return cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    if (h, w) != (k * size, k * size):
        image = cv2.resize(image, (k * size, k * size), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def colour_matrix(
    image: np.ndarray, brightness: float, contrast: float, saturation: float
) -> np.ndarray:
    """3x4 float32 matrix applying brightness, then contrast, then saturation factors (1 = no
    change, as torchvision's ``adjust_*``) to uint8 ``[H, W, 3]`` ``image``.

    ``y = c b S x + (1 - c) b m``, with ``m`` the mean grey of ``x`` and ``S`` the
    saturation blend ``s I + (1 - s) 1 w^T`` (its rows sum to 1).
    """
    b, c, s = brightness, contrast, saturation
    sat = s * _EYE + (1 - s) * _TO_GREY
    mean = float(np.dot(GREY_WEIGHTS, cv2.mean(image)[:3]))
    out = np.empty((3, 4), np.float32)
    out[:, :3] = c * b * sat
    out[:, 3] = (1 - c) * b * mean
    return out


def augment_image(hwc: np.ndarray, size: int, aug: Augment, rgb: bool = True) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` (any view) -> augmented uint8 ``[3, size, size]``.

    One draw of 8 numbers from torch's generator per image: crop (4), flip, brightness,
    contrast, saturation (skipped when not ``rgb``: a no-op on grey data anyway).
    """
    u = torch.rand(8, dtype=torch.float64).numpy()
    top, left, h, w = crop_box(hwc.shape[0], hwc.shape[1], aug, u)
    out = resize_hwc(hwc[top : top + h, left : left + w], size)
    if u[4] < aug.flip:
        out = cv2.flip(out, 1)
    if aug.brightness or aug.contrast or (aug.saturation and rgb):
        b = _between(1 - aug.brightness, 1 + aug.brightness, u[5])
        c = _between(1 - aug.contrast, 1 + aug.contrast, u[6])
        s = _between(1 - aug.saturation, 1 + aug.saturation, u[7]) if rgb else 1.0
        out = cv2.transform(out, colour_matrix(out, b, c, s))
    return torch.from_numpy(out).permute(2, 0, 1)


def plain_image(hwc: np.ndarray, size: int) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` -> uint8 ``[3, size, size]``, resized only (evaluation)."""
    return torch.from_numpy(resize_hwc(hwc, size)).permute(2, 0, 1)
