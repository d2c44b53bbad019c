"""Self-blended images (SBI, Shiohara & Yamasaki, CVPR 2022): pseudo-fakes from real faces.

A face is blended with a perturbed copy of itself (intensity/colour change, blur or sharpen,
a small shift and scale) inside a soft, randomly deformed face-region mask, so the result
carries the blending boundary and statistics mismatch of a face swap without a second face.
Deterministic for a given numpy Generator. Images are float32 ``[H, W]`` or ``[H, W, C]``
in 0..255.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)  # as in SBI


def face_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Soft mask float32 ``[H, W]`` in [0, 1]: a deformed ellipse over the inner face
    (eyes to chin of a tight face crop), randomly eroded/dilated and blurred."""
    cx = width * (0.5 + rng.uniform(-0.04, 0.04))
    cy = height * (0.55 + rng.uniform(-0.04, 0.04))
    ax = width * rng.uniform(0.26, 0.36)
    ay = height * rng.uniform(0.32, 0.42)
    tilt = np.deg2rad(rng.uniform(-12, 12))
    theta = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    radius = np.ones_like(theta)
    for k in (2, 3, 4, 5):  # low-frequency deformation of the outline
        radius += rng.uniform(0, 0.07) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    x = ax * radius * np.cos(theta)
    y = ay * radius * np.sin(theta)
    pts = np.stack(
        [cx + x * np.cos(tilt) - y * np.sin(tilt), cy + x * np.sin(tilt) + y * np.cos(tilt)], 1
    )
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
    k = int(rng.integers(1, max(2, height // 16) + 1))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    sigma = rng.uniform(0.02, 0.07) * height
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)
    return soft / max(float(soft.max()), 1e-6)


@dataclass(frozen=True)
class Perturbation:
    """Ranges (uniform) of the source copy's perturbation; intensities in 0..255 units."""

    gain: tuple[float, float] = (0.8, 1.2)
    bias: tuple[float, float] = (-25.0, 25.0)
    gamma: tuple[float, float] = (0.8, 1.25)
    channel_gain: tuple[float, float] = (0.93, 1.07)  # RGB only
    blur_sigma: tuple[float, float] = (0.8, 1.8)  # half of the copies are blurred...
    sharpen: tuple[float, float] = (0.6, 1.5)  # ...the other half sharpened (unsharp mask)
    scale: tuple[float, float] = (0.95, 1.05)
    shift: float = 0.04  # fraction of the side


def perturb(
    image: np.ndarray, rng: np.random.Generator, p: Perturbation = Perturbation()
) -> np.ndarray:
    """The "source" copy: intensity (and per-channel colour for RGB) change, blur or
    sharpening, then a small random shift and scale."""
    out = image.astype(np.float32)
    h, w = out.shape[:2]
    gain = rng.uniform(*p.gain)
    bias = rng.uniform(*p.bias)
    if out.ndim == 3:
        gain = gain * rng.uniform(*p.channel_gain, size=out.shape[2]).astype(np.float32)
    out = out * gain + bias
    gamma = rng.uniform(*p.gamma)
    out = 255.0 * np.clip(out / 255.0, 0, 1) ** gamma
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(*p.blur_sigma))
    else:
        blur = cv2.GaussianBlur(out, (0, 0), 1.0)
        out = out + rng.uniform(*p.sharpen) * (out - blur)
    scale = rng.uniform(*p.scale)
    dx, dy = rng.uniform(-p.shift, p.shift, size=2) * (w, h)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, scale)
    matrix[:, 2] += (dx, dy)
    out = cv2.warpAffine(out, matrix, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)  # fmt: skip
    return np.clip(out, 0, 255)


def self_blend(
    image: np.ndarray, rng: np.random.Generator, p: Perturbation = Perturbation()
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-fake of ``image`` and its blend mask ``[H, W]`` (1 = source copy)."""
    target = image.astype(np.float32)
    source = perturb(target, rng, p)
    if rng.random() < 0.5:  # perturb either side of the boundary, as SBI does
        source, target = target, source
    mask = face_mask(*target.shape[:2], rng) * rng.choice(BLEND_RATIOS)
    m = mask[..., None] if target.ndim == 3 else mask
    return m * source + (1 - m) * target, mask
