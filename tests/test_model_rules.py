"""Core rules of the L-SSAT model and its metrics, each checked where a bug would break it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lssat.descriptors as D
from lssat.config import TrialConfig
from lssat.errors import ConfigError
from lssat.metrics import binary_metrics, multiclass_metrics
from lssat.model import build

SIZE, PATCH = 32, 8


def _config(**kw: object) -> TrialConfig:
    base = {"img_size": SIZE, "patch_size": PATCH, "decoder_dim": 32, "decoder_depth": 1}
    return TrialConfig.from_dict({**base, **kw})


def _images(n: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=g)


# ------------------------------------------------------------------ the auxiliary loss
@pytest.mark.parametrize("backbone", ["vit_tiny_patch16_224", "resnet18"])
def test_aux_loss_is_the_mse_of_removed_patches_only(backbone: str) -> None:
    torch.manual_seed(0)
    model = build(_config(backbone=backbone, mask_ratio=0.5))
    seen: dict[str, torch.Tensor] = {}
    masked = model.net.masked

    def spy(inp: torch.Tensor, pm: object) -> torch.Tensor:
        pred = masked(inp, pm)
        pred.retain_grad()
        seen.update(pred=pred, mask=pm.mask)
        return pred

    model.net.masked = spy  # type: ignore[method-assign]
    images = _images()
    out = model({"image": images, "label": torch.tensor([0, 1])})
    out["loss_aux"].backward()
    removed = seen["mask"].bool()
    grad = seen["pred"].grad.abs().sum(-1)  # [B, L]
    assert grad[~removed].eq(0).all(), "visible patches must not enter the auxiliary loss"
    assert grad[removed].gt(0).all(), "every removed patch must enter the auxiliary loss"
    target = model.target(model.prepare(images, True))
    per_patch = (seen["pred"].detach() - target).pow(2).mean(-1)
    assert out["loss_aux"].item() == pytest.approx(per_patch[removed].mean().item(), rel=1e-5)


# ------------------------------------------------------------------ targets
@pytest.mark.parametrize(
    ("reconstruct", "descriptor", "encoding"),
    [("rgb", "ldp", "map"), ("descriptor", "lbp", "hist"), ("descriptor", "hog", "map")],
)
def test_norm_target_gives_each_patch_zero_mean_and_unit_variance(
    reconstruct: str, descriptor: str, encoding: str
) -> None:
    kw = dict(backbone="resnet18", reconstruct=reconstruct, descriptor=descriptor,
              encoding=encoding, desc_cell=4)  # fmt: skip
    if descriptor != "hog":
        kw.pop("desc_cell")
    normed, raw = build(_config(**kw)), build(_config(**kw, norm_target=False))
    x = normed.prepare(_images(), True)
    t, r = normed.target(x), raw.target(x)
    varying = r.var(-1) > 1e-3  # a flat patch has nothing to scale
    assert varying.float().mean() > 0.9
    assert torch.allclose(t.mean(-1), torch.zeros_like(t[..., 0]), atol=1e-4)
    assert torch.allclose(t.var(-1)[varying], torch.ones_like(t[..., 0])[varying], atol=1e-3)
    # and it is the raw target standardised, patch by patch
    expected = (r - r.mean(-1, keepdim=True)) / r.std(-1, keepdim=True)
    assert torch.allclose(t[varying], expected[varying], atol=1e-3)


def test_descriptor_input_comes_from_visible_pixels_but_the_target_from_the_full_image() -> None:
    cfg = _config(backbone="vit_tiny_patch16_224", mask_input="descriptor", descriptor="lbp",
                  desc_P=16, desc_R=2.0, encoding="map", norm_target=False)  # fmt: skip
    model = build(cfg)
    images = _images()
    vis = model.visualise(images, torch.Generator().manual_seed(0))
    params = cfg.descriptor_params()
    full = D.compute("lbp", D.to_gray(images), **params)
    assert torch.equal(vis["target"], D.encode(full, "lbp", "map", PATCH, **params).float())
    # nothing removed: the masked input is the full image's map; something removed: it differs
    none = torch.zeros_like(vis["mask"])
    assert torch.equal(model.visible_descriptor(images, none), D.normalize(full, "lbp", **params))
    assert not torch.equal(
        model.visible_descriptor(images, vis["mask"]), D.normalize(full, "lbp", **params)
    )


# ------------------------------------------------------------------ metrics
def test_auc_and_ap_rank_logits_that_saturate_a_sigmoid() -> None:
    logits = np.array([40.0, 50.0, 45.0, 60.0, -41.0, 38.0])
    labels = np.array([0, 1, 0, 1, 0, 1])
    m = binary_metrics(logits, labels)
    assert m["auc"] == pytest.approx(7 / 9)  # the ranking; probabilities in float64 give 6/9
    assert m["ap"] == pytest.approx((1 + 1 + 3 / 5) / 3)
    assert m["acc"] == pytest.approx(4 / 6)


def test_video_score_is_the_mean_frame_logit() -> None:
    # video 0 (fake): logits 6, -2 -> mean logit 2 (mean probability 0.56)
    # video 1 (real): 1, 1 -> 1 (0.73); video 2 (real): 10, -10 -> 0 (0.5)
    logits = np.array([6.0, -2.0, 1.0, 1.0, 10.0, -10.0])
    labels = np.array([1, 1, 0, 0, 0, 0])
    video = np.array([0, 0, 1, 1, 2, 2])
    assert binary_metrics(logits, labels, video)["video_auc"] == 1.0  # probabilities: 0.5


def test_macro_f1_leaves_out_classes_absent_from_labels_and_predictions() -> None:
    perfect = multiclass_metrics(np.eye(3)[[0, 1, 0, 1]], np.array([0, 1, 0, 1]), 3)
    assert perfect == {"acc": 1.0, "balanced_acc": 1.0, "macro_f1": 1.0}
    # class 2 predicted but never true counts as 0: F1 = (1 + 0.5 + 0) / 3
    m = multiclass_metrics(np.eye(3)[[0, 1, 2, 2]], np.array([0, 1, 1, 1]), 3)
    assert m["macro_f1"] == pytest.approx((1 + 0.5 + 0) / 3)
    empty = multiclass_metrics(np.zeros((0, 3)), np.zeros(0), 3)
    assert math.isnan(empty["macro_f1"])


# ------------------------------------------------------------------ aux_weight range
def test_aux_weight_one_is_refused_in_a_config_and_a_space_file() -> None:
    from search.optimize.space import parse_space

    assert TrialConfig(aux_weight=0.99).aux_weight == 0.99
    with pytest.raises(ConfigError, match=r"'aux_weight' is 1\.0; allowed range \[0\.0, 1\.0\)"):
        TrialConfig(aux_weight=1.0)
    raw = {"task": "deepfake", "params": {"aux_weight": {"choices": [0.0, 0.5, 1.0]}}}
    with pytest.raises(ConfigError, match=r"space\.yaml.*'aux_weight' is 1\.0"):
        parse_space(raw, "space.yaml")
    raw = {"task": "deepfake", "params": {"aux_weight": {"low": 0.0, "high": 1.0}}}
    with pytest.raises(ConfigError, match=r"'aux_weight' is 1\.0"):
        parse_space(raw, "space.yaml")


# ------------------------------------------------------------------ learning, ViT MAE path
@pytest.mark.slow
def test_tiny_vit_lssat_learns_faces_and_its_aux_loss_falls() -> None:
    from test_train_learning import lfw_faces_vs_non_faces

    from lssat.train import run_trial

    config = TrialConfig(
        backbone="vit_tiny_patch16_224", img_size=32, patch_size=8, epochs=3, batch_size=32,
        lr=1e-3, warmup_epochs=0.5, aux_weight=0.5, mask_ratio=0.75, descriptor="ldp",
        encoding="hist", decoder_dim=64, decoder_depth=1, seed=0,
    )  # fmt: skip
    history: list[dict] = []
    run_trial(config, lfw_faces_vs_non_faces(), lambda m, c: history.append(m))
    first, last = history[0], history[-1]
    assert last["val_acc"] >= 0.7, history  # chance is 0.5
    assert last["val_auc"] >= 0.8, history
    assert last["train_loss_aux"] < 0.7 * first["train_loss_aux"], history
