"""The embedded demos beyond self-blending: face swap, faces vs non-faces, digits (#15)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lssat.data.demo as demo
from lssat.data import open_dataset, resolve_data
from lssat.errors import DataError


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-cache")


def _face(key: str) -> int:
    return int(key.split("/")[1].split("#")[0].removeprefix("lfw_"))


def test_swap_blends_another_face_of_the_same_split(cache: Path) -> None:
    data = open_dataset(demo.demo_dataset(cache, name="swap"))
    meta = data.meta
    assert meta["task"] == "deepfake" and meta["source"]["dataset"] == "swap"
    split_of = demo.face_splits(0)
    donors = demo._donors(split_of, 0)
    assert all(d != f and split_of[d] == split_of[f] for f, d in donors.items())
    assert sorted(donors.values()) == list(range(demo.N_FACES))  # every face donates once
    counts = {s: len(data.indices(s)) // (2 * demo.FRAMES) for s in ("train", "val", "test")}
    assert counts == demo.SPLIT_SIZES
    for split in ("train", "val", "test"):  # no face in two splits
        assert {split_of[_face(data.key(i))] for i in data.indices(split)} == {split}
    faces = demo.lfw_faces().astype(float)

    def frames(video: int) -> np.ndarray:
        return data.images(np.flatnonzero(data.video == video))[..., 0].astype(float)

    # a fake frame differs from its real twin inside the face, and looks more like the donor
    # there than the real frame does
    real, fake = frames(0), frames(1)
    assert _face(data.key(int(np.flatnonzero(data.video == 1)[0]))) == 0
    donor = demo.upscale(faces[donors[0]], demo.SIZE)
    inner = (slice(20, 50), slice(18, 46))
    gap_real = [np.corrcoef(r[inner].ravel(), donor[inner].ravel())[0, 1] for r in real]
    gap_fake = [np.corrcoef(f[inner].ravel(), donor[inner].ravel())[0, 1] for f in fake]
    assert np.mean(gap_fake) > np.mean(gap_real) + 0.05
    assert np.abs(real[:, :6] - fake[:, :6]).mean() < 3  # the border is the target's


def test_sbi_and_swap_share_real_videos_and_split(cache: Path, demo_data: Path) -> None:
    sbi, swap = open_dataset(demo_data), open_dataset(demo.demo_dataset(cache, name="swap"))
    real = np.flatnonzero(sbi.labels == 0)
    assert np.array_equal(sbi.images(real[:16]), swap.images(real[:16]))
    assert np.array_equal(sbi.split, swap.split)


@pytest.mark.parametrize(("name", "n", "classes"), [("faces", 200, 2), ("digits", 1797, 10)])
def test_still_demos_are_stratified(cache: Path, name: str, n: int, classes: int) -> None:
    data = open_dataset(demo.demo_dataset(cache, name=name))
    meta = data.meta
    assert meta["task"] == "classify" and len(meta["classes"]) == classes and len(data) == n
    assert meta["source"]["dataset"] == name and meta["channels"] == "grey"
    for split, share in zip(("train", "val", "test"), (0.6, 0.2, 0.2), strict=True):
        labels = data.labels[data.indices(split)]
        per_class = np.bincount(labels, minlength=classes) / np.bincount(data.labels)
        assert np.allclose(per_class, share, atol=0.03), (split, per_class)
    if name == "faces":  # labels are the shipped order: 100 faces, then 100 non-faces
        first = data.key(int(np.flatnonzero(data.labels == 1)[0]))
        assert meta["classes"][1] == "face" and first.startswith("face/")
        face0 = demo.upscale(demo.lfw_faces()[0], demo.SIZE)
        row = [i for i in range(n) if data.key(i) == "face/0000"][0]
        assert np.abs(data.image(row)[..., 0] - face0).max() <= 1


def test_resolve_demo_names(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSSAT_CACHE", str(cache))
    assert resolve_data("demo:faces", "classify") == cache / demo.folder_name("faces")
    with pytest.raises(DataError, match="'classify' demo, but the config asks for task 'deepfake'"):
        resolve_data("demo:faces", "deepfake")
    with pytest.raises(DataError, match="demo dataset 'nope' is unknown; built-in demos: sbi"):
        resolve_data("demo:nope", "deepfake")


def test_lighting_groups(cache: Path, demo_data: Path) -> None:
    """The lighting group: half the source images each side of the median grey level."""
    for path in (demo_data, demo.demo_dataset(cache, name="faces")):
        data = open_dataset(path)
        assert data.meta["groups"] == ["lighting"]
        assert data.meta["group_values"] == {"lighting": ["dark", "bright"]}
        assert set(np.unique(data.groups[:, 0])) == {0, 1}
    light = demo.lighting(demo.lfw_faces())
    assert light.sum() == 50
    means = demo.lfw_faces().reshape(100, -1).mean(axis=1)
    assert means[light == 1].min() > means[light == 0].max()
    data = open_dataset(demo_data)  # every frame of a face carries that face's group
    for i in range(0, len(data), 97):
        assert data.groups[i, 0] == light[_face(data.key(i))]
    assert open_dataset(demo.demo_dataset(cache, name="digits")).meta["groups"] == []
