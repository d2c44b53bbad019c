"""Issue 12: pretrained backbones from a local weights folder (offline clusters).

A state dict the test saves goes through the real path (``lssat.weights`` ->
``timm.create_model(pretrained_cfg_overlay={"file": ...})``) and comes back equal; fetching is
tested with a stand-in downloader and, for real, offline (its failure is one sentence).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

from lssat.config import TrialConfig
from lssat.errors import ConfigError
from lssat.model import build
from lssat.weights import ENV, sha256_file, timm_kwargs
from search.optimize.pretrained import (
    describe,
    row_columns,
    space_backbones,
    space_pretrained,
    weights_table,
)
from search.optimize.space import load_space
from search.run import main as run_main
from search.stages.weights import fetch
from search.weights import main

ROOT = Path(__file__).resolve().parents[1]


def _reference(name: str, seed: int) -> dict[str, torch.Tensor]:
    """A timm model's own state dict (1000-class head), seeded: what a download would give."""
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    ("name", "img_size", "resampled"),
    [("resnet18", 32, ()), ("vit_tiny_patch16_224", 64, ("pos_embed",))],
)
def test_saved_state_dict_loads_back_through_timm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, img_size: int, resampled: tuple
) -> None:
    ref = _reference(name, seed=3)
    out = tmp_path / "weights"
    fetch([name], out, download=lambda n: ref, say=lambda _: None)  # the fetch command's saver
    monkeypatch.setenv(ENV, str(out))
    cfg = TrialConfig(task="deepfake", backbone=name, pretrained=True, img_size=img_size,
                      aux_weight=0.0)  # fmt: skip
    loaded = _backbone_state(cfg)
    head = timm.models.get_pretrained_cfg(name).classifier
    compared = 0
    for key, value in ref.items():
        if key.startswith(head) or key in resampled:
            continue  # the task head is new (2 classes, not 1000); ViT positions resampled
        assert torch.equal(loaded[key], value), key
        compared += 1
    assert compared > 20
    if name == "resnet18":
        scratch = _backbone_state(cfg.replace(pretrained=False))
        assert not torch.equal(scratch["conv1.weight"], ref["conv1.weight"])  # not the file
        core = build(cfg)  # the whole L-SSAT model: the encoder holds the file's weights
        assert torch.equal(core.state_dict()["net.encoder.conv1.weight"], ref["conv1.weight"])


def _backbone_state(cfg: TrialConfig) -> dict[str, torch.Tensor]:
    from lssat.model.backbone import create_backbone

    return create_backbone(cfg, 1).model.state_dict()


def test_missing_file_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    cfg = TrialConfig(task="deepfake", backbone="resnet18", pretrained=True, img_size=32)
    with pytest.raises(ConfigError) as err:
        build(cfg)
    text = str(err.value)
    assert "backbone 'resnet18'" in text and "python -m search.weights fetch" in text
    assert str(tmp_path / "resnet18.safetensors") in text and "\n" not in text
    assert timm_kwargs("resnet18", False) == {"pretrained": False}
    monkeypatch.delenv(ENV)
    assert timm_kwargs("resnet18", True) == {"pretrained": True}  # no folder: timm downloads


def test_space_backbones_and_pretrained_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = load_space(ROOT / "spaces" / "deepfake.yaml")
    assert space_pretrained(space)
    assert space_backbones(space) == [
        "vit_tiny_patch16_224", "deit_tiny_patch16_224", "resnet18", "convnext_atto",
        "mobilenetv3_small_100", "efficientnet_b0",
    ]  # fmt: skip
    for task in ("emotion", "attributes"):
        assert space_pretrained(load_space(ROOT / "spaces" / f"{task}.yaml"))
    demo = load_space(ROOT / "spaces" / "demo.yaml")
    assert not space_pretrained(demo)
    where, table = weights_table(demo, None)
    assert "every trial trains from scratch" in describe(demo, where, table)  # the demo says so
    assert describe(space, *weights_table(space, None)).startswith(
        "weights: ImageNet-pretrained for 6 backbone(s): 0 in the local cache, 6 downloaded by timm"
    )
    assert table == {} and row_columns({"backbone": "resnet18"}, table) == {
        "weights_source": None, "weights_sha256": None,
    }  # fmt: skip
    (tmp_path / "resnet18.safetensors").write_bytes(b"x")
    code = main(["list", "--space", str(ROOT / "spaces/deepfake.yaml"), "--dir", str(tmp_path)])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert "resnet18 present" in lines and "efficientnet_b0 MISSING" in lines


