"""Issue 23, model and scoring edges: BatchNorm statistics in the ViT masked pass, held-out
scoring that ``search.evaluate`` reproduces from the weights file alone (seed, resamples,
float32 logits), and non-finite logits or losses that stop a trial with one sentence.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from lssat.config import TrialConfig
from lssat.errors import NonFiniteLossError
from lssat.model import build

TINY = {"img_size": 32, "patch_size": 8, "decoder_dim": 32, "decoder_depth": 1}


# ------------------------------------------------------------------ 1. BatchNorm statistics
def _bn_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": value.clone()
        for name, m in model.named_modules()
        if isinstance(m, _BatchNorm)
        for key, value in (
            ("mean", m.running_mean),
            ("var", m.running_var),
            ("n", m.num_batches_tracked),
        )  # fmt: skip
    }


@pytest.mark.parametrize(
    ("backbone", "size", "patch"),
    [("vit_small_resnet26d_224", 64, 32), ("resnet18", 32, 8)],
    ids=["bn_hybrid_vit", "resnet"],
)
def test_masked_pass_leaves_batchnorm_running_statistics_alone(
    backbone: str, size: int, patch: int
) -> None:
    config = TrialConfig(backbone=backbone, img_size=size, patch_size=patch, mask_ratio=0.75,
                         decoder_dim=32, decoder_depth=1)  # fmt: skip
    torch.manual_seed(0)
    model = build(config).train()
    before = _bn_state(model)
    assert before, f"{backbone} has no BatchNorm layer"
    images = torch.randint(0, 256, (4, 3, size, size), dtype=torch.uint8)
    model.visualise(images, torch.Generator().manual_seed(1))  # one masked pass, train mode
    after = _bn_state(model)
    moved = {k: (after[k].float() - v.float()).abs().max().item() for k, v in before.items()}
    assert max(moved.values()) == 0.0, f"masked pass moved {max(moved, key=moved.get)}"
    # the check can fail: a full pass in train mode does move them
    with torch.no_grad():
        model.net.full(model.prepare(images, False)["rgb"])
    assert any(not torch.equal(_bn_state(model)[k], v) for k, v in before.items())


# ------------------------------------------------- 2. search.evaluate reproduces the final run
@pytest.fixture(scope="module")
def final_run(tmp_path_factory: pytest.TempPathFactory, demo_data: Path) -> dict:
    """One held-out run as the final stage makes it (bf16 autocast training, run seed 7, 64
    resamples): its reported metrics and its weights file."""
    from lssat.train import run_trial
    from search.execution.heldout import heldout_trial

    root = tmp_path_factory.mktemp("final-run")
    config = TrialConfig(backbone="test_vit", epochs=1, train_subset=8,
                         val_subset=4, batch_size=32, precision="bf16", seed=7, **TINY)  # fmt: skip
    spec = {
        "sets": [{"name": "test", "path": str(demo_data), "split": "test"}],
        "weights": str(root / "run.safetensors"), "seed": 7, "n_resamples": 64,
        "info": {"task": "deepfake", "classes": ["real", "fake"], "seed": 7},
    }  # fmt: skip
    reports: list[dict] = []
    heldout_trial(run_trial, spec, config, demo_data, lambda m, _c: reports.append(m))
    return {"metrics": reports[-1], "weights": spec["weights"], "config": config}


def test_evaluate_reproduces_the_final_numbers_and_intervals_without_flags(
    final_run: dict, demo_data: Path, tmp_path: Path
) -> None:
    from search.evaluate import main

    out = tmp_path / "m.json"
    argv = [final_run["weights"], "--data", str(demo_data), "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    got = json.loads(out.read_text())
    want = final_run["metrics"]
    keys = [k for k in want if k.startswith("test_") and not k.endswith(("_rows", "_units"))]
    assert any(k.endswith("_ci_low") for k in keys) and "test_auc" in keys
    for key in keys:
        a, b = got["eval_" + key[len("test_") :]], want[key]
        assert a == b or (math.isnan(a) and math.isnan(b)), f"{key}: {a} evaluate, {b} final"


def test_heldout_scoring_uses_float32_logits_whatever_the_training_precision(
    final_run: dict, demo_data: Path
) -> None:
    from search.execution.heldout import EvalSet, evaluate_model, load_weights

    model, config, _ = load_weights(final_run["weights"])
    es = EvalSet("x", str(demo_data), "test")
    cpu = torch.device("cpu")
    bf16 = evaluate_model(model, config.replace(precision="bf16"), es, cpu, torch.bfloat16,
                          n_resamples=8)  # fmt: skip
    fp32 = evaluate_model(model, config.replace(precision="fp32"), es, cpu, None, n_resamples=8)
    assert bf16 == fp32


# --------------------------------------------------------------------- 6. non-finite values
def test_metrics_never_count_nan_as_a_class() -> None:
    from lssat import metrics as M
    from lssat.tasks import get_task

    labels = np.array([0, 1, 0, 1])
    out = M.binary_metrics(np.array([np.nan, 2.0, -1.0, 3.0]), labels, np.array([0, 1, 2, 3]))
    assert all(math.isnan(v) for v in out.values()), out
    logits = np.array([[np.nan, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert all(math.isnan(v) for v in M.multiclass_metrics(logits, np.array([0, 1, 0]), 2).values())
    multi = M.multilabel_metrics(
        np.array([[np.nan, 1.0], [1.0, -1.0]]), np.array([[1, 1], [1, 0]]), ["a", "b"]
    )
    assert math.isnan(multi["mean_acc"]) and math.isnan(multi["acc_a"]) and multi["acc_b"] == 1.0
    correct = get_task("deepfake").correct(np.array([np.nan, 1.0]), np.array([0, 1]))
    assert math.isnan(correct[0]) and correct[1] == 1.0


def _nan_head(model: torch.nn.Module) -> None:
    with torch.no_grad():
        model.net.encoder.head.bias.fill_(float("nan"))


def test_nan_validation_logits_stop_the_trial_naming_the_epoch(demo_data: Path) -> None:
    from lssat.train import run_trial

    config = TrialConfig(backbone="test_vit", epochs=1, train_subset=4,
                         val_subset=4, batch_size=8, aux_weight=0.0, **TINY)  # fmt: skip
    with pytest.raises(NonFiniteLossError, match=r"^non-finite logits at epoch 1 \(32 of 32 val"):
        run_trial(config, demo_data, lambda *_: None, prepare_model=_nan_after_training)


class _NanAfterTraining(torch.nn.Module):
    """Wraps the model: its training steps are normal, its evaluation head gives NaN."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.module = model

    def forward(self, batch: dict) -> dict:
        out = self.module(batch)
        if not self.training:
            out["logits"] = out["logits"] * float("nan")
        return out


