"""Batched texture descriptors on any device, and their per-patch MAE targets.

``compute(name, gray, **params)``: grey ``[B, 1, H, W]`` (float, 0..255) -> map ``[B, C, H, W]``
for ``lbp`` (P, R, method; bit-exact to scikit-image in float64), ``mslbp``, ``ltp`` (t),
``ldp`` (k), ``ldn`` and ``hog`` (cell, bins). ``to_gray`` makes the grey image from uint8 RGB;
``normalize`` maps a descriptor map to [0, 1]; ``encode`` / ``target_dim`` give the per-patch
targets ``[B, L, D]`` (``map``, ``hist``, ``bits``). ``set_backend("compiled")`` (or
``LSSAT_DESCRIPTOR_BACKEND=compiled``) runs LBP as one fused ``torch.compile`` kernel, exact in
every float dtype. See ``docs/descriptors.md``.
"""

from lssat.descriptors.encodings import encode, normalize, patchify, target_dim
from lssat.descriptors.fused import BACKENDS, backend, get_backend, set_backend
from lssat.descriptors.gray import to_gray
from lssat.descriptors.registry import (
    DESCRIPTORS,
    ENCODINGS,
    MAX_HIST_CODES,
    DescriptorSpec,
    compute,
)

__all__ = [
    "BACKENDS",
    "DESCRIPTORS",
    "ENCODINGS",
    "MAX_HIST_CODES",
    "DescriptorSpec",
    "backend",
    "compute",
    "encode",
    "get_backend",
    "normalize",
    "patchify",
    "set_backend",
    "target_dim",
    "to_gray",
]
