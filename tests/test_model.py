"""The L-SSAT model: both passes for every default backbone, modalities, masking paths."""

from __future__ import annotations

import pytest
import torch

from lssat.config import TrialConfig
from lssat.errors import ConfigError, DataError
from lssat.model import build
from lssat.model.dense import DenseMAE
from lssat.model.vit import ViTMAE

# exactly the backbones of the default search spaces (spaces/*.yaml)
DEFAULT_BACKBONES = [
    "vit_tiny_patch16_224",
    "deit_tiny_patch16_224",
    "resnet18",
    "convnext_atto",
    "mobilenetv3_small_100",
    "efficientnet_b0",
]
SIZE, PATCH = 32, 8


def _batch(n: int = 2, size: int = SIZE, seed: int = 0, classes: int = 2) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
        "label": torch.randint(0, classes, (n,), generator=g),
    }


def _config(**kw: object) -> TrialConfig:
    base = {"img_size": SIZE, "patch_size": PATCH, "decoder_dim": 32, "decoder_depth": 1}
    return TrialConfig.from_dict({**base, **kw})


def _check_all_gradients(model: torch.nn.Module) -> None:
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad[:5]}"


@pytest.mark.parametrize("backbone", DEFAULT_BACKBONES)
def test_both_passes_every_parameter_gets_a_gradient(backbone: str) -> None:
    torch.manual_seed(0)
    model = build(_config(backbone=backbone, descriptor="ldp", encoding="hist"))
    assert isinstance(model.net, ViTMAE if "vit" in backbone or "deit" in backbone else DenseMAE)
    out = model(_batch())
    assert out["logits"].shape == (2, 1)
    for key in ("loss", "loss_primary", "loss_aux"):
        assert out[key].ndim == 0 and torch.isfinite(out[key]), key
    assert out["loss_aux"] > 0
    expected = 0.5 * out["loss_aux"] + 0.5 * out["loss_primary"]
    assert torch.isclose(out["loss"], expected)
    out["loss"].backward()
    _check_all_gradients(model)
    pm_target = model.target(model.prepare(_batch()["image"], True))
    assert pm_target.shape[:2] == (2, (SIZE // PATCH) ** 2)

    model.eval()  # evaluation: the full pass only
    with torch.no_grad():
        ev = model(_batch())
    assert ev["loss_aux"] == 0 and ev["logits"].shape == (2, 1)


@pytest.mark.parametrize("backbone", ["vit_tiny_patch16_224", "resnet18"])
@pytest.mark.parametrize(
    ("mask_input", "reconstruct", "classify_input", "encoding"),
    [
        ("descriptor", "rgb", "rgb", "map"),
        ("rgb", "descriptor", "descriptor", "bits"),
        ("descriptor", "descriptor", "rgb", "map"),
    ],
)
def test_modalities(
    backbone: str, mask_input: str, reconstruct: str, classify_input: str, encoding: str
) -> None:
    cfg = _config(
        backbone=backbone, task="emotion", descriptor="lbp", encoding=encoding,
        mask_input=mask_input, reconstruct=reconstruct, classify_input=classify_input,
    )  # fmt: skip
    model = build(cfg)
    assert (model.adapter is not None) == ("descriptor" in (mask_input, classify_input))
    out = model(_batch(classes=8))
    assert out["logits"].shape == (2, 8)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    _check_all_gradients(model)


def test_supervised_baseline_has_no_masked_pass() -> None:
    model = build(_config(backbone="resnet18", aux_weight=0.0))
    assert model.net.decoder is None
    calls = []
    model.net.masked = lambda *a: calls.append(a)  # type: ignore[method-assign]
    out = model(_batch())
    assert not calls and out["loss_aux"] == 0
    assert torch.equal(out["loss"], out["loss_primary"])
    out["loss"].backward()
    _check_all_gradients(model)


def test_vit_encoder_sees_visible_tokens_only() -> None:
    model = build(_config(backbone="deit_tiny_patch16_224", mask_ratio=0.75))
    seen = []
    model.net.encoder.blocks[0].register_forward_hook(lambda _m, i, _o: seen.append(i[0].shape))
    model(_batch())
    masked, full = seen  # masked pass first, then the full pass
    assert masked[1] == 1 + 4 and full[1] == 1 + 16  # prefix + visible of 16 patches


def test_dense_mask_is_reapplied_after_stages_and_bn_stats_stay() -> None:
    model = build(_config(backbone="resnet18", mask_ratio=0.5))
    net = model.net
    assert net.masked_stages == ["act1", "layer1", "layer2"]  # 16, 8, 4 px maps on a 4x4 grid
    stage_out = {}
    net.encoder.layer2.register_forward_hook(lambda _m, _i, o: stage_out.setdefault("o", o))
    running = net.encoder.bn1.running_mean.clone()
    x = model.prepare(_batch()["image"], True)
    _, _, pm = model.masked_pass(x)
    assert torch.equal(net.encoder.bn1.running_mean, running)  # masked pass: stats frozen
    grid = pm.mask.view(2, 1, 4, 4).bool()
    assert stage_out["o"].masked_select(grid.expand_as(stage_out["o"])).eq(0).all()
    model(_batch())
    assert not torch.equal(net.encoder.bn1.running_mean, running)  # full pass updates them


def test_swin_goes_the_dense_way_and_eva_is_refused() -> None:
    model = build(_config(backbone="swin_tiny_patch4_window7_224", img_size=32, patch_size=8))
    assert isinstance(model.net, DenseMAE) and model.net.final_channels_last
    out = model(_batch())
    out["loss"].backward()
    _check_all_gradients(model)
    with pytest.raises(ConfigError, match="'backbone' is 'eva02_tiny_patch14_224'"):
        build(_config(backbone="eva02_tiny_patch14_224"))


def test_bad_input_and_missing_classes_are_clear() -> None:
    model = build(_config(backbone="resnet18"))
    with pytest.raises(DataError, match=r"\[B, 3, 32, 32\]"):
        model(_batch(size=64))
    floats = dict(_batch(), image=_batch()["image"].float())
    with pytest.raises(DataError, match=r"dtype torch\.float32; .* torch\.uint8"):
        model(floats)
    with pytest.raises(DataError, match="classes"):
        build(_config(backbone="resnet18", task="classify"))
    assert build(_config(backbone="resnet18", task="classify"), num_outputs=5)(_batch())[
        "logits"
    ].shape == (2, 5)


def test_norm_target_standardises_each_patch() -> None:
    model = build(_config(backbone="resnet18", reconstruct="rgb"))
    assert model.config.norm_target  # the default
    t = model.target(model.prepare(_batch()["image"], False))
    assert torch.allclose(t.mean(-1), torch.zeros(2, 16), atol=1e-4)
    raw = build(_config(backbone="resnet18", encoding="hist", norm_target=False))
    hist = raw.target(raw.prepare(_batch()["image"], True))
    assert torch.allclose(hist.sum(-1), torch.ones(2, 16))  # per-patch code histograms
