"""CelebA: 40 binary attributes (multilabel), splits from the evaluation partition file,
groups ``Male`` and ``Young``. Official text files or the common CSV (Kaggle) variant."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from lssat.data.faces import IMAGE_SUFFIXES
from lssat.data.sources.base import ImageSource, Item
from lssat.errors import DataError

ATTR_FILES = (
    "list_attr_celeba.txt",
    "Anno/list_attr_celeba.txt",
    "list_attr_celeba.csv",
)
PARTITION_FILES = (
    "list_eval_partition.txt",
    "Eval/list_eval_partition.txt",
    "Anno/list_eval_partition.txt",
    "list_eval_partition.csv",
)
IMAGE_DIRS = ("img_align_celeba/img_align_celeba", "img_align_celeba", "Img/img_align_celeba")
LAYOUT = (
    "expected ROOT/img_align_celeba/*.jpg with ROOT/list_attr_celeba.txt and "
    "ROOT/list_eval_partition.txt (or Anno/, Eval/ subfolders, or the .csv variants)"
)
PARTITIONS = {"0": "train", "1": "val", "2": "test"}
GROUPS = ("Male", "Young")
GROUP_VALUES = {"Male": ["female", "male"], "Young": ["not young", "young"]}


class CelebASource(ImageSource):
    """Aligned CelebA faces, centre-square cropped (178x178 of 178x218) and resized."""

    name = "celeba"
    task = "attributes"
    label_kind = "multilabel"

    def _find(self, candidates: tuple[str, ...], what: str) -> Path:
        assert self.root is not None
        for rel in candidates:
            if (self.root / rel).is_file():
                return self.root / rel
        raise DataError(
            f"CelebA root {self.root} has no {what} ({' or '.join(candidates)}); {LAYOUT}"
        )

    def _image_dir(self) -> Path:
        assert self.root is not None
        for rel in IMAGE_DIRS:
            d = self.root / rel
            if d.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.iterdir()):
                return d
        raise DataError(f"CelebA root {self.root} has no image folder img_align_celeba; {LAYOUT}")

    def list_items(self) -> list[Item]:
        attr_file = self._find(ATTR_FILES, "attribute file")
        part_file = self._find(PARTITION_FILES, "partition file")
        image_dir = self._image_dir()
        names, attrs = read_attributes(attr_file)
        parts = read_partition(part_file)
        for g in GROUPS:
            if g not in names:
                raise DataError(f"CelebA attribute file {attr_file} lacks attribute {g!r}")
        self.classes = names
        self.groups = list(GROUPS)
        self.group_values = {g: list(v) for g, v in GROUP_VALUES.items()}
        gidx = [names.index(g) for g in GROUPS]
        items = []
        unlisted = 0
        for image_id in sorted(attrs):
            split = parts.get(image_id)
            if split is None:
                unlisted += 1
                continue
            values = attrs[image_id]
            path = image_dir / image_id
            items.append(Item(self.rel(path), split, values, tuple(values[j] for j in gidx), path))
        if unlisted:
            self.warnings.append(
                f"{unlisted} images of {attr_file.name} are not in {part_file.name} and "
                "were left out"
            )
        self._files = {"attributes": attr_file.name, "partition": part_file.name}
        return items

    def meta_extra(self) -> dict[str, Any]:
        return {"annotation_files": getattr(self, "_files", {})}


def read_attributes(path: Path) -> tuple[list[str], dict[str, tuple[int, ...]]]:
    """Attribute names and ``{image_id: 0/1 values}`` from the .txt or .csv variant."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"CelebA attribute file {path} cannot be read ({exc})") from None
    if path.suffix == ".csv":
        rows = list(csv.reader(text.splitlines()))
        if not rows:
            raise DataError(f"CelebA attribute file {path} is empty")
        names, body, first = rows[0][1:], rows[1:], 2
    else:
        lines = text.splitlines()
        if len(lines) < 2:
            raise DataError(f"CelebA attribute file {path} needs a count line and a name line")
        names = lines[1].split()
        body, first = [ln.split() for ln in lines[2:] if ln.strip()], 3
    if not names:
        raise DataError(f"CelebA attribute file {path} has no attribute names")
    attrs = {}
    for n, row in enumerate(body, start=first):
        if len(row) != len(names) + 1:
            raise DataError(
                f"CelebA attribute file {path} line {n} has {len(row) - 1} values for "
                f"{len(names)} attributes"
            )
        try:
            attrs[row[0].strip()] = tuple(1 if int(v) > 0 else 0 for v in row[1:])
        except ValueError:
            raise DataError(f"CelebA attribute file {path} line {n} has a non-integer") from None
    return [n.strip() for n in names], attrs


def read_partition(path: Path) -> dict[str, str]:
    """``{image_id: split}`` from ``list_eval_partition`` (.txt or .csv; 0/1/2)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"CelebA partition file {path} cannot be read ({exc})") from None
    if path.suffix == ".csv":
        rows = list(csv.reader(text.splitlines()))[1:]
    else:
        rows = [ln.split() for ln in text.splitlines() if ln.strip()]
    out = {}
    for n, row in enumerate(rows, start=2 if path.suffix == ".csv" else 1):
        if len(row) != 2 or row[1].strip() not in PARTITIONS:
            raise DataError(
                f"CelebA partition file {path} line {n} must be '<image> <0|1|2>', got {row}"
            )
        out[row[0].strip()] = PARTITIONS[row[1].strip()]
    return out
