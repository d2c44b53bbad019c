"""TrialConfig: every invalid field fails with one sentence naming the field and the value."""

from __future__ import annotations

import pytest

from lssat.config import TrialConfig
from lssat.errors import ConfigError

BAD_VALUES = [
    ("task", "nope"),
    ("backbone", "not_a_timm_model"),
    ("img_size", 4),
    ("img_size", 2048),
    ("img_size", 60),  # not a multiple of patch_size 16
    ("patch_size", 0),
    ("drop_path", 0.95),
    ("aux_weight", -0.1),
    ("aux_weight", 1.5),
    ("mask_ratio", 0.99),
    ("mask_ratio", -0.1),
    ("descriptor", "sift"),
    ("encoding", "pca"),
    ("mask_input", "depth"),
    ("reconstruct", "depth"),
    ("classify_input", "depth"),
    ("desc_P", 2),
    ("desc_R", 0.0),
    ("desc_method", "fancy"),
    ("desc_t", -1.0),
    ("desc_k", 9),
    ("desc_cell", 1),
    ("desc_bins", 1),
    ("decoder_dim", 4),
    ("decoder_depth", 0),
    ("decoder_heads", 0),
    ("decoder_dim", 130),  # not a multiple of decoder_heads 4
    ("lr", 0.0),
    ("weight_decay", -1.0),
    ("warmup_epochs", -1.0),
    ("min_lr", -1.0),
    ("epochs", 0),
    ("batch_size", 0),
    ("grad_clip", -1.0),
    ("label_smoothing", 0.6),
    ("precision", "fp16"),
    ("device", "tpu"),
    ("num_workers", -1),
    ("train_subset", -1),
    ("val_subset", -1),
    ("checkpoint_every", 0),
    ("epochs", "10"),  # wrong type
    ("pretrained", "yes"),
    ("norm_target", 1),
    ("lr", float("nan")),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES, ids=[f"{f}={v!r}" for f, v in BAD_VALUES])
def test_invalid_field_is_named_with_its_value(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        TrialConfig.from_dict({field: value})
    message = str(info.value)
    assert repr(field) in message
    # the exact phrases config.py uses, so a message without the value fails
    named = f"{field!r} is {value!r}" in message or (
        f"{field!r} must be " in message and f", got {value!r} " in message
    )
    assert named, message
    assert "\n" not in message


def test_rules_across_fields() -> None:
    with pytest.raises(ConfigError, match="'mask_ratio'"):
        TrialConfig(mask_ratio=0.0, aux_weight=0.5)
    TrialConfig(mask_ratio=0.0, aux_weight=0.0)  # the supervised baseline needs no mask
    with pytest.raises(ConfigError, match="'patch_size'"):
        TrialConfig(img_size=16, patch_size=16)  # one patch cannot be masked
    with pytest.raises(ConfigError, match="'encoding' is 'bits'"):
        TrialConfig(descriptor="hog", encoding="bits")
    with pytest.raises(ConfigError, match="'encoding' is 'hist'.*allowed: map, bits"):
        TrialConfig(descriptor="lbp", desc_method="default", desc_P=16, encoding="hist")
    TrialConfig(descriptor="lbp", desc_method="default", desc_P=8, encoding="hist")
    TrialConfig(descriptor="hog", encoding="bits", aux_weight=0.0, mask_ratio=0.0)  # unused
    with pytest.raises(ConfigError, match="unknown config key 'learning_rate'"):
        TrialConfig.from_dict({"learning_rate": 0.1})


def test_round_trip_and_coercion() -> None:
    cfg = TrialConfig.from_dict({"epochs": 3.0, "lr": 1, "backbone": "resnet18"})
    assert cfg.epochs == 3 and isinstance(cfg.lr, float)
    assert TrialConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(aux_weight=0.0).uses_aux is False
    assert set(TrialConfig(descriptor="lbp").descriptor_params()) == {"P", "R", "method"}
