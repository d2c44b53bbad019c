"""L-SSAT model factory: ``build(config, num_outputs) -> LSSATModel`` for any supported backbone.

See ``docs/model.md`` for the two masking paths (ViT and hybrid ViT: true MAE; CNN/Swin: dense
masking), the no-leak rule (the masked pass sees visible patches only) and which backbones are
refused.
"""

from __future__ import annotations

from typing import Any

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, resolve_model_data_config

from lssat.errors import ConfigError
from lssat.model.backbone import Backbone, create_backbone
from lssat.model.dense import DenseMAE
from lssat.model.lssat import DescriptorAdapter, LSSATModel
from lssat.model.vit import ViTMAE
from lssat.tasks import get_task

__all__ = ["Backbone", "DescriptorAdapter", "LSSATModel", "build", "target_dim"]


def target_dim(config: Any) -> int:
    """Values per patch the decoder predicts (``D`` of the ``[B, L, D]`` target)."""
    if config.reconstruct == "rgb":
        return 3 * config.patch_size**2
    from lssat import descriptors

    return int(
        descriptors.target_dim(
            config.descriptor, config.encoding, config.patch_size, **config.descriptor_params()
        )
    )


def build(config: Any, num_outputs: int | None = None) -> LSSATModel:
    """The L-SSAT model for ``config`` with a ``num_outputs``-wide head (default: the task's).

    The model is in training mode, on the CPU; ``aux_weight == 0`` builds no decoder.
    """
    task = get_task(config.task)
    if num_outputs is None:
        num_outputs = task.num_outputs()
    backbone = create_backbone(config, num_outputs)
    dim = target_dim(config) if config.uses_aux else None
    if backbone.family == "vit":
        if config.uses_aux and config.decoder_dim % 4:
            raise ConfigError(
                f"config field 'decoder_dim' is {config.decoder_dim}; the ViT decoder's sin-cos "
                "positions need a multiple of 4"
            )
        net = ViTMAE(
            backbone.model, dim, config.decoder_dim, config.decoder_depth, config.decoder_heads
        )
    else:
        grid = (config.img_size // config.patch_size,) * 2
        net = DenseMAE(backbone, grid, dim, config.decoder_dim, config.decoder_depth)
    data_cfg = resolve_model_data_config(backbone.model)
    mean, std = tuple(data_cfg["mean"]), tuple(data_cfg["std"])
    if len(mean) != 3 or len(std) != 3:  # e.g. a one-channel model's statistics
        mean, std = IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    return LSSATModel(config, net, task, mean, std)
