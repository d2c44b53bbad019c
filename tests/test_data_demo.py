"""The embedded deepfake demo, its cache, self-blending, and ``resolve_data``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import lssat.data.demo as demo
from lssat.data import DEMO_VERSION, default_cache_dir, demo_dataset, open_dataset, resolve_data
from lssat.data.sbi import face_mask, self_blend
from lssat.data.shards import META_FILE
from lssat.errors import DataError


def _shard_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((path / "shards").iterdir())}


def test_demo_is_balanced_video_like_and_split_by_face(demo_data: Path) -> None:
    data = open_dataset(demo_data)
    meta = data.meta
    assert meta["task"] == "deepfake" and meta["demo_version"] == DEMO_VERSION
    assert meta["channels"] == "grey" and meta["size"] == demo.SIZE and meta["val_split"] == "val"
    faces_of = {}
    for name in ("train", "val", "test"):
        idx = data.indices(name)
        labels = data.labels[idx]
        assert (labels == 1).sum() == (labels == 0).sum() > 0  # balanced
        keys = [data.key(i) for i in idx]
        faces_of[name] = {k.split("/")[1].split("#")[0] for k in keys}
        # each video: one label, FRAMES frames, one source face
        for v in np.unique(data.video[idx]):
            rows = idx[data.video[idx] == v]
            assert len(rows) == demo.FRAMES and len(set(data.labels[rows])) == 1
            assert len({data.key(r).split("#")[0] for r in rows}) == 1
    assert [len(f) for f in faces_of.values()] == list(demo.SPLIT_SIZES.values())
    assert not (faces_of["train"] & faces_of["val"]) and not (faces_of["train"] & faces_of["test"])
    assert not (faces_of["val"] & faces_of["test"])
    image = data.image(0)
    assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(
        image[..., 1], image[..., 2]
    )


def test_fake_video_shares_the_real_videos_poses(demo_data: Path) -> None:
    data = open_dataset(demo_data)

    def frames(video: int) -> np.ndarray:
        return data.images(np.flatnonzero(data.video == video))[..., 0].astype(float)

    real, fake, other = frames(0), frames(1), frames(2)  # face 0 real / fake, face 1 real
    assert data.key(int(np.flatnonzero(data.video == 1)[0])).startswith("fake/lfw_000")
    assert data.key(int(np.flatnonzero(data.video == 2)[0])).startswith("real/lfw_001")
    for r, f, o in zip(real, fake, other, strict=True):  # same face and pose: only the blend
        same = np.corrcoef(r.ravel(), f.ravel())[0, 1]
        assert same > np.corrcoef(o.ravel(), f.ravel())[0, 1] and same > 0.5
    assert 1 < np.abs(real - fake).mean() < 40  # a real but local change


def test_demo_rebuilt_for_new_version_deterministically(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "DEMO_VERSION", DEMO_VERSION + 100)
    rebuilt = demo.demo_dataset(demo_data.parent)
    assert rebuilt != demo_data and rebuilt.name == demo.folder_name("sbi")
    assert open_dataset(rebuilt).meta["demo_version"] == DEMO_VERSION + 100
    assert _shard_bytes(rebuilt) == _shard_bytes(demo_data)  # same seed, same frames
    assert demo.demo_dataset(demo_data.parent) == rebuilt  # cached now
    shutil.rmtree(rebuilt)


def test_demo_build_race_and_broken_leftover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = tmp_path / demo.folder_name("sbi")
    final.mkdir()
    (final / "junk").write_text("a crashed copy without meta.json")
    real_prepare = demo.prepare

    def racing_prepare(source, out, **kw):  # another process finishes first
        meta = real_prepare(source, out, **kw)
        shutil.rmtree(final, ignore_errors=True)
        shutil.copytree(out, final)
        return meta

    monkeypatch.setattr(demo, "prepare", racing_prepare)
    path = demo_dataset(tmp_path)
    assert path == final and len(open_dataset(path)) == 2 * demo.N_FACES * demo.FRAMES
    assert [p.name for p in tmp_path.iterdir()] == [final.name]  # no build folder left


@pytest.mark.parametrize("leftover", ["junk", "other-version"])
def test_demo_broken_leftover_is_replaced(
    demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leftover: str
) -> None:
    final = tmp_path / demo.folder_name("sbi")
    final.mkdir()
    if leftover == "junk":  # a crashed copy: no meta.json
        (final / "junk").write_text("a crashed copy without meta.json")
    else:  # a complete-looking copy of another demo version
        shutil.copytree(demo_data, final, dirs_exist_ok=True)
        meta = json.loads((final / META_FILE).read_text())
        (final / META_FILE).write_text(json.dumps({**meta, "demo_version": DEMO_VERSION - 1}))
    built = []

    def copy_prepare(source, out, **kw):  # the cached build instead of a second one
        built.append(out)
        shutil.copytree(demo_data, out)

    monkeypatch.setattr(demo, "prepare", copy_prepare)
    path = demo_dataset(tmp_path)
    assert path == final and len(built) == 1 and not (final / "junk").exists()
    assert open_dataset(path).meta["demo_version"] == DEMO_VERSION
    assert len(open_dataset(path)) == 2 * demo.N_FACES * demo.FRAMES
    assert _shard_bytes(path) == _shard_bytes(demo_data)
    assert [p.name for p in tmp_path.iterdir()] == [final.name]  # leftover and build folder gone


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LSSAT_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("LSSAT_CACHE")
    assert default_cache_dir() == tmp_path / "x" / "lssat-search"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert default_cache_dir() == tmp_path / "h" / ".cache" / "lssat-search"


def test_self_blend_is_deterministic_and_local() -> None:
    face = np.random.default_rng(0).uniform(0, 255, (64, 64)).astype(np.float32)
    a, mask_a = self_blend(face, np.random.default_rng(5))
    b, mask_b = self_blend(face, np.random.default_rng(5))
    assert np.array_equal(a, b) and np.array_equal(mask_a, mask_b)
    assert a.shape == face.shape and 0 <= a.min() and a.max() <= 255
    mask = face_mask(64, 64, np.random.default_rng(1))
    assert mask.max() == pytest.approx(1.0) and mask[0, 0] < 0.05 and mask[36, 32] > 0.9
    assert 0.05 < (mask > 0.5).mean() < 0.6  # a face region, not the whole frame
    rgb = np.stack([face] * 3, axis=2)
    out, _ = self_blend(rgb, np.random.default_rng(2))
    assert out.shape == (64, 64, 3)


# --------------------------------------------------------------------------- resolve_data
def test_resolve_data(demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSSAT_CACHE", str(demo_data.parent))
    assert resolve_data(None, "deepfake") == demo_data  # the cached demo, not a rebuild
    assert resolve_data(str(demo_data), "deepfake") == demo_data
    with pytest.raises(DataError, match=r"python -m lssat\.data\.prepare celeba --root"):
        resolve_data(None, "attributes")
    with pytest.raises(DataError, match=r"python -m lssat\.data\.prepare affectnet"):
        resolve_data(None, "emotion")
    with pytest.raises(
        DataError, match="holds task 'deepfake', but the config asks for task 'emotion'"
    ):
        resolve_data(demo_data, "emotion")
    with pytest.raises(DataError, match="does not exist"):
        resolve_data(tmp_path / "nope", "classify")
    with pytest.raises(DataError, match=r"not a prepared dataset \(no meta.json\)"):
        resolve_data(tmp_path, "classify")


# ------------------------------------------------------------------------------ learnable
@pytest.mark.slow
def test_demo_is_learnable_by_a_small_cnn(demo_data: Path) -> None:
    """A real training signal, not noise: a 4-layer CNN trained for a few epochs at 32 px
    separates held-out faces' real and self-blended videos well above chance."""
    import torch
    from sklearn.metrics import roc_auc_score
    from torch import nn
    from torch.utils.data import DataLoader

    from lssat.data import load_trial_data
    from lssat.metrics import binary_metrics

    class Cfg:
        task, img_size, seed, train_subset, val_subset = "deepfake", 32, 0, 0, 0

    td = load_trial_data(demo_data, Cfg())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: one thread is fastest on a shared CPU
    torch.manual_seed(0)

    def block(i: int, o: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                             nn.MaxPool2d(2))  # fmt: skip

    net = nn.Sequential(block(3, 8), block(8, 16), block(16, 32), block(32, 32),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 1))  # fmt: skip
    epochs = 8
    loader = DataLoader(td.train, 32, shuffle=True, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(net.parameters(), 3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * len(loader))
    try:
        for _ in range(epochs):
            net.train()
            for b in loader:
                logits = net(b["image"].float() / 255 - 0.5).squeeze(1)
                loss = nn.functional.binary_cross_entropy_with_logits(logits, b["label"].float())
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        net.eval()
        batch = next(iter(DataLoader(td.val, len(td.val))))
        with torch.no_grad():
            scores = net(batch["image"].float() / 255 - 0.5).squeeze(1).numpy()
    finally:
        torch.set_num_threads(threads)
    labels, video = batch["label"].numpy(), batch["video"].numpy()
    metrics = binary_metrics(scores, labels, video)
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert metrics["auc"] > 0.6 and metrics["video_auc"] > 0.6, metrics  # chance is 0.5
