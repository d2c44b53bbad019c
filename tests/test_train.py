"""run_trial: the report contract, checkpoints (resume == uninterrupted), TensorBoard, errors."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from lssat.checkpoint import save_checkpoint
from lssat.config import TrialConfig
from lssat.errors import DataError, NonFiniteLossError
from lssat.model import build
from lssat.train import run_trial
from lssat.trial_data import TrialData


class RandomFaces(Dataset):
    """Random uint8 images whose label is whether the left half is brighter (learnable)."""

    def __init__(self, n: int, size: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
        half = size // 2
        left = self.images[..., :half].float().mean((1, 2, 3))
        right = self.images[..., half:].float().mean((1, 2, 3))
        self.labels = (left > right).long()
        self.video = torch.arange(n) // 2

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        image = self.images[i]
        if torch.rand(()) < 0.5:  # an augmentation that uses the global RNG
            image = image.flip(-2)
        return {
            "image": image,
            "label": self.labels[i],
            "video": self.video[i],
            "groups": torch.tensor([i % 2, -1]),
        }


def _data(size: int = 32) -> TrialData:
    meta = {"task": "deepfake", "label_kind": "binary", "classes": ["real", "fake"],
            "groups": ["Male", "Young"]}  # fmt: skip
    return TrialData(RandomFaces(16, size, 0), RandomFaces(8, size, 1), meta)


def _config(**kw: object) -> TrialConfig:
    base = dict(
        backbone="vit_tiny_patch16_224", img_size=32, patch_size=8, epochs=2, batch_size=8,
        decoder_dim=32, decoder_depth=1, descriptor="ldp", encoding="hist", lr=1e-3,
        warmup_epochs=0.5, seed=3,
    )  # fmt: skip
    return TrialConfig.from_dict({**base, **kw})


def test_report_contract_checkpoints_resume_and_tensorboard(tmp_path: Path) -> None:
    """One 3-epoch run (checkpoints at epochs 2 and 3), then a resume from epoch 2's copy."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = _config(backbone="mobilenetv3_small_100", epochs=3, checkpoint_every=2)
    seen: list[tuple[dict, str | None, bool]] = []

    def report(metrics: dict, ckpt: str | None) -> None:
        seen.append((metrics, ckpt, ckpt is not None and (Path(ckpt) / "state.pt").is_file()))
        if metrics["epoch"] == 2:
            shutil.copytree(ckpt, tmp_path / "ckpt")  # what Ray Tune does with it

    last = run_trial(config, _data(), report, tb_dir=tmp_path / "tb")
    assert [m["epoch"] for m, _, _ in seen] == [1, 2, 3]
    assert [c is not None for _, c, _ in seen] == [False, True, True]
    assert all(ok for _, c, ok in seen if c is not None)
    assert all(not Path(c).exists() for _, c, _ in seen if c)  # removed after report
    m = seen[-1][0]
    assert m == last
    for key in ("train_loss", "train_loss_primary", "train_loss_aux", "lr", "samples_per_s",
                "epoch_time_s", "params_count", "gflops", "val_auc", "val_acc", "val_loss",
                "val_video_auc", "val_worst_group_acc", "val_group_gap"):  # fmt: skip
        assert key in m, key
    assert m["params_count"] > 1e6 and 0 < m["gflops"] < 1
    assert all(math.isfinite(m[k]) for k in ("train_loss", "train_loss_aux", "val_loss"))
    assert seen[0][0]["lr"] > m["lr"]  # cosine decay after warm-up

    # resuming from epoch 2 gives exactly the uninterrupted epoch 3 (CPU, seeded)
    resumed: list[dict] = []
    run_trial(config, _data(), lambda m, c: resumed.append(m), checkpoint_dir=tmp_path / "ckpt")
    assert [r["epoch"] for r in resumed] == [3]
    for key in ("train_loss", "train_loss_aux", "lr", "val_loss", "val_auc"):
        assert resumed[0][key] == m[key], key

    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0})
    acc.Reload()
    assert {"train_loss", "val_auc", "gflops"} <= set(acc.Tags()["scalars"])
    assert len(acc.Scalars("train_loss")) == 3
    image = acc.Images("reconstruction")[-1]
    assert image.height == 4 * 33 + 1 and image.width > image.height  # 4 rows of 32 px + padding


