"""Each raw-dataset loader against a tiny tree in its real on-disk layout, broken cases too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lssat.data import open_dataset
from lssat.data import testing as T
from lssat.data.pipeline import prepare
from lssat.data.sources.affectnet import AffectNetSource
from lssat.data.sources.celeba import CelebASource
from lssat.data.sources.faceforensics import FaceForensicsSource
from lssat.data.sources.folder import FolderSource
from lssat.errors import DataError
from lssat.tasks import AFFECTNET_CLASSES, CELEBA_ATTRIBUTES


def _reasons(meta: dict) -> dict[str, str]:
    return {s["item"]: s["reason"] for s in meta["skipped"]["list"]}


# ---------------------------------------------------------------------- FaceForensics++
@pytest.fixture(scope="module")
def ff_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return T.make_faceforensics(
        tmp_path_factory.mktemp("ff"), methods=("Deepfakes", "FaceSwap"), frames=6,
        frame_folders=("FaceSwap",),
    )  # fmt: skip


@pytest.fixture(scope="module")
def ff_prepared(ff_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ff-out") / "data"
    source = FaceForensicsSource(ff_root, size=48, frames=3, methods=["Deepfakes", "FaceSwap"])
    prepare(source, out, progress=False)
    return out


def test_faceforensics_labels_splits_videos(ff_prepared: Path) -> None:
    data = open_dataset(ff_prepared)
    meta = data.meta
    assert (meta["task"], meta["label_kind"], meta["classes"]) == (
        "deepfake",
        "binary",
        ["real", "fake"],
    )
    assert meta["split_source"].startswith("official")
    keys = [data.key(i) for i in range(len(data))]
    for i, key in enumerate(keys):
        video, frame = key.split("#")
        assert data.labels[i] == int(video.startswith("manipulated_sequences/"))
        stem = Path(video).stem if video.endswith(".mp4") else Path(video).name
        ident = stem.split("_")
        split = {"000": "train", "001": "train", "002": "val", "003": "val"}.get(ident[0], "test")
        assert data.split[i] == ["train", "val", "test"].index(split), key
    # one video id per relative video path (same stem in two methods -> two videos)
    by_video: dict[int, set[str]] = {}
    for i, key in enumerate(keys):
        by_video.setdefault(int(data.video[i]), set()).add(key.split("#")[0])
    assert all(len(v) == 1 for v in by_video.values())
    paths = {next(iter(v)) for v in by_video.values()}
    assert "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4" in paths
    assert "manipulated_sequences/FaceSwap/c23/videos/000_001" in paths  # a frame folder
    # frames evenly spaced: 3 of 6 -> indices 0, 2/3, 5
    frames = sorted(
        int(k.split("#")[1])
        for k in keys
        if k.startswith("original_sequences/youtube/c23/videos/000.mp4")
    )
    assert frames[0] == 0 and frames[-1] == 5 and len(frames) >= 2


def test_faceforensics_broken_videos_skipped_and_counted(ff_prepared: Path) -> None:
    meta = open_dataset(ff_prepared).meta
    reasons = _reasons(meta)
    base = "original_sequences/youtube/c23/videos/"
    assert reasons[base + "006.mp4"] == "unreadable or corrupt video"
    assert reasons[base + "007.mp4"].startswith("no face in any of 3 decoded frames")
    assert meta["skipped"]["items"] == 2
    counts = meta["counts"]
    assert counts["train"]["videos"] == 2 + 4 and counts["test"]["videos"] == 2 + 4
    assert counts["train"]["per_class"]["fake"] > 0 and counts["val"]["per_class"]["real"] > 0


def test_faceforensics_crops_hold_the_face(ff_prepared: Path) -> None:
    from lssat.data.faces import FaceDetector

    data = open_dataset(ff_prepared)
    big = np.stack([np.kron(data.image(i), np.ones((3, 3, 1), np.uint8)) for i in range(4)])
    found = [FaceDetector(min_face=0.3)(im) for im in big]
    assert sum(f is not None for f in found) >= 3  # the crop is a face, not background


def test_faceforensics_box_file_and_hash_split(ff_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "ff"
    shutil.copytree(ff_root, root, ignore=shutil.ignore_patterns("splits", "manipulated_sequences"))
    (root / "manipulated_sequences" / "Deepfakes" / "c23" / "videos").mkdir(parents=True)
    shutil.copy(
        ff_root / "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4",
        root / "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4",
    )
    rel = "original_sequences/youtube/c23/videos/007.mp4"  # the face-less video
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("path,frame,x,y,w,h\n" + "".join(f"{rel},{f},40,20,80,80\n" for f in range(6)))
    meta = prepare(
        FaceForensicsSource(root, size=32, frames=2, methods=["Deepfakes"], boxes=boxes),
        tmp_path / "out", progress=False,
    )  # fmt: skip
    assert rel not in _reasons(meta)  # the box file replaced detection
    assert meta["split_source"].startswith("identity groups")
    assert any("split files" in w for w in meta["warnings"])


def test_faceforensics_wrong_root_and_bad_split(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"lacks folder original_sequences/youtube/c23/videos; expected"
    ):
        FaceForensicsSource(tmp_path).items()
    (tmp_path / "original_sequences/youtube/c23/videos").mkdir(parents=True)
    with pytest.raises(DataError, match="lacks folder manipulated_sequences/Deepfakes"):
        FaceForensicsSource(tmp_path, methods=["Deepfakes"]).items()
    (tmp_path / "manipulated_sequences/Deepfakes/c23/videos").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no videos"):
        FaceForensicsSource(tmp_path).items()
    (tmp_path / "original_sequences/youtube/c23/videos/000.mp4").write_bytes(b"x")
    (tmp_path / "train.json").write_text('{"a": 1}')
    with pytest.raises(DataError, match=r"train\.json must be a JSON list"):
        FaceForensicsSource(tmp_path).items()
    with pytest.raises(DataError, match="method 'DeepFace' is unknown"):
        FaceForensicsSource(tmp_path, methods=["DeepFace"])


# ------------------------------------------------------------------------------ CelebA
@pytest.mark.parametrize("variant", ["txt", "csv"])
def test_celeba_both_layouts(tmp_path: Path, variant: str) -> None:
    root = T.make_celeba(tmp_path / "celeba", n=9, variant=variant)
    meta = prepare(CelebASource(root, size=32), tmp_path / "out", progress=False)
    assert meta["task"] == "attributes" and meta["label_kind"] == "multilabel"
    assert meta["classes"] == list(CELEBA_ATTRIBUTES) and meta["groups"] == ["Male", "Young"]
    reasons = {Path(k).name: r for k, r in _reasons(meta).items()}
    assert reasons == {"000009.jpg": "corrupt or unsupported image", "000010.jpg": "missing file"}
    assert meta["rows"] == 8
    data = open_dataset(tmp_path / "out")
    assert data.labels.shape == (8, 40) and data.labels.dtype == np.uint8
    # labels and groups match the annotation file
    if variant == "txt":
        lines = (root / "list_attr_celeba.txt").read_text().splitlines()[2:]
        table = {ln.split()[0]: [int(v) > 0 for v in ln.split()[1:]] for ln in lines}
        for i in range(len(data)):
            expected = np.array(table[Path(data.key(i)).name], np.uint8)
            np.testing.assert_array_equal(data.labels[i], expected)
            np.testing.assert_array_equal(data.groups[i], expected[[20, 39]])
    assert set(np.unique(data.split)) == {0, 1}  # images 1-6 train, 7-8 val


def test_celeba_missing_annotation_and_bad_line(tmp_path: Path) -> None:
    root = T.make_celeba(tmp_path / "c", n=3, broken=False)
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match=r"no partition file \(list_eval_partition.txt"):
        CelebASource(root).items()
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 5\n")
    with pytest.raises(DataError, match="line 2 must be"):
        CelebASource(root).items()
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    attr = root / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    attr.write_text("\n".join(lines[:3] + [lines[3].rsplit(" ", 1)[0]]) + "\n")
    with pytest.raises(DataError, match="line 4 has 39 values for 40 attributes"):
        CelebASource(root).items()


# --------------------------------------------------------------------------- AffectNet
def test_affectnet_raw_release(tmp_path: Path) -> None:
    root = T.make_affectnet(tmp_path / "aff")
    source = AffectNetSource(root, size=32, val_fraction=0.0)  # no val: validates on test
    meta = prepare(source, tmp_path / "out", progress=False)
    assert meta["task"] == "emotion" and meta["classes"] == list(AFFECTNET_CLASSES)
    assert meta["layout"] == "raw" and meta["val_split"] == "test" and meta["val_is_test"]
    assert meta["counts"]["train"]["per_class"] == dict.fromkeys(AFFECTNET_CLASSES, 1)
    assert meta["counts"]["test"]["rows"] == 3 and meta["counts"]["val"]["rows"] == 0
    assert _reasons(meta) == {
        "train_set/images/900.jpg": "corrupt or unsupported image",
        "train_set/images/901.jpg": "missing annotation annotations/901_exp.npy",
    }
    assert meta["excluded"]["by_reason"] == {"label 8 (None) is not an expression class": 1}
    data = open_dataset(tmp_path / "out")
    for i in range(len(data)):  # label = the code stored in <id>_exp.npy
        stem = Path(data.key(i)).stem
        split_dir = data.key(i).split("/")[0]
        code = int(np.load(root / split_dir / "annotations" / f"{stem}_exp.npy"))
        assert data.labels[i] == code


def test_affectnet_seven_classes_and_val_fraction(tmp_path: Path) -> None:
    root = T.make_affectnet(tmp_path / "aff", broken=False)
    meta = prepare(
        AffectNetSource(root, size=32, num_classes=7, val_fraction=0.5),
        tmp_path / "o",
        progress=False,
    )
    assert meta["classes"] == list(AFFECTNET_CLASSES[:7])
    assert meta["excluded"]["by_reason"]["class Contempt left out (--classes 7)"] == 2
    assert meta["counts"]["val"]["rows"] > 0 and meta["val_split"] == "val"


def test_affectnet_class_folders_with_empty_class(tmp_path: Path) -> None:
    root = T.make_affectnet(tmp_path / "aff", variant="folders")
    meta = prepare(AffectNetSource(root, size=32), tmp_path / "out", progress=False)
    assert meta["layout"] == "class-folders"
    assert meta["counts"]["train"]["per_class"]["Happy"] == 2
    assert meta["counts"]["train"]["per_class"]["Contempt"] == 0  # mapping stays fixed
    assert "class folder train/contempt holds no images" in meta["warnings"]
    (root / "train" / "grumpy").mkdir()
    with pytest.raises(DataError, match="train/grumpy is not a known class"):
        AffectNetSource(root).items()


# ------------------------------------------------------------------------------ folder
def test_folder_tree_with_empty_class_and_corrupt_image(tmp_path: Path) -> None:
    root = T.make_folder(tmp_path / "raw")
    meta = prepare(FolderSource(root, size=32, detect=True), tmp_path / "out", progress=False)
    assert meta["task"] == "classify" and meta["classes"] == ["cat_a", "cat_b"]
    assert _reasons(meta) == {"cat_a/broken.jpg": "corrupt or unsupported image"}
    assert "class folder cat_empty holds no images; the class is left out" in meta["warnings"]
    assert sum(c["rows"] for c in meta["counts"].values()) == 6


def test_folder_split_dirs_deepfake_task(tmp_path: Path) -> None:
    for split in ("train", "test"):
        T.make_folder(tmp_path / "raw" / split, classes=("fake", "real"), per_class=2,
                      empty=None, corrupt=False)  # fmt: skip
    meta = prepare(
        FolderSource(tmp_path / "raw", size=32, task="deepfake"), tmp_path / "o", progress=False
    )
    assert meta["classes"] == ["real", "fake"] and meta["label_kind"] == "binary"
    assert meta["counts"]["test"]["per_class"] == {"real": 2, "fake": 2}
    data = open_dataset(tmp_path / "o")
    assert all(data.labels[i] == ("/fake/" in data.key(i)) for i in range(len(data)))
    with pytest.raises(DataError, match="needs exactly two classes named real and fake"):
        FolderSource(T.make_folder(tmp_path / "x", corrupt=False), task="deepfake").items()


def test_folder_csv_with_groups(tmp_path: Path) -> None:
    root = T.make_folder_csv(tmp_path / "raw")
    meta = prepare(
        FolderSource(root, size=32, csv_file=Path("labels.csv")), tmp_path / "o", progress=False
    )
    assert meta["classes"] == ["neutral", "smile"] and meta["groups"] == ["group"]
    assert meta["group_values"] == {"group": ["a", "b"]}
    assert [meta["counts"][s]["rows"] for s in ("train", "val", "test")] == [6, 1, 1]
    data = open_dataset(tmp_path / "o")
    assert data.groups[:, 0].tolist() == [0, 1, -1, 0, 1, -1, 0, 1]  # "" -> unknown
    (root / "labels.csv").write_text("file,label\nimages/000.jpg,a\n")
    with pytest.raises(DataError, match="lacks column 'path'"):
        FolderSource(root, csv_file=Path("labels.csv")).items()


def test_meta_json_is_complete(ff_prepared: Path) -> None:
    meta = json.loads((ff_prepared / "meta.json").read_text())
    for key in ("task", "label_kind", "classes", "groups", "counts", "skipped", "source", "size",
                "shards", "val_split", "excluded", "warnings"):  # fmt: skip
        assert key in meta
    assert meta["source"]["options"]["frames"] == 3 and meta["size"] == 48
