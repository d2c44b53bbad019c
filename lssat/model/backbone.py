"""Create a timm backbone for L-SSAT and decide which masking path it takes.

Families:

- ``vit``: any ``timm`` ``VisionTransformer`` (incl. DeiT, distilled DeiT, register / SigLIP
  variants, and hybrid ViTs with a CNN stem, masked before the stem): true MAE, the encoder
  runs on the visible tokens only.
- ``dense``: any model whose ``feature_info`` stages return 4-D maps, channels first (ResNet,
  ConvNeXt, EfficientNet, MobileNet, RegNet, DenseNet, MaxViT, ...) or channels last (Swin):
  masked patches are zeroed and the mask is re-applied after each stage (ConvNeXt-V2's dense
  approximation of sparse convolution).
- anything else (token-sequence models that are not ``VisionTransformer``, e.g. EVA, LeViT)
  is refused with a :class:`~lssat.errors.ConfigError`.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import timm
import torch
from timm.layers import PatchEmbed
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from lssat.errors import ConfigError
from lssat.weights import timm_kwargs


@dataclass
class StageInfo:
    """One backbone stage: module name, channels, output ``[H, W]`` and layout (NCHW/NHWC)."""

    module: str
    channels: int
    size: tuple[int, int]
    channels_last: bool


@dataclass
class Backbone:
    """A created timm model and what the L-SSAT wrapper needs to know about it."""

    model: nn.Module
    family: str  # "vit" | "dense"
    stages: list[StageInfo] = field(default_factory=list)
    final_channels_last: bool = False
    final_size: tuple[int, int] = (0, 0)


def _timm_create(name: str, device: Any = None, **kwargs: Any) -> nn.Module:
    """``timm.create_model``; ``img_size`` (and a zero ``drop_path_rate``) is dropped for models
    that do not take it."""
    optional = {"img_size"} | ({"drop_path_rate"} if not kwargs.get("drop_path_rate") else set())
    while True:
        try:
            with torch.device(device) if device is not None else nullcontext():
                return timm.create_model(name, **kwargs)
        except TypeError as err:
            drop = [k for k in optional if k in kwargs and k in str(err)]
            if not drop:
                raise
            kwargs = {k: v for k, v in kwargs.items() if k not in drop}


def _fail(config: Any, why: str) -> ConfigError:
    return ConfigError(f"config field 'backbone' is {config.backbone!r}: {why}")


def create_backbone(config: Any, num_outputs: int) -> Backbone:
    """Create ``config.backbone`` with a ``num_outputs`` head and classify its family.

    ViTs get ``img_size`` and ``patch_size = config.patch_size`` (timm resamples pretrained
    patch and position embeddings); other models get ``img_size`` only when they take it.
    """
    base = {"img_size": config.img_size}
    try:
        probe = _timm_create(config.backbone, device="meta", pretrained=False, **base)
    except Exception as err:  # noqa: BLE001 - any failure here is a bad backbone choice
        raise _fail(config, f"timm cannot build it at img_size {config.img_size} ({err})") from err
    # pretrained: a local <$LSSAT_WEIGHTS>/<backbone>.safetensors (see lssat.weights), else timm's.
    # drop_path is always passed: some models (Swin: 0.1) default to stochastic depth, which
    # would make the masked pass random where the config says 0
    kwargs: dict[str, Any] = dict(
        base,
        num_classes=num_outputs,
        drop_path_rate=config.drop_path,
        **timm_kwargs(config.backbone, config.pretrained),
    )
    if isinstance(probe, VisionTransformer):
        if isinstance(probe.patch_embed, PatchEmbed):
            kwargs["patch_size"] = config.patch_size
        else:  # hybrid ViT: the CNN stem fixes the token stride
            stride = config.img_size // probe.patch_embed.grid_size[0]
            if stride != config.patch_size:
                raise _fail(
                    config,
                    f"this hybrid ViT has a token stride of {stride}, so patch_size must be "
                    f"{stride}, not {config.patch_size}",
                )
    try:
        model = _timm_create(config.backbone, **kwargs)
    except Exception as err:  # noqa: BLE001
        raise _fail(config, f"timm failed to create it ({err})") from err
    if isinstance(model, VisionTransformer):
        if not hasattr(model, "_pos_embed") or model.patch_embed.grid_size is None:
            raise _fail(config, "this VisionTransformer lacks the patch/position API MAE needs")
        return Backbone(model=model, family="vit")
    return _probe_dense(config, model)


def _probe_dense(config: Any, model: nn.Module) -> Backbone:
    """Run one image through a non-ViT model to learn its stage shapes (meta device if possible)."""
    infos = getattr(model, "feature_info", None)
    if not infos:
        raise _fail(config, "it has no feature_info stages for the dense masking path")
    names = [d["module"] for d in infos]
    chans = [int(d["num_chs"]) for d in infos]
    shapes: dict[str, Any] = {}
    hooks = []
    for name in names:
        mod = model.get_submodule(name)
        hooks.append(
            mod.register_forward_hook(
                lambda _m, _i, o, n=name: shapes.__setitem__(
                    n, tuple(o.shape) if torch.is_tensor(o) else type(o).__name__
                )
            )
        )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(1, 3, config.img_size, config.img_size)
            final = tuple(model.forward_features(x).shape)
    except Exception as err:  # noqa: BLE001
        raise _fail(config, f"it cannot run at img_size {config.img_size} ({err})") from err
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)

    def layout(shape: Any, c: int, what: str) -> bool:
        if isinstance(shape, tuple) and len(shape) == 4:
            if shape[1] == c:
                return False
            if shape[3] == c:
                return True
        raise _fail(
            config,
            f"its {what} gives {shape}, not a [B, C, H, W] or [B, H, W, C] map; supported are "
            "timm VisionTransformers (vit_*, deit_*) and models with 4-D stage maps (CNNs, Swin)",
        )

    stages = []
    for name, c in zip(names, chans, strict=True):
        shape = shapes.get(name)
        last = layout(shape, c, f"stage {name!r}")
        size = (shape[1], shape[2]) if last else (shape[2], shape[3])
        stages.append(StageInfo(name, c, size, last))
    num_features = int(getattr(model, "num_features", 0))
    final_last = layout(final, num_features, "forward_features output")
    final_size = (final[1], final[2]) if final_last else (final[2], final[3])
    return Backbone(model, "dense", stages, final_last, final_size)