def test_resume_from_an_interrupted_vit_trial(tmp_path: Path) -> None:
    config = _config(epochs=2)
    full: list[dict] = []
    run_trial(config, _data(), lambda m, c: full.append(m))

    class Stop(Exception):
        pass

    def stop_after_first(metrics: dict, ckpt: str | None) -> None:
        shutil.copytree(ckpt, tmp_path / "ckpt")
        raise Stop

    with pytest.raises(Stop):
        run_trial(config, _data(), stop_after_first)
    resumed: list[dict] = []
    run_trial(config, _data(), lambda m, c: resumed.append(m), checkpoint_dir=tmp_path / "ckpt")
    assert [m["epoch"] for m in resumed] == [2]
    for key in ("train_loss", "train_loss_aux", "lr", "val_loss", "val_auc"):
        assert resumed[0][key] == full[1][key], key


def test_checkpoint_without_an_entry_is_a_data_error(tmp_path: Path) -> None:
    """A ``state.pt`` lacking the scheduler names the file and the key, not a bare KeyError."""
    config = _config()
    model = build(config)
    optimizer = torch.optim.AdamW(model.parameters())
    path = save_checkpoint(
        tmp_path / "ckpt",
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 1},
    )
    with pytest.raises(DataError) as info:
        run_trial(config, _data(), lambda m, c: None, checkpoint_dir=tmp_path / "ckpt")
    assert repr(str(path)) in str(info.value) and "'scheduler'" in str(info.value)


class NaNAfter(nn.Module):
    """A ``.module`` wrapper (as DDP is) that poisons the loss from a given call on."""

    def __init__(self, module: nn.Module, after: int) -> None:
        super().__init__()
        self.module, self.after, self.calls = module, after, 0

    def forward(self, batch: dict) -> dict:
        out = self.module(batch)
        self.calls += 1
        if self.module.training and self.calls > self.after:
            out["loss_aux"] = out["loss_aux"] * math.nan
            out["loss"] = out["loss"] + out["loss_aux"]
        return out


def test_non_finite_loss_stops_with_step_and_parts() -> None:
    with pytest.raises(NonFiniteLossError) as info:
        run_trial(_config(), _data(), lambda m, c: None, prepare_model=lambda m: NaNAfter(m, 2))
    assert info.value.step == 3
    parts = info.value.parts
    assert math.isnan(parts["loss_aux"]) and math.isfinite(parts["loss_primary"])


def test_scratch_checkpoints_of_dead_processes_are_swept(tmp_path: Path) -> None:
    """A trial killed between saving and reporting leaves ``lssat-ckpt-<token>`` behind: the
    next checkpoint on that machine removes it (nobody holds its lock); a folder this process
    holds stays, and so does one without a lock file (not ours to judge). Across PID
    namespaces: tests/test_checkpoint_scratch.py."""
    from lssat.checkpoint import SCRATCH_PREFIX, release_scratch, scratch_dir

    dead = tmp_path / f"{SCRATCH_PREFIX}abc"
    (dead / "state.pt").parent.mkdir()
    (dead / "state.pt").write_bytes(b"x" * 1000)
    (tmp_path / f"{SCRATCH_PREFIX}abc.lock").touch()  # its owner died: no lock is held
    mine = Path(scratch_dir(tmp_path))
    other = tmp_path / f"{SCRATCH_PREFIX}nolock"
    other.mkdir()
    new = Path(scratch_dir(tmp_path))
    assert new.is_dir() and new.name.startswith(SCRATCH_PREFIX) and new != mine
    assert not dead.exists() and mine.is_dir() and other.is_dir()
    release_scratch(mine)
    release_scratch(new)
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name]
