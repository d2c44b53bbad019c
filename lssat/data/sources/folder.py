"""Any labelled face images: a ``class_name/*.jpg`` tree (optionally under split folders)
or a CSV with columns ``path,label[,split][,group...]`` (paths relative to the root).

Videos (``video_from = "parent"``, the default for ``task = "deepfake"``): the images of one
folder are the frames of one video (e.g. ``fake/000_003/*.png``), with one video id, one label
and one split (the hash split hashes the folder, so a video never spans splits). Images lying
directly in a class folder (``fake/x.jpg``, ``train/fake/x.jpg``), in a folder named after a
class or a split, or in the root are single images (video id -1). A folder holding frames of
two labels is an error (``video_from = "none"`` splits images one by one, as for ``classify``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from lssat.data.faces import IMAGE_SUFFIXES
from lssat.data.sources.base import SPLIT_DIRS, ImageSource, Item, hash_split
from lssat.errors import DataError

LAYOUT = (
    "expected ROOT/<class>/*.jpg, ROOT/{train,val,test}/<class>/*.jpg, "
    "or --csv FILE with columns path,label[,split][,group]"
)
DEEPFAKE_CLASSES = ("real", "fake")
VIDEO_FROM = ("parent", "none")


def images_under(folder: Path) -> list[Path]:
    """Image files below ``folder`` (any depth), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def class_sort_key(name: str) -> tuple[int, Any]:
    """Numeric class names sort as numbers, others alphabetically."""
    return (0, int(name)) if name.lstrip("-").isdigit() else (1, name)


