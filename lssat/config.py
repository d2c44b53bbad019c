"""One flat, validated config per trial; Optuna's sampled dict maps onto it.

Loss convention (stated once, here and in the README):
``loss = aux_weight * loss_aux + (1 - aux_weight) * loss_primary``;
``aux_weight = 0`` is the plain supervised baseline (no masked pass at all).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

from lssat.errors import ConfigError

MODALITIES_MASK = ("rgb", "descriptor")
MODALITIES_RECON = ("descriptor", "rgb")
MODALITIES_CLASSIFY = ("rgb", "descriptor")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")

# descriptor -> the config fields that parametrise it (as compute() keyword names)
DESCRIPTOR_PARAMS: dict[str, dict[str, str]] = {
    "lbp": {"P": "desc_P", "R": "desc_R", "method": "desc_method"},
    "mslbp": {},
    "ltp": {"t": "desc_t"},
    "ldp": {"k": "desc_k"},
    "ldn": {},
    "hog": {"cell": "desc_cell", "bins": "desc_bins"},
}


@dataclass
class TrialConfig:
    """Every knob a search may turn, flat, so an Optuna dict maps straight onto it."""

    # what to learn
    task: str = "deepfake"
    backbone: str = "vit_tiny_patch16_224"
    pretrained: bool = False
    img_size: int = 64
    patch_size: int = 16  # masking patch (== token patch for ViTs)
    drop_path: float = 0.0
    # the auxiliary task
    aux_weight: float = 0.5
    mask_ratio: float = 0.75
    descriptor: str = "ldp"
    encoding: str = "hist"
    mask_input: str = "rgb"
    reconstruct: str = "descriptor"
    classify_input: str = "rgb"
    desc_P: int = 8
    desc_R: float = 1.0
    desc_method: str = "uniform"
    desc_t: float = 5.0
    desc_k: int = 3
    desc_cell: int = 8
    desc_bins: int = 9
    decoder_dim: int = 128
    decoder_depth: int = 2
    decoder_heads: int = 4
    norm_target: bool = True  # standardise each target patch (MAE's norm_pix_loss); our choice
    # optimisation
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    min_lr: float = 1e-6
    epochs: int = 10
    batch_size: int = 64
    grad_clip: float = 1.0
    label_smoothing: float = 0.0
    # runtime
    seed: int = 0
    precision: str = "auto"
    device: str = "auto"
    num_workers: int = 0
    train_subset: int = 0  # 0 = all
    val_subset: int = 0  # 0 = all
    checkpoint_every: int = 1  # epochs between checkpoints handed to report()
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes, never used by code

    def __post_init__(self) -> None:
        self._coerce_types()
        self.validate()

    # ------------------------------------------------------------------ mapping
    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrialConfig:
        """Build from a flat dict; an unknown key is a ConfigError naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown config key {unknown[0]!r}; known keys are: {', '.join(sorted(known))}"
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Flat dict of every field (JSON-able)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrialConfig:
        """A validated copy with some fields changed."""
        return TrialConfig.from_dict({**self.to_dict(), **changes})

    def descriptor_params(self) -> dict[str, Any]:
        """Keyword arguments for ``lssat.descriptors.compute`` of the chosen descriptor."""
        return {k: getattr(self, f) for k, f in DESCRIPTOR_PARAMS[self.descriptor].items()}

    @property
    def uses_aux(self) -> bool:
        """True when the masked pass runs (aux_weight > 0)."""
        return self.aux_weight > 0

    # --------------------------------------------------------------- validation
    def _coerce_types(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            if kind == "int" and isinstance(value, float) and value.is_integer():
                setattr(self, f.name, int(value))
            elif kind == "float" and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, float(value))
            value = getattr(self, f.name)
            expected = {"int": int, "float": float, "bool": bool, "str": str}.get(kind)
            if expected is None:
                continue
            ok = isinstance(value, expected) and not (
                expected is not bool and isinstance(value, bool)
            )
            if not ok:
                raise ConfigError(
                    f"config field {f.name!r} must be {kind}, got {value!r} "
                    f"({type(value).__name__})"
                )

    def validate(self) -> None:
        """Raise ConfigError naming the field, the value and what is allowed."""
        from lssat.descriptors import DESCRIPTORS, ENCODINGS
        from lssat.tasks import TASKS

        def choice(name: str, allowed: tuple[str, ...] | list[str]) -> None:
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(
                    f"config field {name!r} is {value!r}; allowed: {', '.join(map(str, allowed))}"
                )

        def within(
            name: str,
            lo: float,
            hi: float,
            lo_open: bool = False,
            hi_open: bool = False,
            why_hi: str = "",
        ) -> None:
            value = getattr(self, name)
            bad = not math.isfinite(value) or value > hi or value < lo
            if bad or (lo_open and value == lo) or (hi_open and value == hi):
                left, right = "(" if lo_open else "[", ")" if hi_open else "]"
                raise ConfigError(
                    f"config field {name!r} is {value!r}; allowed range {left}{lo}, {hi}{right}"
                    + (f" ({why_hi})" if why_hi and value >= hi else "")
                )

        choice("task", sorted(TASKS))
        choice("descriptor", sorted(DESCRIPTORS))
        choice("encoding", list(ENCODINGS))
        choice("mask_input", MODALITIES_MASK)
        choice("reconstruct", MODALITIES_RECON)
        choice("classify_input", MODALITIES_CLASSIFY)
        choice("precision", PRECISIONS)
        choice("device", DEVICES)
        self._validate_backbone()
        within("img_size", 8, 1024)
        within("patch_size", 1, 256)
        if self.img_size % self.patch_size:
            raise ConfigError(
                f"config field 'img_size' is {self.img_size}; it must be a multiple of "
                f"patch_size {self.patch_size}"
            )
        within("drop_path", 0.0, 0.9)
        no_head = "at 1 the task head gets no gradient and evaluation would score an untrained head"
        within("aux_weight", 0.0, 1.0, hi_open=True, why_hi=no_head)
        within("mask_ratio", 0.0, 0.95)
        within("desc_P", 4, 24)
        within("desc_R", 0.0, 64.0, lo_open=True)
        choice("desc_method", ("default", "ror", "uniform", "nri_uniform", "var"))
        within("desc_t", 0.0, 255.0)
        within("desc_k", 1, 7)
        within("desc_cell", 2, 64)
        within("desc_bins", 2, 36)
        within("decoder_dim", 8, 4096)
        within("decoder_depth", 1, 32)
        within("decoder_heads", 1, 64)
        if self.decoder_dim % self.decoder_heads:
            raise ConfigError(
                f"config field 'decoder_dim' is {self.decoder_dim}; it must be a multiple of "
                f"decoder_heads {self.decoder_heads}"
            )
        within("lr", 0.0, 10.0, lo_open=True)
        within("weight_decay", 0.0, 10.0)
        within("warmup_epochs", 0.0, 1000.0)
        within("min_lr", 0.0, 10.0)
        within("epochs", 1, 100000)
        within("batch_size", 1, 65536)
        within("grad_clip", 0.0, 1e6)
        within("label_smoothing", 0.0, 0.5)
        within("num_workers", 0, 256)
        within("train_subset", 0, 1 << 40)
        within("val_subset", 0, 1 << 40)
        within("checkpoint_every", 1, 100000)
        if self.uses_aux and (self.img_size // self.patch_size) ** 2 < 2:
            raise ConfigError(
                f"config field 'patch_size' is {self.patch_size}; with img_size {self.img_size} "
                "it leaves fewer than 2 patches to mask (use a smaller patch or aux_weight = 0)"
            )
        if self.uses_aux and self.mask_ratio <= 0:
            raise ConfigError(
                "config field 'mask_ratio' is 0 while aux_weight > 0; the auxiliary task needs "
                "masked patches (use aux_weight = 0 for the supervised baseline)"
            )
        if self.uses_aux and self.reconstruct == "descriptor":
            allowed = DESCRIPTORS[self.descriptor].encodings(**self.descriptor_params())
            if self.encoding not in allowed:
                raise ConfigError(
                    f"config field 'encoding' is {self.encoding!r}, which descriptor "
                    f"{self.descriptor!r} with {self.descriptor_params()} does not support; "
                    f"allowed: {', '.join(allowed)}"
                )

    def _validate_backbone(self) -> None:
        import timm

        if not timm.is_model(self.backbone):
            close = timm.list_models(f"*{self.backbone.split('_')[0]}*")[:5]
            hint = f"; similar names: {', '.join(close)}" if close else ""
            raise ConfigError(
                f"config field 'backbone' is {self.backbone!r}, which timm does not know{hint}"
            )
