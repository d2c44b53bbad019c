"""The descriptor registry: names -> specs (parameters, channels, code sets, encodings)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from lssat.descriptors import fused as _fused
from lssat.descriptors import hog as _hog
from lssat.descriptors import kirsch as _kirsch
from lssat.descriptors import lbp as _lbp
from lssat.descriptors.ltp import ltp as _ltp
from lssat.errors import ConfigError

ENCODINGS = ("map", "hist", "bits")
MAX_HIST_CODES = 8192  # per channel; larger code sets only as ``map`` or ``bits``
VAR_HIST_BINS = 16  # ``lbp`` ``var`` histograms bin the normalised value in [0, 1]
MSLBP_SCALES = ((8, 1.0), (16, 2.0), (24, 3.0))
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass(frozen=True)
class Param:
    """One descriptor parameter: default, type and allowed values (checked by ``validate``)."""

    name: str
    default: Any
    kind: str  # "int", "real" or "choice"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()

    def allowed(self) -> str:
        if self.kind == "choice":
            return ", ".join(self.choices)
        left = "(" if self.low_open else "["
        high = "inf)" if self.high is None else f"{self.high}]"
        what = "integer" if self.kind == "int" else "finite number"
        return f"{what} in {left}{self.low}, {high}"

    def validate(self, descriptor: str, value: Any) -> Any:
        ok = True
        if self.kind == "choice":
            ok = isinstance(value, str) and value in self.choices
        elif isinstance(value, bool) or not isinstance(value, numbers.Real):
            ok = False
        elif self.kind == "int":
            ok = isinstance(value, numbers.Integral) or (
                isinstance(value, float) and value.is_integer()
            )
            value = int(value) if ok else value
        else:
            value = float(value)
            ok = math.isfinite(value)
        if ok and self.kind != "choice":
            ok = not (
                (
                    self.low is not None
                    and (value < self.low or (self.low_open and value == self.low))
                )
                or (self.high is not None and value > self.high)
            )
        if not ok:
            raise ConfigError(
                f"descriptor {descriptor!r} parameter {self.name!r} is {value!r}; "
                f"allowed: {self.allowed()}"
            )
        return value


@dataclass(frozen=True)
class DescriptorSpec:
    """What the rest of the code needs to know about one descriptor.

    ``compute(gray, **params)`` -> ``[B, C, H, W]``; ``channels(**params)`` = C;
    ``num_codes(**params)``: per-channel size of the code set (tuple, one entry per channel) or
    ``None`` for continuous maps; ``max_codes(**params)``: per-channel largest code value
    (``map`` scales by it, ``bits`` uses its bit length); ``encodings(**params)``: the target
    encodings that apply (others raise ``ConfigError``).
    """

    name: str
    summary: str
    params: tuple[Param, ...]
    fn: Callable[..., torch.Tensor]
    _channels: Callable[..., int]
    _num_codes: Callable[..., tuple[int, ...] | None]
    _max_codes: Callable[..., tuple[int, ...] | None]

    def resolve(self, **params: Any) -> dict[str, Any]:
        """Validated parameters with defaults filled in; unknown names raise ``ConfigError``."""
        known = {p.name: p for p in self.params}
        for key in params:
            if key not in known:
                listed = ", ".join(known) or "none"
                raise ConfigError(
                    f"descriptor {self.name!r} has no parameter {key!r}; its parameters: {listed}"
                )
        return {
            name: p.validate(self.name, params[name]) if name in params else p.default
            for name, p in known.items()
        }

    def channels(self, **params: Any) -> int:
        return self._channels(**self.resolve(**params))

    def num_codes(self, **params: Any) -> tuple[int, ...] | None:
        return self._num_codes(**self.resolve(**params))

    def max_codes(self, **params: Any) -> tuple[int, ...] | None:
        return self._max_codes(**self.resolve(**params))

    def encodings(self, **params: Any) -> tuple[str, ...]:
        """Encodings that apply: ``bits`` needs integer codes, ``hist`` a code set of at most
        ``MAX_HIST_CODES`` per channel (continuous maps bin their values)."""
        if self.max_codes(**params) is None:
            return ("map", "hist")
        codes = self.num_codes(**params)
        if codes is not None and max(codes) > MAX_HIST_CODES:
            return ("map", "bits")
        return ENCODINGS

    def compute(self, gray: torch.Tensor, **params: Any) -> torch.Tensor:
        resolved = self.resolve(**params)
        check_gray(gray)
        return self.fn(gray, **resolved)


def check_gray(gray: Any) -> None:
    """``ValueError`` naming the problem unless ``gray`` is a float ``[B >= 1, 1, H, W]``."""
    if not isinstance(gray, torch.Tensor):
        raise ValueError(f"gray must be a torch.Tensor [B, 1, H, W], got {type(gray).__name__}")
    if gray.ndim != 4 or gray.shape[1] != 1:
        raise ValueError(
            f"gray has shape {tuple(gray.shape)}; allowed: [B, 1, H, W] (use to_gray for RGB)"
        )
    if gray.dtype not in FLOAT_DTYPES:
        raise ValueError(
            f"gray dtype is {gray.dtype}; allowed: float16, bfloat16, float32, float64 "
            "(0..255 scale; to_gray makes one from uint8 RGB)"
        )
    if gray.shape[0] == 0:
        raise ValueError("gray is an empty batch (B = 0); allowed: B >= 1")
    if gray.shape[2] == 0 or gray.shape[3] == 0:
        raise ValueError(f"gray has shape {tuple(gray.shape)}; allowed: H >= 1 and W >= 1")


def _lbp_impl() -> Callable[..., torch.Tensor]:
    """Eager ``lbp.lbp`` or the fused ``fused.lbp``, as ``fused.get_backend()`` says."""
    return _fused.lbp if _fused.get_backend() == "compiled" else _lbp.lbp


def _lbp_fn(gray: torch.Tensor, P: int, R: float, method: str) -> torch.Tensor:
    return _lbp_impl()(gray, P, R, method)


def _lbp_num_codes(P: int, R: float, method: str) -> tuple[int, ...] | None:
    n = _lbp.num_codes(P, method)
    return None if n is None else (n,)


def _lbp_max_codes(P: int, R: float, method: str) -> tuple[int, ...] | None:
    return None if method == "var" else (_lbp.max_code(P, method),)


def _mslbp_fn(gray: torch.Tensor) -> torch.Tensor:
    impl = _lbp_impl()
    return torch.cat([impl(gray, P, R, "uniform") for P, R in MSLBP_SCALES], 1)


_P = Param("P", 8, "int", *_lbp.P_RANGE)
_R = Param("R", 1.0, "real", 0.0, None, low_open=True)
_METHOD = Param("method", "uniform", "choice", choices=_lbp.METHODS)

DESCRIPTORS: dict[str, DescriptorSpec] = {
    "lbp": DescriptorSpec(
        "lbp",
        "circular LBP (P, R, method), bit-exact to skimage in float64",
        (_P, _R, _METHOD),
        _lbp_fn,
        lambda **p: 1,
        _lbp_num_codes,
        _lbp_max_codes,
    ),
    "mslbp": DescriptorSpec(
        "mslbp",
        "multi-scale uniform LBP: channels (8, 1), (16, 2), (24, 3)",
        (),
        _mslbp_fn,
        lambda: len(MSLBP_SCALES),
        lambda: tuple(P + 2 for P, _ in MSLBP_SCALES),
        lambda: tuple(P + 1 for P, _ in MSLBP_SCALES),
    ),
    "ltp": DescriptorSpec(
        "ltp",
        "local ternary pattern (3x3 ring, threshold t): upper and lower codes",
        (Param("t", 5.0, "real", 0.0, None),),
        _ltp,
        lambda t: 2,
        lambda t: (256, 256),
        lambda t: (255, 255),
    ),
    "ldp": DescriptorSpec(
        "ldp",
        "local directional pattern: bits of the k strongest |Kirsch| responses",
        (Param("k", 3, "int", *_kirsch.K_RANGE),),
        _kirsch.ldp,
        lambda k: 1,
        lambda k: (_kirsch.ldp_num_codes(k),),
        lambda k: (max(_kirsch.ldp_codes(k)),),
    ),
    "ldn": DescriptorSpec(
        "ldn",
        "local directional number: 8 * argmax + argmin of the Kirsch responses",
        (),
        _kirsch.ldn,
        lambda: 1,
        lambda: (64,),
        lambda: (63,),
    ),
    "hog": DescriptorSpec(
        "hog",
        "cell orientation histograms, 3x3-block L2-normalised, repeated over each cell",
        (
            Param("cell", 8, "int", *_hog.CELL_RANGE),
            Param("bins", 9, "int", *_hog.BINS_RANGE),
        ),
        _hog.hog,
        lambda cell, bins: bins,
        lambda cell, bins: None,
        lambda cell, bins: None,
    ),
}


def get(name: Any) -> DescriptorSpec:
    """The spec of ``name``; an unknown name raises ``ConfigError`` listing the known ones."""
    if not isinstance(name, str) or name not in DESCRIPTORS:
        raise ConfigError(f"unknown descriptor {name!r}; allowed: {', '.join(sorted(DESCRIPTORS))}")
    return DESCRIPTORS[name]


def compute(name: str, gray: torch.Tensor, **params: Any) -> torch.Tensor:
    """Descriptor map ``[B, C, H, W]`` of grey images ``[B, 1, H, W]`` (float, 0..255 scale).

    Same device as ``gray``; same float dtype (codes are stored as float values). Bad input
    (rank, dtype, empty batch, unknown descriptor / parameter, value out of range) raises a
    ``ValueError`` (``ConfigError`` for names and parameters) naming it and what is allowed.
    """
    return get(name).compute(gray, **params)