class FolderSource(ImageSource):
    """``classify`` (multiclass, classes from the data) or ``deepfake`` (real / fake)."""

    name = "folder"

    def __init__(
        self,
        root: Path,
        size: int = 224,
        limit: int = 0,
        csv_file: Path | None = None,
        group_cols: list[str] | None = None,
        task: str = "classify",
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        video_from: str | None = None,
        **face: Any,
    ):
        super().__init__(root, size, limit, **face)
        if task not in ("classify", "deepfake"):
            raise DataError(f"folder task {task!r} is unknown; allowed: classify, deepfake")
        video_from = video_from or ("parent" if task == "deepfake" else "none")
        if video_from not in VIDEO_FROM:
            raise DataError(f"folder --video-from is {video_from!r}; allowed: parent, none")
        self.video_from = video_from
        self._class_names: set[str] = set()  # lower-case, set by list_items
        self.task = task
        self.label_kind = "binary" if task == "deepfake" else "multiclass"
        self.csv_file = Path(csv_file) if csv_file else None
        self.group_cols = list(group_cols or [])
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "csv": str(self.csv_file) if self.csv_file else None,
            "group_cols": self.group_cols,
            "task": self.task,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            # "none" (images one by one) is the output of every earlier prepare: left out, so
            # their fingerprints and dataset hashes stay as they were
            **({"video_from": self.video_from} if self.video_from != "none" else {}),
        }

    # ----------------------------------------------------------------- listing
    def list_items(self) -> list[Item]:
        rows = self._csv_rows() if self.csv_file else self._tree_rows()
        names = sorted({r[1] for r in rows}, key=class_sort_key)
        self._class_names = {n.lower() for n in names}
        rows = [(k, lab, self._split_of(k, given), g, p) for k, lab, given, g, p in rows]
        self.classes = self._class_order(names)
        index = {c: i for i, c in enumerate(self.classes)}
        self._set_groups(rows)
        videos = self._video_ids(rows)
        items = []
        for key, label, split, group_names, path in rows:
            groups = tuple(
                self.group_values[g].index(v) if v else -1
                for g, v in zip(self.groups, group_names, strict=True)
            )
            vid = videos.get(self._video_key(key))
            extra = {} if vid is None else {"video": vid}
            items.append(Item(key, split, index[label], groups, path, extra=extra))
        return items

    def _video_key(self, key: str) -> str | None:
        """The video (parent folder, relative to the root) of image ``key``, or None for a
        single image (``video_from`` none; directly in the root, or in a folder named after a
        class or a split, e.g. a class folder)."""
        if self.video_from == "none":
            return None
        parent = Path(key).parent
        name = parent.name.lower()
        if parent == Path(".") or name in SPLIT_DIRS or name in self._class_names:
            return None
        return parent.as_posix()

    def _video_ids(self, rows: list[tuple[str, str, str, tuple[str, ...], Path]]) -> dict[str, int]:
        """``{video folder: id}`` (ids in sorted folder order); DataError when a folder holds
        two labels or, from the CSV's split column, two splits."""
        seen: dict[str, tuple[str, str]] = {}
        for key, label, split, _, _ in rows:
            video = self._video_key(key)
            if video is None:
                continue
            first = seen.setdefault(video, (label, split))
            for a, b in ((first[0], label), (first[1], split)):
                if a != b:
                    raise DataError(
                        f"folder {video!r} holds {a} and {b} images, but with --video-from "
                        "parent (the default for --task deepfake) a folder's images are the "
                        "frames of one video, with one label and one split; pass --video-from "
                        "none to take the images one by one"
                    )
        return {v: i for i, v in enumerate(sorted(seen))}

    def _class_order(self, names: list[str]) -> list[str]:
        if self.task != "deepfake":
            return names
        lower = {n.lower(): n for n in names}
        if sorted(lower) != sorted(DEEPFAKE_CLASSES):
            raise DataError(
                f"folder dataset {self.root} has classes {names}; --task deepfake needs exactly "
                "two classes named real and fake"
            )
        return [lower[c] for c in DEEPFAKE_CLASSES]  # label 1 = fake

    def _split_of(self, key: str, given: str | None) -> str:
        """The given split, else one by hash of the image's video folder (so a video never
        spans splits), or of the image itself when it is not part of a video."""
        if given:
            return given
        return hash_split(self._video_key(key) or key, self.val_fraction, self.test_fraction)

    def _tree_rows(self) -> list[tuple[str, str, str | None, tuple[str, ...], Path]]:
        assert self.root is not None
        subdirs = sorted(p for p in self.root.iterdir() if p.is_dir())
        split_dirs = [p for p in subdirs if p.name.lower() in SPLIT_DIRS]
        if split_dirs:
            roots = [(SPLIT_DIRS[p.name.lower()], p) for p in split_dirs]
        else:
            roots = [(None, self.root)]
        rows, empty, nonempty = [], [], set()
        for split, base in roots:
            for cls_dir in sorted(p for p in base.iterdir() if p.is_dir()):
                files = images_under(cls_dir)
                if not files:
                    empty.append(self.rel(cls_dir))
                    continue
                nonempty.add(cls_dir.name)
                for f in files:
                    key = self.rel(f)
                    rows.append((key, cls_dir.name, split, (), f))  # split: given or None
        if not rows:
            raise DataError(f"found no class folder with images under {self.root}; {LAYOUT}")
        for rel in empty:
            name = Path(rel).name
            left = "" if name in nonempty else "; the class is left out"
            self.warnings.append(f"class folder {rel} holds no images{left}")
        return rows

    def _csv_rows(self) -> list[tuple[str, str, str | None, tuple[str, ...], Path]]:
        assert self.root is not None and self.csv_file is not None
        path = self.csv_file if self.csv_file.is_absolute() else self.root / self.csv_file
        try:
            with open(path, newline="") as fh:
                reader = csv.DictReader(fh)
                header = list(reader.fieldnames or [])
                table = list(reader)
        except OSError as exc:
            raise DataError(f"label CSV {path} cannot be read ({exc.strerror or exc})") from None
        missing = [c for c in ("path", "label") if c not in header]
        if missing:
            raise DataError(f"label CSV {path} lacks column {missing[0]!r}; {LAYOUT}")
        if not self.group_cols and "group" in header:
            self.group_cols = ["group"]
        for g in self.group_cols:
            if g not in header:
                raise DataError(f"label CSV {path} lacks group column {g!r}")
        rows, seen = [], set()
        for n, row in enumerate(table, start=2):
            label = (row["label"] or "").strip()
            if not label or not row["path"]:
                raise DataError(f"label CSV {path} line {n} has an empty path or label")
            split = (row.get("split") or "").strip().lower() or None
            if split is not None and split not in SPLIT_DIRS:
                raise DataError(
                    f"label CSV {path} line {n} has split {split!r}; allowed: train, val, test"
                )
            split = SPLIT_DIRS[split] if split else None
            key = Path(row["path"]).as_posix()
            if key in seen:
                raise DataError(f"label CSV {path} line {n} repeats path {key!r}")
            seen.add(key)
            groups = tuple((row.get(g) or "").strip() for g in self.group_cols)
            rows.append((key, label, split, groups, self.root / key))  # split: given or None
        if not rows:
            raise DataError(f"label CSV {path} has no rows; {LAYOUT}")
        rows.sort(key=lambda r: r[0])
        return rows

    def _set_groups(self, rows: list[tuple[str, str, str, tuple[str, ...], Path]]) -> None:
        self.groups = list(self.group_cols)
        self.group_values = {
            g: sorted({r[3][j] for r in rows if r[3][j]}, key=class_sort_key)
            for j, g in enumerate(self.groups)
        }
