"""Issue 12 (sources): AffectNet's carved val split, FF++ identity-safe fallback split,
Celeb-DF-v2 as a test-only set; each on a tiny tree in the real on-disk layout."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from lssat.data import open_dataset
from lssat.data import testing as T
from lssat.data.pipeline import prepare
from lssat.data.prepare import main as prepare_main
from lssat.data.sources.affectnet import AffectNetSource
from lssat.data.sources.base import hash_split
from lssat.data.sources.celebdf import CelebDFSource
from lssat.data.sources.faceforensics import (
    FALLBACK_FRACTIONS,
    FaceForensicsSource,
    identities,
    identity_splits,
)
from lssat.errors import DataError
from lssat.tasks import AFFECTNET_CLASSES


def _keys_by_split(path: Path) -> dict[str, set[str]]:
    data = open_dataset(path)
    out: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
    for i in range(len(data)):
        out[("train", "val", "test")[int(data.split[i])]].add(data.key(i))
    return out


# --------------------------------------------------------------------------- AffectNet
def test_affectnet_carves_a_stratified_val_split_by_default(tmp_path: Path) -> None:
    root = T.make_affectnet(tmp_path / "aff", broken=False, copies=5)  # 5 images per class
    code = prepare_main(["affectnet", "--root", str(root), "--out", str(tmp_path / "a"),
                         "--size", "24", "--quiet"])  # fmt: skip
    assert code == 0
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert meta["val_split"] == "val" and meta["val_is_test"] is False
    assert "official validation set (val_set/)" in meta["split_roles"]["test"]
    assert "stratified by class" in meta["split_roles"]["val"]
    # default --val-fraction 0.1 of the 40 usable training images -> 4 val images
    assert meta["counts"]["val"]["rows"] == 4 and meta["counts"]["train"]["rows"] == 36
    splits = _keys_by_split(tmp_path / "a")
    assert all(k.startswith("val_set/") for k in splits["test"]) and len(splits["test"]) == 3
    assert all(k.startswith("train_set/") for k in splits["val"] | splits["train"])
    # stratified: 0.2 -> exactly one image of each of the 8 classes
    prepare(AffectNetSource(root, size=24, val_fraction=0.2), tmp_path / "b", progress=False)
    per_class = open_dataset(tmp_path / "b").meta["counts"]["val"]["per_class"]
    assert per_class == dict.fromkeys(AFFECTNET_CLASSES, 1)
    # fixed seed: the same images again, whatever the listing order
    source = AffectNetSource(root, size=24)
    items = source.list_items()
    again = {it.key for it in items if it.split == "val"}
    assert again == splits["val"]
    shuffled = list(items)
    random.Random(1).shuffle(shuffled)
    shuffled = [
        it.__class__(it.key, "test" if it.split == "test" else "train", it.label, (), it.path)
        for it in shuffled
    ]
    assert {it.key for it in source._carve_val(shuffled) if it.split == "val"} == again


def test_affectnet_class_folders_val_folder_is_the_test_split(tmp_path: Path) -> None:
    root = T.make_affectnet(tmp_path / "aff", variant="folders")  # train/ and val/
    meta = prepare(AffectNetSource(root, size=24, val_fraction=0.5), tmp_path / "o",
                   progress=False)  # fmt: skip
    splits = _keys_by_split(tmp_path / "o")
    assert splits["test"] and all(k.startswith("val/") for k in splits["test"])
    assert splits["val"] and all(k.startswith("train/") for k in splits["val"])
    assert meta["val_is_test"] is False and "val/" in meta["split_roles"]["test"]


# ---------------------------------------------------------------------- FaceForensics++
def _crossing_pairs(n_ids: int = 24) -> list[tuple[str, str]]:
    """FF++-like target_source pairs (disjoint pairs, fakes both ways) that the old target-id
    hash put in different splits where it could, plus a fake joining two pairs (a chain)."""
    ids = [f"{i:03d}" for i in range(n_ids)]
    old = {i: hash_split(i, 0.14, 0.14) for i in ids}
    pairs, free = [], list(ids)
    while len(free) >= 2:
        a = free.pop(0)
        b = next((x for x in free if old[x] != old[a]), free[0])
        free.remove(b)
        pairs += [(a, b), (b, a)]
    pairs.append((pairs[0][0], pairs[2][0]))  # one source used in a second pair: a chain
    assert sum(old[a] != old[b] for a, b in pairs) >= 6  # the tree really crosses
    return pairs


def test_faceforensics_fallback_split_keeps_each_face_in_one_split(tmp_path: Path) -> None:
    pairs = _crossing_pairs()
    real = tmp_path / "original_sequences/youtube/c23/videos"
    fake = tmp_path / "manipulated_sequences/Deepfakes/c23/videos"
    clip = T.face_clip(0, 2)
    for t, s in pairs:
        for vid in (t, s):
            if not (real / f"{vid}.mp4").exists():
                T.write_video(real / f"{vid}.mp4", clip)
        T.write_video(fake / f"{t}_{s}.mp4", clip)
    T.write_video(real / "099.mp4", clip)  # a lone original: a group of its own
    source = FaceForensicsSource(tmp_path, methods=["Deepfakes"])
    items = source.items()
    assert source.split_source.startswith("identity groups")
    split_of_id: dict[str, set[str]] = {}
    for it in items:
        vid = Path(it.key).stem
        for ident in identities(vid):
            split_of_id.setdefault(ident, set()).add(it.split)
    crossing = {i: s for i, s in split_of_id.items() if len(s) > 1}
    assert not crossing, f"faces in two splits: {crossing}"
    assert {it.split for it in items} == {"train", "val", "test"}


def test_identity_splits_on_ff_scale_lists() -> None:
    rng = random.Random(0)
    ids = [f"{i:03d}" for i in range(1000)]
    perm = ids[:]
    rng.shuffle(perm)
    # FF++'s real structure: 500 disjoint pairs, fakes in both directions, four methods
    pairs = [(perm[2 * k], perm[2 * k + 1]) for k in range(500)]
    vids = ids + [f"{a}_{b}" for a, b in pairs] * 4 + [f"{b}_{a}" for a, b in pairs] * 4
    split = identity_splits(vids, FALLBACK_FRACTIONS)
    per_id: dict[str, set[str]] = {}
    for v in vids:
        for i in identities(v):
            per_id.setdefault(i, set()).add(split[v])
    assert all(len(s) == 1 for s in per_id.values())
    share = {s: sum(split[v] == s for v in vids) / len(vids) for s in FALLBACK_FRACTIONS}
    for s, want in FALLBACK_FRACTIONS.items():
        assert abs(share[s] - want) < 0.01, share
    assert identities("01_02__meeting_serious__YVGY8LOK") == ["01", "02"]
    assert identities("01__walking_outside") == ["01"]


# ---------------------------------------------------------------------------- Celeb-DF
@pytest.fixture(scope="module")
def celebdf_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return T.make_celebdf(tmp_path_factory.mktemp("celebdf"), frames=6)


def test_celebdf_official_test_list(celebdf_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cdf"
    code = prepare_main(["celebdf", "--root", str(celebdf_root), "--out", str(out),
                         "--size", "32", "--frames", "3", "--quiet"])  # fmt: skip
    assert code == 0
    data = open_dataset(out)
    meta = data.meta
    assert (meta["task"], meta["label_kind"], meta["classes"]) == ("deepfake", "binary",
                                                                   ["real", "fake"])  # fmt: skip
    assert meta["evaluation_only"] is True and meta["val_is_test"] is True
    assert set(meta["split_roles"]) == {"test"} and "List_of_testing" in meta["split_roles"]["test"]
    assert meta["counts"]["train"]["rows"] == 0 and meta["counts"]["val"]["rows"] == 0
    assert not any("validation" in w for w in meta["warnings"])
    videos: dict[int, set[str]] = {}
    for i in range(len(data)):
        video = data.key(i).split("#")[0]
        # the list's label 1 = real / 0 = synthesised became ours: 1 = fake
        assert data.labels[i] == int(video.startswith("Celeb-synthesis/")), video
        videos.setdefault(int(data.video[i]), set()).add(video)
    assert all(len(v) == 1 for v in videos.values())
    assert {next(iter(v)) for v in videos.values()} == {
        "Celeb-real/id0_0000.mp4",
        "YouTube-real/00000.mp4",
        "Celeb-synthesis/id0_id1_0000.mp4",
    }  # fmt: skip  (the unlisted videos are not in it)
    reasons = {s["item"]: s["reason"] for s in meta["skipped"]["list"]}
    assert reasons == {
        "Celeb-real/id2_0000.mp4": "unreadable or corrupt video",
        "YouTube-real/00001.mp4": "no face in any of 3 decoded frames",
        "Celeb-synthesis/id9_id8_0000.mp4": "missing file",
    }


def test_celebdf_all_videos(celebdf_root: Path, tmp_path: Path) -> None:
    meta = prepare(CelebDFSource(celebdf_root, size=24, frames=2, all_videos=True),
                   tmp_path / "all", progress=False)  # fmt: skip
    assert meta["counts"]["test"]["videos"] == 6  # 6 good + 2 broken listed, broken skipped
    assert meta["counts"]["test"]["per_class"]["fake"] > 0
    assert meta["skipped"]["items"] == 2 and meta["split_source"] == "every video (--all)"


def test_celebdf_bad_input_is_one_sentence(
    celebdf_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lst = celebdf_root / "List_of_testing_videos.txt"
    text = lst.read_text()
    out = tmp_path / "never"
    try:
        lst.write_text(text + "0 Celeb-real/id1_0000.mp4\n")  # labelled fake, real folder
        with pytest.raises(DataError, match=r"line 7 labels 'Celeb-real/id1_0000.mp4' 0 "):
            CelebDFSource(celebdf_root).items()
        assert prepare_main(["celebdf", "--root", str(celebdf_root), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: Celeb-DF test list") and err.count("\n") == 1
        assert not out.exists()  # nothing written
        lst.write_text("real Celeb-real/id0_0000.mp4\n")
        with pytest.raises(DataError, match=r"line 1 must be '<1\|0> <folder>/<video>'"):
            CelebDFSource(celebdf_root).items()
        lst.unlink()
        with pytest.raises(DataError, match="has no List_of_testing_videos.txt; pass --all"):
            CelebDFSource(celebdf_root).items()
    finally:
        lst.write_text(text)
    with pytest.raises(DataError, match="lacks folder Celeb-real/"):
        CelebDFSource(tmp_path).items()


def test_celebdf_labels_match_folders_in_real_list_convention() -> None:
    from lssat.data.sources import celebdf

    # documented convention of List_of_testing_videos.txt: 1 = real, 0 = synthesised
    assert celebdf.LIST_LABEL == {"1": 0, "0": 1}
    assert all(lab == int(f == "Celeb-synthesis") for f, lab in celebdf.FOLDERS.items())
    assert np.array_equal([celebdf.LIST_LABEL[x] for x in "10"], [0, 1])
