"""The L-SSAT model: one timm encoder, a masked (auxiliary) pass and a full (primary) pass.

``loss = aux_weight * loss_aux + (1 - aux_weight) * loss_primary``. The masked pass runs only
in training and only when ``aux_weight > 0``; evaluation is the full pass alone.

No-leak rule: the masked pass's input is computed from the visible patches only (RGB: removed
patches zeroed by the net; descriptor: computed on the image with removed pixels set to the
mean colour), while its target is always computed from the full image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lssat import descriptors as D
from lssat.errors import DataError
from lssat.masking import PatchMask, patchify, random_masking, upsample_mask
from lssat.tasks import TaskSpec


class DescriptorAdapter(nn.Module):
    """Feeds a descriptor map to a 3-channel stem: ``[B, C, H, W]`` in [0, 1] -> ``[B, 3, H, W]``.

    Centres the map to [-1, 1] and mixes its channels with a learned 1x1 convolution, so the
    same encoder (and its pretrained stem) can take RGB in one pass and a descriptor in the other.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, 3, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x * 2.0 - 1.0)


class LSSATModel(nn.Module):
    """Encoder + decoder + task head; ``forward(batch) -> dict`` of losses and logits.

    ``batch["image"]``: uint8 ``[B, 3, S, S]`` (augmented, un-normalised); ``batch["label"]``
    optional (no losses without it). Returns ``loss``, ``loss_primary``, ``loss_aux``
    (scalars) and ``logits`` ``[B, K]``.
    """

    def __init__(self, config: Any, net: nn.Module, task: TaskSpec, mean: Any, std: Any) -> None:
        super().__init__()
        self.config = config
        self.task = task
        self.net = net
        self.grid: tuple[int, int] = tuple(net.grid)  # type: ignore[assignment]
        self.patch = config.patch_size
        self.num_patches = self.grid[0] * self.grid[1]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255, persistent=False)
        fill = (torch.tensor(mean).view(1, 3, 1, 1) * 255).round().to(torch.uint8)
        self.register_buffer("fill", fill, persistent=False)  # removed pixels, descriptor input
        self.desc_params = config.descriptor_params()
        desc_in = (config.uses_aux and config.mask_input == "descriptor") or (
            config.classify_input == "descriptor"
        )
        self.adapter = (
            DescriptorAdapter(D.DESCRIPTORS[config.descriptor].channels(**self.desc_params))
            if desc_in
            else None
        )

    # ------------------------------------------------------------------ inputs
    def _needs_descriptor(self, masked: bool) -> bool:
        """Whether the full image's descriptor is needed (the masked input never uses it)."""
        c = self.config
        return c.classify_input == "descriptor" or (masked and c.reconstruct == "descriptor")

    def prepare(self, images: torch.Tensor, descriptor: bool) -> dict[str, torch.Tensor]:
        """uint8 ``[B, 3, S, S]`` -> ``image`` (the input itself), ``rgb`` (normalised float
        ``[B, 3, S, S]``) and, if ``descriptor``, ``desc`` (the full image's raw map
        ``[B, C, S, S]``) and, when the full pass classifies the descriptor, ``desc01`` (the
        map in [0, 1]); descriptors are computed without gradients, in float32, on the batch's
        device, from the un-normalised grey image."""
        size = self.config.img_size
        if (
            images.dtype != torch.uint8
            or images.ndim != 4
            or images.shape[1] != 3
            or tuple(images.shape[-2:]) != (size, size)
        ):
            raise DataError(
                f"batch 'image' has shape {tuple(images.shape)} and dtype {images.dtype}; the "
                f"model expects [B, 3, {size}, {size}] torch.uint8 (config img_size {size})"
            )
        out = {"image": images, "rgb": (images.float() - self.mean) / self.std}
        if descriptor:
            out["desc"] = self._descriptor(images)
            if self.config.classify_input == "descriptor":
                out["desc01"] = self._normalize(out["desc"])
        return out

    def _descriptor(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, 3, S, S]`` -> raw descriptor map ``[B, C, S, S]`` (float32, no grad)."""
        with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
            return D.compute(self.config.descriptor, D.to_gray(images), **self.desc_params)

    def _normalize(self, desc: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), torch.autocast(desc.device.type, enabled=False):
            return D.normalize(desc, self.config.descriptor, **self.desc_params)

    def visible_descriptor(self, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The masked pass's descriptor input, from the visible pixels only: uint8 ``[B, 3, S, S]``
        and ``mask`` ``[B, L]`` (1 = removed) -> map in [0, 1] ``[B, C, S, S]``.

        Every pixel of a removed patch is set to ``fill`` (the backbone's mean colour, the colour
        of a zeroed normalised pixel) before the descriptor is computed, so no descriptor value
        depends on a removed pixel, however far the descriptor reaches (LBP radius, HOG blocks).
        Inside visible regions, away from removed patches, the map equals the full image's.
        """
        removed = upsample_mask(mask, self.grid, tuple(images.shape[-2:])).bool()
        filled = torch.where(removed, self.fill, images)
        return self._normalize(self._descriptor(filled))

    def _input(self, x: dict[str, torch.Tensor], modality: str) -> torch.Tensor:
        return x["rgb"] if modality == "rgb" else self.adapter(x["desc01"])

    def target(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        """Reconstruction target ``[B, L, D]``: encoded descriptor, or normalised RGB patches."""
        c = self.config
        if c.reconstruct == "rgb":
            t = patchify(x["rgb"], self.patch)
        else:
            with torch.no_grad(), torch.autocast(x["desc"].device.type, enabled=False):
                t = D.encode(x["desc"], c.descriptor, c.encoding, self.patch, **self.desc_params)
        t = t.float()
        if c.norm_target:
            mean, var = t.mean(-1, keepdim=True), t.var(-1, keepdim=True)
            t = (t - mean) / (var + 1e-6).sqrt()
        return t

    # ----------------------------------------------------------------- passes
    def masked_pass(
        self, x: dict[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, PatchMask]:
        """Masked pass: (prediction ``[B, L, D]``, target ``[B, L, D]``, mask)."""
        rgb = x["rgb"]
        pm = random_masking(
            rgb.shape[0], self.num_patches, self.config.mask_ratio, rgb.device, generator
        )
        if self.config.mask_input == "descriptor":
            inp = self.adapter(self.visible_descriptor(x["image"], pm.mask))
        else:
            inp = rgb
        pred = self.net.masked(inp, pm)
        return pred, self.target(x), pm

    @staticmethod
    def aux_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MSE per patch, averaged over the removed patches only (``mask`` 1 = removed)."""
        per_patch = (pred.float() - target).pow(2).mean(-1)
        return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        masked = self.training and self.config.uses_aux
        x = self.prepare(batch["image"], self._needs_descriptor(masked))
        out: dict[str, torch.Tensor] = {}
        w = float(self.config.aux_weight)
        if masked:
            pred, target, pm = self.masked_pass(x)
            loss_aux = self.aux_loss(pred, target, pm.mask)
        else:
            loss_aux = x["rgb"].new_zeros(())
        logits = self.net.full(self._input(x, self.config.classify_input))
        out["logits"] = logits
        if "label" in batch:
            loss_primary = self.task.loss(logits, batch["label"], self.config.label_smoothing)
            out["loss_primary"] = loss_primary
            out["loss_aux"] = loss_aux
            out["loss"] = w * loss_aux + (1.0 - w) * loss_primary
        else:
            out["loss_aux"] = loss_aux
        return out

    @torch.no_grad()
    def visualise(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor] | None:
        """One masked pass on uint8 ``images``, its mask drawn from ``generator`` (the public way
        for pictures and checks to see the masked pass): ``pred``/``target`` ``[B, L, D]``,
        ``mask`` ``[B, L]`` (1 = removed), ``rgb`` ``[B, 3, S, S]`` normalised. Runs in the
        model's current mode, without gradients. None without a decoder."""
        if not self.config.uses_aux:
            return None
        x = self.prepare(images, self._needs_descriptor(True))
        pred, target, pm = self.masked_pass(x, generator)
        return {"pred": pred.float(), "target": target, "mask": pm.mask, "rgb": x["rgb"]}

    def no_weight_decay(self) -> set[str]:
        """Parameter names exempt from weight decay (norms and biases are exempt anyway)."""
        return {f"net.{n}" for n in self.net.no_weight_decay()}

    def inference_parameters(self) -> int:
        """Parameters used by the full pass (encoder + head + adapter; no decoder)."""
        decoder = getattr(self.net, "decoder", None)
        skip = {id(p) for p in decoder.parameters()} if decoder is not None else set()
        return sum(p.numel() for p in self.parameters() if id(p) not in skip)
