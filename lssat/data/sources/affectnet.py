"""AffectNet expressions: the raw release (``{train,val}_set/images`` +
``annotations/<id>_exp.npy``) or the class-folder variant; explicit class mapping
(0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger, 7 Contempt), 8 or 7
classes (7 leaves Contempt out). The raw ``val_set`` (the usual AffectNet test set) becomes the
``test`` split; ``--val-fraction`` (0.1) of the training images, stratified by class with a
fixed seed, becomes the ``val`` split that selects (``--val-fraction 0`` validates on the test
split, and ``meta["val_is_test"]`` says so)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from lssat.data.faces import Skip, image_files
from lssat.data.sources.base import (
    SPLIT_DIRS,
    Exclude,
    ImageSource,
    Item,
    Output,
    stratified_pick,
)
from lssat.data.sources.folder import images_under
from lssat.errors import DataError
from lssat.tasks import AFFECTNET_CLASSES

RAW_SPLITS = {"train_set": "train", "val_set": "test"}
LAYOUT = (
    "expected ROOT/train_set and ROOT/val_set, each with images/<id>.jpg and "
    "annotations/<id>_exp.npy, or class folders ROOT/[train|val|test/]<class>/*.jpg "
    "named after the classes (" + ", ".join(AFFECTNET_CLASSES) + ") or numbered 0-7"
)
# folder names seen in AffectNet re-distributions -> class index
SYNONYMS = {
    "neutral": 0, "happy": 1, "happiness": 1, "sad": 2, "sadness": 2, "surprise": 3,
    "surprised": 3, "fear": 4, "afraid": 4, "disgust": 5, "disgusted": 5, "anger": 6,
    "angry": 6, "contempt": 7,
}  # fmt: skip
OTHER_CODES = {8: "None", 9: "Uncertain", 10: "Non-Face"}
VAL_SEED = 0  # the carved val split is the same on every machine and every prepare


def class_of_folder(name: str) -> int | None:
    """Class index of a class-folder name (case-insensitive names or 0-7), else None."""
    low = name.strip().lower()
    if low.isdigit() and int(low) < len(AFFECTNET_CLASSES):
        return int(low)
    return SYNONYMS.get(low)


class AffectNetSource(ImageSource):
    """Emotion (multiclass); faces used as they are (centre square) unless --detect."""

    name = "affectnet"
    task = "emotion"
    label_kind = "multiclass"

    def __init__(
        self,
        root: Path,
        size: int = 224,
        limit: int = 0,
        num_classes: int = 8,
        val_fraction: float = 0.1,
        **face: Any,
    ):
        super().__init__(root, size, limit, **face)
        if num_classes not in (7, 8):
            raise DataError(f"AffectNet --classes is {num_classes}; allowed: 7, 8")
        self.num_classes = num_classes
        self.val_fraction = val_fraction
        self.classes = list(AFFECTNET_CLASSES[:num_classes])
        self.layout = "?"
        self._official_test = "?"
        self._val_given = False  # class folders train/, val/ and test/: nothing carved

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "num_classes": self.num_classes,
            "val_fraction": self.val_fraction,
        }

    def meta_extra(self) -> dict[str, Any]:
        return {"layout": self.layout, "class_mapping": dict(enumerate(self.classes))}

    def split_roles(self) -> dict[str, str]:
        pct = f"{self.val_fraction:g} of"
        if self._val_given:
            return {"train": "the folder train/", "val": "the folder val/",
                    "test": f"the folder {self._official_test}"}  # fmt: skip
        return {
            "train": "the training images"
            + (f" less the {pct} them carved out as val" if self.val_fraction else ""),
            "val": f"--val-fraction {pct} the training images, stratified by class "
            f"(seed {VAL_SEED})",
            "test": f"the official validation set ({self._official_test})",
        }

    def list_items(self) -> list[Item]:
        assert self.root is not None
        raw = [d for d in RAW_SPLITS if (self.root / d).is_dir()]
        if raw:
            self.layout = "raw"
            self._official_test = "val_set/"
            items = self._raw_items(raw)
        else:
            self.layout = "class-folders"
            items = self._folder_items()
        return self._carve_val(items)

    def _carve_val(self, items: list[Item]) -> list[Item]:
        """Move ``val_fraction`` of the train items (stratified by class) to ``val``.

        Items whose class is not kept (codes 8-10, Contempt with 7 classes, unreadable
        annotations) are left out of the strata: they are excluded or skipped anyway.
        """
        if not self.val_fraction or self._val_given:
            return items
        strata: dict[int, list[str]] = {}
        for it in items:
            if it.split == "train" and isinstance(it.label, int) and it.label < self.num_classes:
                strata.setdefault(it.label, []).append(it.key)
        picked = stratified_pick(strata, self.val_fraction, VAL_SEED)
        return [dataclasses.replace(it, split="val") if it.key in picked else it for it in items]

    def _raw_items(self, dirs: list[str]) -> list[Item]:
        assert self.root is not None
        items = []
        for d in dirs:
            images, notes = self.root / d / "images", self.root / d / "annotations"
            for need in (images, notes):
                if not need.is_dir():
                    raise DataError(
                        f"AffectNet root {self.root} lacks folder {d}/{need.name}; {LAYOUT}"
                    )
            files = image_files(images)
            if not files:
                raise DataError(f"AffectNet folder {images} holds no images; {LAYOUT}")
            for f in files:
                exp = notes / f"{f.stem}_exp.npy"
                try:  # read here: the val carve is stratified by class
                    label = read_expression(exp)
                except Skip:
                    label = None  # process() reads it again and skips the image with the reason
                items.append(Item(self.rel(f), RAW_SPLITS[d], label, (), f, extra={"exp": exp}))
        return items

    def _folder_items(self) -> list[Item]:
        assert self.root is not None
        subdirs = sorted(p for p in self.root.iterdir() if p.is_dir())
        split_dirs = [p for p in subdirs if p.name.lower() in SPLIT_DIRS]
        roots = [(SPLIT_DIRS[p.name.lower()], p) for p in split_dirs] or [("train", self.root)]
        given = {s for s, _ in roots}
        if "test" not in given:  # a val/ folder is AffectNet's official validation set: the test
            roots = [("test" if s == "val" else s, p) for s, p in roots]
            self._official_test = ", ".join(f"{p.name}/" for s, p in roots if s == "test")
        elif "val" in given:  # train/, val/ and test/ given: the folders decide, nothing carved
            self._val_given = True
            self._official_test = ", ".join(f"{p.name}/" for s, p in roots if s == "test")
            self.warnings.append("train, val and test folders given: no val split carved")
        items, seen = [], False
        for split, base in roots:
            for cls_dir in sorted(p for p in base.iterdir() if p.is_dir()):
                label = class_of_folder(cls_dir.name)
                if label is None:
                    raise DataError(
                        f"AffectNet class folder {self.rel(cls_dir)} is not a known class; "
                        f"allowed names: {', '.join(AFFECTNET_CLASSES)} (or 0-7)"
                    )
                seen = True
                files = images_under(cls_dir)
                if not files:
                    self.warnings.append(f"class folder {self.rel(cls_dir)} holds no images")
                items += [Item(self.rel(f), split, label, (), f) for f in files]
        if not seen:
            raise DataError(
                f"AffectNet root {self.root} has neither train_set/val_set nor class "
                f"folders; {LAYOUT}"
            )
        return items

    def process(self, item: Item) -> Output:
        label = item.label if item.label is not None else read_expression(item.extra["exp"])
        assert isinstance(label, int)
        if label in OTHER_CODES:
            raise Exclude(f"label {label} ({OTHER_CODES[label]}) is not an expression class")
        if label >= self.num_classes:
            raise Exclude(
                f"class {AFFECTNET_CLASSES[label]} left out (--classes {self.num_classes})"
            )
        return super().process(dataclasses.replace(item, label=label))


def read_expression(path: Path) -> int:
    """The expression code stored in an AffectNet ``<id>_exp.npy`` (a string or a number)."""
    if not path.is_file():
        raise Skip(f"missing annotation {path.parent.name}/{path.name}")
    try:
        value = np.load(path, allow_pickle=False)
        code = int(float(str(np.asarray(value).reshape(-1)[0]).strip()))
    except (OSError, ValueError, IndexError) as exc:
        raise Skip(f"unreadable annotation {path.name} ({exc})") from None
    if code < 0 or code > 10:
        raise Skip(f"annotation {path.name} holds unknown expression code {code}")
    return code
