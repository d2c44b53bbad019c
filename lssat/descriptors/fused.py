"""Opt-in fused LBP: scikit-image's arithmetic as one ``torch.compile`` kernel per setting.

The eager LBP in ``lbp.py`` makes one pass over the batch per neighbour and per step; here the
same per-pixel arithmetic is written once, on shifted slices of the zero-padded image, and
``torch.compile`` (Inductor: C++/OpenMP on CPU, Triton on CUDA) fuses it into one loop that
reads each pixel's ``P`` samples once. The result is the same map:

* float64: scikit-image's per-pixel float64 offsets and operation order, no fused
  multiply-add (Inductor compiles CPU code with ``-ffp-contract=off``; on CUDA
  ``emulate_precision_casts`` turns off Triton's FMA fusion) -> bit-exact, like eager.
* float32, float16, bfloat16: the image is upcast to float64 while it is padded and the
  kernel is the float64 one, so integer-valued images of any float dtype give scikit-image's
  codes exactly (the eager float32 path can differ on ties, see ``lbp.py``).

Choose it with ``set_backend("compiled")``, the ``backend("compiled")`` context, or
``LSSAT_DESCRIPTOR_BACKEND=compiled`` in the environment. The first call per (setting, dtype,
device, shape family) compiles, a few seconds on CPU (cached on disk by Inductor across
processes); a batch of another size recompiles once with dynamic sizes. If compilation fails
(no C++ compiler, no Triton) the call warns once and this process falls back to eager.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lssat.descriptors import lbp as _lbp

BACKENDS = ("eager", "compiled")
ENV_VAR = "LSSAT_DESCRIPTOR_BACKEND"
RECOMPILE_LIMIT = 256  # one cache entry per (setting, dtype, device, static/dynamic shape)

_state: dict[str, object] = {"backend": None, "broken": None}


def _check(name: object, where: str = "descriptor backend") -> str:
    if name not in BACKENDS:
        raise ValueError(f"{where} {name!r} is unknown; allowed: {', '.join(BACKENDS)}")
    return str(name)


def get_backend() -> str:
    """The backend in use: ``set_backend``'s choice, else ``$LSSAT_DESCRIPTOR_BACKEND``, else
    ``eager``; ``eager`` after a failed compilation in this process."""
    chosen = _state["backend"] or _check(os.environ.get(ENV_VAR) or "eager", f"${ENV_VAR}")
    return "eager" if _state["broken"] else str(chosen)


def set_backend(name: str) -> str:
    """Use ``name`` (``eager`` or ``compiled``) from now on; returns the previous choice."""
    _check(name)
    previous = get_backend()
    _state["backend"] = name
    return previous


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    """``with backend("compiled"): ...`` uses ``name`` inside the block only."""
    saved = _state["backend"]
    _state["backend"] = _check(name)
    try:
        yield
    finally:
        _state["backend"] = saved


@dataclass(frozen=True)
class _Spec:
    P: int
    method: str
    pad: int
    H: int
    W: int
    taps: tuple[_lbp.Tap, ...]


@functools.lru_cache(maxsize=64)
def _spec(
    P: int, R: float, method: str, H: int, W: int, device: torch.device
) -> tuple[_Spec, torch.Tensor, torch.Tensor]:
    """Static plan + per-row ``dr`` ``[P, H, 1]`` and per-column ``dc`` ``[P, 1, W]`` on
    ``device`` (float64, as scikit-image computes them; unused entries are 0)."""
    pad, taps = _lbp.taps(P, R, H, W)
    dr = np.zeros((P, H))
    dc = np.zeros((P, W))
    for i, tap in enumerate(taps):
        if tap.row_frac and not tap.outside:
            dr[i] = _lbp.fractions(0, H, tap.rr)
        if tap.col_frac and not tap.outside:
            dc[i] = _lbp.fractions(0, W, tap.cc)
    dr_t = torch.from_numpy(dr).to(device)[:, :, None]
    dc_t = torch.from_numpy(dc).to(device)[:, None, :]
    return _Spec(P, method, pad, H, W, taps), dr_t, dc_t


def _kernel(xp: torch.Tensor, dr: torch.Tensor, dc: torch.Tensor, spec: _Spec) -> torch.Tensor:
    """LBP codes (float64 ``[B, H, W]``) of the zero-padded image ``xp`` ``[B, Hp, Wp]``.

    ``dr`` ``[P, H, 1]`` / ``dc`` ``[P, 1, W]``: float64 fractional offsets. Samples follow
    scikit-image's ``bilinear_interpolation`` in float64, step by step.
    """
    H, W, p = spec.H, spec.W, spec.pad

    def at(r: int, c: int) -> torch.Tensor:
        return xp[:, p + r : p + r + H, p + c : p + c + W]

    centre = at(0, 0)
    samples = []
    for i, tap in enumerate(spec.taps):
        if tap.outside:
            samples.append(torch.zeros_like(centre))
            continue
        if tap.col_frac:
            w = dc[i]
            top = (1 - w) * at(tap.kr, tap.kc) + w * at(tap.kr, tap.kc + 1)
        else:
            top = at(tap.kr, tap.kc)
        if tap.row_frac:
            if tap.col_frac:
                bottom = (1 - w) * at(tap.kr + 1, tap.kc) + w * at(tap.kr + 1, tap.kc + 1)
            else:
                bottom = at(tap.kr + 1, tap.kc)
            top = (1 - dr[i]) * top + dr[i] * bottom
        samples.append(top)
    if spec.method == "var":
        total = torch.zeros_like(centre)
        square = torch.zeros_like(centre)
        for s in samples:
            total = total + s
            square = square + s * s
        var = (square - total * total / spec.P) / spec.P
        return torch.where(var == 0, torch.full_like(var, math.nan), var)
    bits = [(s >= centre).to(torch.int64) for s in samples]
    return _lbp.codes_from_bits(bits, spec.P, spec.method).to(torch.float64)


_compiled: dict[bool, object] = {}


def _compiled_kernel(cuda: bool) -> object:
    fn = _compiled.get(cuda)
    if fn is None:
        options = {"emulate_precision_casts": True} if cuda else None
        fn = _compiled[cuda] = torch.compile(_kernel, fullgraph=True, options=options)
    return fn


def lbp(gray: torch.Tensor, P: int = 8, R: float = 1.0, method: str = "uniform") -> torch.Tensor:
    """LBP map ``[B, 1, H, W]`` of ``[B, 1, H, W]`` through the compiled kernel (see module)."""
    B, _, H, W = gray.shape
    spec, dr_t, dc_t = _spec(P, float(R), method, H, W, gray.device)
    p = spec.pad
    xp = F.pad(gray[:, 0].to(torch.float64), (p, p, p, p))  # one eager pass, upcast included
    try:
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
            out = _compiled_kernel(gray.is_cuda)(xp, dr_t, dc_t, spec)
    except torch.OutOfMemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any compiler failure: warn once, go eager
        _state["broken"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        warnings.warn(
            f"compiled descriptors unavailable ({_state['broken']}); using eager from now on",
            RuntimeWarning,
            stacklevel=2,
        )
        return _lbp.lbp(gray, P, R, method)
    return out.to(gray.dtype).unsqueeze(1)
