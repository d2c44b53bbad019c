"""Issue 23, data edges: ``--limit`` keeps every class (and whole videos), a folder's frames
form videos that never span splits, and ``dataset_hash`` / ``val_set`` depend on the data,
never on where its split or label files lie."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from lssat.data import open_dataset
from lssat.data import testing as T
from lssat.data.pipeline import prepare
from lssat.data.prepare import main as prepare_main
from lssat.data.selection import identity
from lssat.data.sources.affectnet import AffectNetSource
from lssat.data.sources.celeba import CelebASource
from lssat.data.sources.celebdf import CelebDFSource
from lssat.data.sources.faceforensics import FaceForensicsSource
from lssat.data.sources.folder import FolderSource
from lssat.errors import DataError


def _labels_per_split(items: list) -> dict[str, set]:
    out: dict[str, set] = {}
    for it in items:
        if "exclude" not in it.extra:
            out.setdefault(it.split, set()).add(it.label)
    return out


def _video_folder(root: Path, videos: int = 4, frames: int = 4) -> Path:
    """``root/{real,fake}/<video>/NNNN.png``: ``videos`` folders of ``frames`` frames a class."""
    for c, name in enumerate(("real", "fake")):
        for v in range(videos):
            for f in range(frames):
                T.write_image(root / name / f"{name}_{v:03d}" / f"{f:04d}.png",
                              T.face_scene(c * 7 + v, 48, 48, 40))  # fmt: skip
    return root


@pytest.fixture(scope="module")
def ff_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return T.make_faceforensics(tmp_path_factory.mktemp("ff"), frames=2, broken=False)


@pytest.fixture(scope="module")
def video_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _video_folder(tmp_path_factory.mktemp("vf") / "raw", videos=6, frames=4)


# ------------------------------------------------------------------ 4. --limit keeps classes
def test_limit_keeps_both_classes_in_every_source(
    ff_root: Path, video_root: Path, tmp_path: Path
) -> None:
    cdf = T.make_celebdf(tmp_path / "cdf", frames=2, broken=False)
    sources = {
        "faceforensics": FaceForensicsSource(ff_root, limit=2),
        "celebdf": CelebDFSource(cdf, limit=2),
        "celebdf --all": CelebDFSource(cdf, limit=2, all_videos=True),
        "celeba": CelebASource(T.make_celeba(tmp_path / "celeba", broken=False), limit=2),
        "affectnet": AffectNetSource(T.make_affectnet(tmp_path / "an", broken=False), limit=2),
        "folder": FolderSource(T.make_folder(tmp_path / "fo", corrupt=False, empty=None),
                               limit=2, val_fraction=0.0, test_fraction=0.0),
        "folder deepfake": FolderSource(video_root, limit=2, task="deepfake",
                                        val_fraction=0.0, test_fraction=0.0),
    }  # fmt: skip
    for name, source in sources.items():
        items = source.items()
        per_split = _labels_per_split(items)
        source.limit = 0
        full = _labels_per_split(source.items())
        source.limit = 2
        assert per_split.keys() == full.keys(), name
        for split, labels in per_split.items():
            units = {it.extra.get("video", it.key) for it in items if it.split == split}
            assert len(units) <= 2, f"{name} {split}: {len(units)} units kept"
            want = min(2, len(full[split]))
            assert len(labels) == want, f"{name} {split}: --limit 2 kept only labels {labels}"
    # whole videos: the folder source keeps every frame of a kept video
    kept = [it for it in sources["folder deepfake"].items() if it.split == "train"]
    assert len(kept) == 2 * 4


def test_limit_2_prepares_both_classes(ff_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ff2"
    code = prepare_main(["faceforensics", "--root", str(ff_root), "--out", str(out),
                         "--size", "32", "--frames", "1", "--limit", "2", "--quiet"])  # fmt: skip
    assert code == 0
    counts = open_dataset(out).meta["counts"]
    for split in ("train", "val", "test"):
        assert counts[split]["per_class"] == {"real": 1, "fake": 1}, (split, counts[split])


# ------------------------------------------------------------- 5. folder videos stay whole
def test_folder_deepfake_frames_form_videos_that_never_span_splits(
    video_root: Path, tmp_path: Path
) -> None:
    src = FolderSource(video_root, size=32, task="deepfake", val_fraction=0.3,
                       test_fraction=0.3)  # fmt: skip
    meta = prepare(src, tmp_path / "o", progress=False)
    data = open_dataset(tmp_path / "o")
    folders: dict[int, set[str]] = {}
    splits: dict[str, set[int]] = {}
    for i in range(len(data)):
        vid = int(data.video[i])
        assert vid >= 0, data.key(i)
        folders.setdefault(vid, set()).add(str(Path(data.key(i)).parent))
        splits.setdefault(str(Path(data.key(i)).parent), set()).add(int(data.split[i]))
    assert len(folders) == 12 and all(len(f) == 1 for f in folders.values())
    assert all(len(s) == 1 for s in splits.values()), splits  # a video never spans splits
    assert len({s for v in splits.values() for s in v}) >= 2  # the videos did spread
    assert sum(c.get("videos", 0) for c in meta["counts"].values()) == 12
    assert meta["source"]["options"]["video_from"] == "parent"
    # --video-from none: every image is its own unit, as before
    none = FolderSource(video_root, task="deepfake", video_from="none").items()
    assert all("video" not in it.extra for it in none)


def test_folder_video_with_two_labels_is_one_clear_error(tmp_path: Path) -> None:
    root = T.make_folder_csv(tmp_path / "raw")  # images/*.jpg of both labels in one folder
    rows = list(csv.reader((root / "labels.csv").open()))
    with (root / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(rows[0][:2])
        w.writerows([r[0], "fake" if r[1] == "smile" else "real"] for r in rows[1:])
    src = FolderSource(root, task="deepfake", csv_file=Path("labels.csv"))
    with pytest.raises(DataError, match=r"folder 'images' holds real and fake images.*"
                       r"--video-from none"):  # fmt: skip
        src.items()
    assert len(FolderSource(root, task="deepfake", csv_file=Path("labels.csv"),
                            video_from="none").items()) == 8  # fmt: skip
    code = prepare_main(["folder", "--root", str(root), "--out", str(tmp_path / "x"),
                         "--video-from", "sideways"])  # fmt: skip
    assert code == 2


# ------------------------------------------------------- 3. fingerprints free of file paths
def _identity(out: Path) -> dict:
    data = open_dataset(out)
    return identity(data, data.indices("val"))


def test_same_folder_prepared_from_two_places_has_one_val_set(tmp_path: Path) -> None:
    first = T.make_folder_csv(tmp_path / "a" / "raw", n=10)
    second = tmp_path / "b" / "elsewhere"
    shutil.copytree(first, second)
    ids = []
    for root in (first, second):
        out = root.parent / "out"
        code = prepare_main(["folder", "--root", str(root), "--out", str(out), "--size", "32",
                             "--csv", str(root / "labels.csv"), "--quiet"])  # fmt: skip
        assert code == 0
        ids.append(_identity(out))
    assert ids[0]["dataset_hash"] == ids[1]["dataset_hash"]
    assert ids[0]["val_set"] == ids[1]["val_set"]


def test_faceforensics_split_files_in_two_places_give_one_val_set(
    ff_root: Path, tmp_path: Path
) -> None:
    ids = []
    for place in ("x", "y/z"):
        splits = tmp_path / place / "splits"
        shutil.copytree(ff_root / "splits", splits)
        out = tmp_path / place / "out"
        code = prepare_main(["faceforensics", "--root", str(ff_root), "--out", str(out),
                             "--size", "32", "--frames", "1", "--splits", str(splits),
                             "--quiet"])  # fmt: skip
        assert code == 0
        ids.append(_identity(out))
    assert ids[0] == ids[1]
    # the data's identity still counts: other split files give another val_set
    other = tmp_path / "other" / "splits"
    shutil.copytree(ff_root / "splits", other)
    (other / "val.json").write_text('[["004", "005"]]')
    (other / "test.json").write_text('[["002", "003"]]')
    out = tmp_path / "other" / "out"
    assert (
        prepare_main(
            [
                "faceforensics",
                "--root",
                str(ff_root),
                "--out",
                str(out),
                "--size",
                "32",
                "--frames",
                "1",
                "--splits",
                str(other),
                "--quiet",
            ]
        )
        == 0
    )
    assert _identity(out)["val_set"] != ids[0]["val_set"]


def test_limit_quotas_give_every_class_one_then_shares() -> None:
    from lssat.data.sources.base import limit_quotas

    assert limit_quotas({0: 1, 1: 4}, 2) == {0: 1, 1: 1}  # proportional would give 0 real
    assert limit_quotas({0: 10, 1: 40}, 10) == {0: 2, 1: 8}
    assert limit_quotas({0: 2, 1: 2}, 100) == {0: 2, 1: 2}
    assert limit_quotas({0: 5, 1: 9, 2: 5}, 2) == {0: 1, 1: 1, 2: 0}  # largest classes first
