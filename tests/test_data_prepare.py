"""The prepare pipeline and shard storage: resume, fingerprints, corrupt shards, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lssat.data import open_dataset
from lssat.data import testing as T
from lssat.data.faces import read_image
from lssat.data.pipeline import prepare
from lssat.data.prepare import main
from lssat.data.shards import META_FILE
from lssat.data.sources.faceforensics import FaceForensicsSource
from lssat.data.sources.folder import FolderSource
from lssat.errors import DataError


@pytest.fixture(scope="module")
def ff_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return T.make_faceforensics(tmp_path_factory.mktemp("ff"), frames=4)


def _ff(root: Path) -> FaceForensicsSource:
    source = FaceForensicsSource(root, size=32, frames=3)
    source.chunk = 3  # several shards from a tiny tree
    return source


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


class Interrupt(KeyboardInterrupt):
    pass


@pytest.fixture(scope="module")
def ff_whole(ff_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted prepare of the FF++ tree."""
    out = tmp_path_factory.mktemp("ff-whole") / "out"
    prepare(_ff(ff_root), out, progress=False)
    return out


def test_interrupted_prepare_resumes_to_identical_shards(
    ff_root: Path, ff_whole: Path, tmp_path: Path
) -> None:
    part = tmp_path / "part"

    def stop_after_second(k: int) -> None:
        if k == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        prepare(_ff(ff_root), part, progress=False, on_chunk=stop_after_second)
    assert not (part / META_FILE).exists()
    written = sorted(p.name for p in (part / "shards").iterdir())
    assert written == ["part-00000.arrow", "part-00001.arrow"]
    # a half-written shard from a killed process is a .tmp file: it must be ignored
    (part / "shards" / "part-00002.arrow.tmp").write_bytes(b"half")
    redone: list[int] = []
    prepare(_ff(ff_root), part, progress=False, on_chunk=redone.append)
    assert redone == list(range(2, len(_files(ff_whole / "shards"))))  # only the missing ones
    assert _files(part) == _files(ff_whole)
    data = open_dataset(part)
    keys = [data.key(i) for i in range(len(data))]
    assert len(keys) == len(set(keys))  # nothing duplicated