def test_weights_table_checks_files_and_fingerprints_them(tmp_path: Path) -> None:
    space = load_space(ROOT / "spaces" / "deepfake.yaml")
    with pytest.raises(ConfigError, match=r"backbone 'vit_tiny_patch16_224' are missing.*"
                       r"fetch --space spaces/deepfake.yaml --out"):  # fmt: skip
        weights_table(space, tmp_path, "spaces/deepfake.yaml")
    for name in space_backbones(space):
        (tmp_path / f"{name}.safetensors").write_bytes(name.encode())
    where, table = weights_table(space, tmp_path)
    file = tmp_path / "resnet18.safetensors"
    cols = row_columns({"backbone": "resnet18", "pretrained": True}, table)
    assert cols == {"weights_source": str(file), "weights_sha256": sha256_file(file)}
    assert (
        row_columns({"backbone": "resnet18", "pretrained": False}, table)["weights_source"] is None
    )
    with pytest.raises(ConfigError, match="is not a folder"):
        weights_table(space, tmp_path / "nope")
    _, hub = weights_table(space, None)
    assert hub["resnet18"] == {"source": "hf-hub:timm/resnet18.a1_in1k", "sha256": None}


def test_fetch_keeps_files_and_offline_download_is_one_sentence(tmp_path: Path) -> None:
    calls = []
    fake = lambda n: calls.append(n) or {"w": torch.ones(2)}  # noqa: E731
    fetch(["a", "b"], tmp_path, download=fake, say=lambda _: None)
    fetch(["a", "b"], tmp_path, download=fake, say=lambda _: None)  # kept: fetched once
    assert calls == ["a", "b"]
    fetch(["a"], tmp_path, download=fake, force=True, say=lambda _: None)
    assert calls == ["a", "b", "a"]
    space = tmp_path / "one.yaml"
    space.write_text("task: deepfake\nfixed: {backbone: resnet18, pretrained: true}\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "search.weights", "fetch", "--space", str(space),
         "--out", str(tmp_path / "w")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    err = proc.stderr.strip()
    assert proc.returncode == 1, proc.stderr
    assert err.startswith("error: downloading the pretrained weights of backbone 'resnet18'")
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "w" / "resnet18.safetensors").exists()


def test_search_refuses_a_weights_dir_without_the_file(
    tmp_path: Path, demo_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / "pre.yaml"
    space.write_text(
        "task: deepfake\ntrials: 1\nfixed: {epochs: 1, img_size: 32, pretrained: true}\n"
        "params:\n  backbone: {choices: [resnet18, convnext_atto]}\n"
    )
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "resnet18.safetensors").write_bytes(b"x")
    results = tmp_path / "results"
    code = run_main(["--task", "deepfake", "--space", str(space), "--data", str(demo_data),
                     "--weights-dir", str(tmp_path / "w"), "--results", str(results)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: pretrained weights for backbone 'convnext_atto'")
    assert f"fetch --space {space} --out {tmp_path / 'w'}" in err and "\n" not in err
    assert not results.exists()  # nothing written


@pytest.mark.slow
def test_search_trials_load_the_folder_and_record_it(
    tmp_path: Path, demo_data: Path, monkeypatch: pytest.MonkeyPatch, in_process
) -> None:
    """A real search (Ray + Optuna, the command's main() in this process): the weights folder
    reaches the trial processes. Its resnet18 file holds NaN weights, so the pretrained trial
    fails with a non-finite loss only if the worker really loaded the file; the other trial
    trains from scratch. ``$LSSAT_WEIGHTS`` points elsewhere when Ray starts its workers."""
    from search import results

    weights = tmp_path / "w"
    nan = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
           for k, v in _reference("resnet18", 0).items()}  # fmt: skip
    fetch(["resnet18"], weights, download=lambda n: nan, say=lambda _: None)
    space = tmp_path / "pre.yaml"
    space.write_text(
        "task: deepfake\ntrials: 2\nsampler: {n_startup_trials: 2}\n"
        "fixed: {epochs: 1, img_size: 32, backbone: resnet18, aux_weight: 0.0, batch_size: 16,"
        " train_subset: 4, val_subset: 4}\n"
        "params:\n  pretrained: {choices: [true, false]}\n"
        "enqueue:\n  - {pretrained: true}\n  - {pretrained: false}\n"
    )
    monkeypatch.setenv(ENV, str(tmp_path / "elsewhere"))
    argv = ["--task", "deepfake", "--space", str(space), "--data", str(demo_data),
            "--results", str(tmp_path / "r"), "--name", "w", "--max-concurrent", "2",
            "--no-dashboard", "--weights-dir", str(weights)]  # fmt: skip
    code, log = in_process(run_main, argv)
    assert code == 0, log[-3000:]
    assert f"weights: pretrained is searched: ImageNet weights from {weights}" in log
    rows = results.read_trials(tmp_path / "r")
    families = (results.CFG_PREFIX, results.FINAL_PREFIX)
    plain = {c for c in rows.columns if c in results.TRIAL_COLUMNS or not c.startswith(families)}
    assert plain == set(results.TRIAL_COLUMNS)  # the weights columns are documented and written
    rows = rows.set_index("cfg_pretrained")
    file = weights / "resnet18.safetensors"
    pre, scratch = rows.loc[True], rows.loc[False]
    assert (pre["status"], pre["stop_reason"]) == ("FAIL", "non_finite_loss"), pre["error"]
    assert pre["weights_source"] == str(file) and pre["weights_sha256"] == sha256_file(file)
    assert (
        scratch["status"] == "COMPLETE"
        and scratch[["weights_source", "weights_sha256"]].isna().all()
    )