def _nan_after_training(model: torch.nn.Module) -> torch.nn.Module:
    return _NanAfterTraining(model)


def test_nan_loss_names_epoch_and_step_and_is_classified_non_finite(demo_data: Path) -> None:
    from lssat.train import run_trial
    from search.execution.errors import classify_error

    config = TrialConfig(backbone="test_vit", epochs=1, train_subset=4,
                         val_subset=4, batch_size=8, aux_weight=0.0, **TINY)  # fmt: skip
    with pytest.raises(NonFiniteLossError, match=r"^non-finite loss at epoch 1, step 1 ") as err:
        run_trial(config, demo_data, lambda *_: None,
                  prepare_model=lambda m: (_nan_head(m), m)[1])  # fmt: skip
    assert classify_error(err.value, str(err.value)) == "non_finite_loss"
    assert (err.value.epoch, err.value.step) == (1, 1)


def test_final_stage_keeps_the_weights_when_scoring_meets_nan(
    final_run: dict, demo_data: Path, tmp_path: Path
) -> None:
    from search.evaluate import main
    from search.execution.heldout import heldout_trial, load_weights

    model, config, info = load_weights(final_run["weights"])
    _nan_head(model)
    spec = {"sets": [{"name": "test", "path": str(demo_data), "split": "test"}],
            "weights": str(tmp_path / "nan.safetensors"), "seed": 7, "n_resamples": 8,
            "info": info}  # fmt: skip

    def trial(cfg: TrialConfig, _data: object, _report: object, *, final_eval) -> None:
        final_eval(model, torch.device("cpu"), None)

    with pytest.raises(NonFiniteLossError, match=r"non-finite logits at epoch 1 \(480 of 480 test"):
        heldout_trial(trial, spec, config, demo_data, None)
    assert Path(spec["weights"]).is_file()  # saved before scoring
    assert main([spec["weights"], "--data", str(demo_data), "--device", "cpu"]) == 2