def test_rerun_of_finished_prepare_changes_nothing(
    ff_root: Path, ff_whole: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(ff_whole, out)
    calls: list[int] = []
    prepare(_ff(ff_root), out, progress=False, on_chunk=calls.append)
    assert calls == [] and _files(out) == _files(ff_whole)


def test_other_options_refused_then_overwrite(tmp_path: Path) -> None:
    root = T.make_folder(tmp_path / "raw", corrupt=False)
    out = tmp_path / "out"
    prepare(FolderSource(root, size=32), out, progress=False)
    with pytest.raises(DataError, match="option 'margin': 0.2 before, 0.5 now"):
        prepare(FolderSource(root, size=32, margin=0.5), out, progress=False)
    with pytest.raises(DataError, match="'size': 32 before, 48 now"):
        prepare(FolderSource(root, size=48), out, progress=False)
    T.write_image(root / "cat_b" / "new.jpg", T.face_scene(9, 96, 96, 80))
    with pytest.raises(DataError, match="'items': 6 before, 7 now"):
        prepare(FolderSource(root, size=32), out, progress=False)
    meta = prepare(FolderSource(root, size=48), out, progress=False, overwrite=True)
    assert meta["size"] == 48 and meta["rows"] == 7


def test_nonempty_foreign_output_folder_refused(tmp_path: Path) -> None:
    root = T.make_folder(tmp_path / "raw", corrupt=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        prepare(FolderSource(root, size=32), out, progress=False)


def test_corrupt_or_missing_shard_names_the_file(tmp_path: Path) -> None:
    root = T.make_folder(tmp_path / "raw", corrupt=False)
    out = tmp_path / "out"
    prepare(FolderSource(root, size=32), out, progress=False)
    shard = out / "shards" / "part-00000.arrow"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(DataError, match=r"part-00000\.arrow is corrupt"):
        open_dataset(out)
    shard.unlink()
    with pytest.raises(DataError, match=r"part-00000\.arrow is missing"):
        open_dataset(out)
    # a re-run rebuilds what is missing
    prepare(FolderSource(root, size=32), out, progress=False)
    assert len(open_dataset(out)) == 6


def test_open_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(tmp_path / "nope")
    with pytest.raises(DataError, match="meta.json is missing"):
        open_dataset(tmp_path)
    (tmp_path / META_FILE).write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        open_dataset(tmp_path)
    (tmp_path / META_FILE).write_text(json.dumps({"format": "lssat-shards"}))
    with pytest.raises(DataError, match="lacks key 'size'"):
        open_dataset(tmp_path)


def test_shards_round_trip_images_exactly(tmp_path: Path) -> None:
    root = T.make_folder(tmp_path / "raw", corrupt=False, empty=None)
    out = tmp_path / "out"
    source = FolderSource(root, size=40)
    source.chunk = 4
    prepare(source, out, progress=False)
    data = open_dataset(out)
    assert len(data.meta["shards"]) == 2 and len(data) == 6
    for i in range(len(data)):
        expected = source.face(read_image(root / data.key(i)), data.key(i))
        np.testing.assert_array_equal(data.image(i), expected)
    gathered = data.images([5, 0, 4])
    assert gathered.shape == (3, 40, 40, 3) and gathered.flags.writeable
    np.testing.assert_array_equal(gathered[0], data.image(5))


# ------------------------------------------------------------------------------ CLI
def test_cli_prepares_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = T.make_folder(tmp_path / "raw")
    out = tmp_path / "out"
    argv = ["folder", "--root", str(root), "--out", str(out), "--size", "32", "--quiet"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "prepared 6 faces" in captured.out and "skipped 1 items" in captured.out
    assert "cat_empty holds no images" in captured.err
    meta = json.loads((out / META_FILE).read_text())
    assert meta["skipped"]["list"] == [
        {"item": "cat_a/broken.jpg", "reason": "corrupt or unsupported image"}
    ]


def test_cli_progress_bar_shows_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = T.make_folder(tmp_path / "raw")
    assert main(["folder", "--root", str(root), "--out", str(tmp_path / "o"), "--size", "32"]) == 0
    err = capsys.readouterr().err
    assert "prepare folder" in err and "7/7" in err and "skipped=1" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["celeba", "--root", "{tmp}/missing", "--out", "{tmp}/o"], "does not exist"),
        (["faceforensics", "--root", "{tmp}", "--out", "{tmp}/o"], "original_sequences"),
        (["celeba", "--root", "{tmp}", "--out", "{tmp}/o"], "list_attr_celeba.txt"),
        (["affectnet", "--root", "{tmp}", "--out", "{tmp}/o"], "train_set"),
        (["folder", "--root", "{tmp}", "--out", "{tmp}/o"], "no class folder"),
    ],
)
def test_cli_wrong_root_is_one_sentence_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert "expected" in err or message == "does not exist"  # wrong roots show the layout
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_cli_bad_option_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["affectnet", "--root", str(tmp_path), "--out", "x", "--classes", "6"]) == 2
    assert main(["nosuch", "--root", "x"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(ln.startswith("error: ") for ln in lines)
    assert "--classes: invalid choice: 6" in lines[0] and "invalid choice: 'nosuch'" in lines[1]


@pytest.mark.parametrize("overwrite", [False, True])
def test_cli_out_blocked_by_a_file_is_one_sentence_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overwrite: bool
) -> None:
    root = T.make_folder(tmp_path / "raw")
    (tmp_path / "taken").write_text("a file where the output folder should go")
    for out in (tmp_path / "taken", tmp_path / "taken" / "sub"):
        argv = ["folder", "--root", str(root), "--out", str(out), "--size", "32", "--quiet"]
        assert main(argv + ["--overwrite"] * overwrite) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
        assert f"{out} (--out)" in err and "Not a directory" in err
    assert (tmp_path / "taken").read_text().startswith("a file")  # left alone


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--limit", "-1", "--limit: -1 must be 0 or more"),
        ("--workers", "-2", "--workers: -2 must be 0 or more"),
        ("--limit", "ten", "--limit: 'ten' is not a whole number"),
        ("--margin", "-0.1", "--margin: -0.1 must be a finite number of 0 or more"),
        ("--margin", "nan", "--margin: nan must be a finite number of 0 or more"),
    ],
)
def test_cli_out_of_range_number_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    argv = ["folder", "--root", str(tmp_path), "--out", str(tmp_path / "o"), flag, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "o").exists()
