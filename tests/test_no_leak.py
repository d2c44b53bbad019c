"""The masked pass sees nothing of what it reconstructs, for every backbone family and modality.

Replacing only the removed pixels by noise must leave the masked-pass prediction of every patch
unchanged (same mask seed, train mode): the prediction is a function of the visible patches.
"""

from __future__ import annotations

import pytest
import torch

from lssat.config import TrialConfig
from lssat.masking import upsample_mask
from lssat.model import build

# family -> (backbone, img_size, patch_size); hybrid ViTs need patch_size = token stride (32)
FAMILIES = {
    "vit": ("vit_tiny_patch16_224", 32, 8),
    "resnet": ("resnet18", 32, 8),
    "convnext": ("convnext_atto", 32, 8),
    "efficientnet": ("efficientnet_b0", 32, 8),
    "mobilenet": ("mobilenetv3_small_100", 32, 8),
    "hybrid_vit": ("vit_tiny_r_s16_p8_224", 64, 32),
    "swin": ("swin_tiny_patch4_window7_224", 32, 8),
}
# each descriptor at its widest reach (HOG: cells smaller than a patch, 3x3-cell blocks)
DESCRIPTORS = {
    "lbp": {"descriptor": "lbp", "desc_P": 16, "desc_R": 2.0, "desc_method": "uniform"},
    "mslbp": {"descriptor": "mslbp"},
    "ltp": {"descriptor": "ltp", "desc_t": 2.0},
    "ldp": {"descriptor": "ldp", "desc_k": 3},
    "ldn": {"descriptor": "ldn"},
    "hog": {"descriptor": "hog", "desc_cell": 4, "desc_bins": 9},
}
CASES = [(f, "rgb", None) for f in FAMILIES] + [
    (f, "descriptor", d) for f in FAMILIES for d in DESCRIPTORS
]


def _masked_pass(model: torch.nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    return model.visualise(images, torch.Generator().manual_seed(123))


@pytest.mark.parametrize(
    ("family", "mask_input", "descriptor"),
    CASES,
    ids=[f"{f}-{m}" + (f"-{d}" if d else "") for f, m, d in CASES],
)
def test_masked_pass_is_blind_to_removed_pixels(
    family: str, mask_input: str, descriptor: str | None
) -> None:
    backbone, size, patch = FAMILIES[family]
    desc = DESCRIPTORS[descriptor] if descriptor else {"descriptor": "ldp"}
    config = TrialConfig(
        backbone=backbone, img_size=size, patch_size=patch, mask_ratio=0.5,
        mask_input=mask_input, reconstruct="descriptor", encoding="map",
        decoder_dim=32, decoder_depth=1, **desc,
    )  # fmt: skip
    torch.manual_seed(0)
    model = build(config).train()
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8, generator=g)
    first = _masked_pass(model, images)
    grid = model.grid
    removed = upsample_mask(first["mask"], grid, (size, size)).bool().expand(-1, 3, -1, -1)
    assert removed.any() and not removed.all()
    noise = torch.randint(0, 256, images.shape, dtype=torch.uint8, generator=g)
    second = _masked_pass(model, torch.where(removed, noise, images))
    assert torch.equal(first["mask"], second["mask"])
    moved = (first["pred"] - second["pred"]).abs().max().item()
    assert moved <= 1e-5, f"{backbone} {mask_input} {descriptor}: prediction moved by {moved:.3g}"
    # the check can fail: changing visible pixels does move the prediction
    third = _masked_pass(model, torch.where(removed, images, noise))
    assert (first["pred"] - third["pred"]).abs().max().item() > 1e-3
