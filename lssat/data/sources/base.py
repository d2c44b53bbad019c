"""What every dataset source provides to the prepare pipeline.

A source lists its items once (deterministic order, root checked: a wrong root is a
DataError naming what is missing and the expected layout), then turns each item into face
crops (``process``), raising :class:`Skip` for an unusable item or :class:`Exclude` for one
that a filter leaves out (e.g. Contempt with ``--classes 7``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lssat.data.faces import (
    FaceDetector,
    Skip,
    center_square,
    crop_square,
    load_boxes,
    read_image,
)
from lssat.errors import DataError


class Exclude(Skip):
    """An item left out on purpose (class filter, not in the split files); counted apart."""


@dataclass
class Item:
    """One source item (an image or a video). ``label`` None: the source reads it in process."""

    key: str  # unique, POSIX path relative to the root (or a synthetic name)
    split: str
    label: int | tuple[int, ...] | None = None
    groups: tuple[int, ...] = ()
    path: Path | None = None
    index: int = -1  # position in the listing, set by the pipeline
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Output:
    """Face crops of one item: ``frames`` is a list of (key suffix, uint8 ``[S, S, 3]``)."""

    frames: list[tuple[str, np.ndarray]]
    label: int | tuple[int, ...]
    skipped_frames: list[tuple[str, str]] = field(default_factory=list)  # (suffix, reason)


class Source:
    """Base class; subclasses set the class attributes and implement ``list_items``."""

    name = "source"
    task = "classify"
    label_kind = "multiclass"
    is_video = False
    chunk = 512  # source items per shard
    channels = "rgb"
    evaluation_only = False  # a test-only set (cross-dataset evaluation): no train, no val

    def __init__(self, root: Path | None, size: int = 224, limit: int = 0):
        self.root = Path(root).expanduser().resolve() if root is not None else None
        self.size = size
        self.limit = limit
        self.classes: list[str] = []
        self.groups: list[str] = []
        self.group_values: dict[str, list[str]] = {}
        self.warnings: list[str] = []

    # -------------------------------------------------------------- interface
    def list_items(self) -> list[Item]:
        """All items in a deterministic order; DataError when the root is wrong."""
        raise NotImplementedError

    def process(self, item: Item) -> Output:
        """Face crops of one item; raise Skip / Exclude with the reason."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """Every option that changes the output (the resume fingerprint)."""
        return {"limit": self.limit}

    def meta_extra(self) -> dict[str, Any]:
        """Source-specific additions to meta.json."""
        return {}

    def split_roles(self) -> dict[str, str]:
        """Where each split comes from (meta.json ``split_roles``; a generic text if empty)."""
        return {}

    # ---------------------------------------------------------------- helpers
    def items(self) -> list[Item]:
        """``list_items`` with ``limit`` (:func:`limit_items`) applied and indices set."""
        if self.root is not None and not self.root.is_dir():
            raise DataError(f"dataset root {self.root} does not exist or is not a folder")
        items = self.list_items()
        if self.limit:
            items = limit_items(items, self.limit)
        for i, it in enumerate(items):
            it.index = i
        return items

    def rel(self, path: Path) -> str:
        """POSIX path relative to the root."""
        assert self.root is not None
        return path.relative_to(self.root).as_posix()


class ImageSource(Source):
    """A source of still face images: aligned (centre square) or detected/boxed crops."""

    def __init__(
        self,
        root: Path | None,
        size: int = 224,
        limit: int = 0,
        detect: bool = False,
        margin: float = 0.2,
        boxes: Path | None = None,
    ):
        super().__init__(root, size, limit)
        self.detect = detect
        self.margin = margin
        self.boxes_file = Path(boxes).expanduser().resolve() if boxes else None
        self._boxes = load_boxes(self.boxes_file) if self.boxes_file else {}
        self._detector = FaceDetector()

    def options(self) -> dict[str, Any]:
        boxes = None
        if self.boxes_file is not None:
            boxes = hashlib.sha1(self.boxes_file.read_bytes()).hexdigest()
        return {
            **super().options(),
            "detect": self.detect,
            "margin": self.margin,
            "boxes_sha1": boxes,
        }

    def face(self, image: np.ndarray, key: str, frame: int = -1) -> np.ndarray:
        """uint8 ``[S, S, 3]``: user box, else Haar detection (when on), else centre square."""
        box = self._boxes.get((key, frame))
        if box is None and self.detect:
            box = self._detector(image)
            if box is None:
                raise Skip("no face found")
        if box is None:
            return center_square(image, self.size)
        return crop_square(image, box, self.margin, self.size)

    def process(self, item: Item) -> Output:
        if item.path is None or not item.path.is_file():
            raise Skip("missing file")
        image = read_image(item.path)
        assert item.label is not None
        return Output([("", self.face(image, item.key))], item.label)


class VideoSource(ImageSource):
    """Deepfake videos (binary, 1 = fake): ``frames`` evenly spaced frames per video, the
    largest face of each (Haar cascade, or a ``--boxes`` box) cropped with the margin."""

    task = "deepfake"
    label_kind = "binary"
    is_video = True
    chunk = 8
    frames = 32

    def process(self, item: Item) -> Output:
        from lssat.data.video import read_frames

        if "exclude" in item.extra:
            raise Exclude(item.extra["exclude"])
        assert item.path is not None and isinstance(item.label, int)
        if not item.path.exists():
            raise Skip("missing file")
        frames, bad = [], []
        n_read = 0
        for index, frame in read_frames(item.path, self.frames):
            suffix = f"#{index}"
            if isinstance(frame, str):
                bad.append((suffix, frame))
                continue
            n_read += 1
            try:
                frames.append((suffix, self.face(frame, item.key, index)))
            except Skip as exc:
                bad.append((suffix, str(exc)))
        if not frames:
            raise Skip(
                f"no face in any of {n_read} decoded frames" if n_read else "no frame decoded"
            )
        return Output(frames, item.label, bad)


def stratified_pick(
    keys_by_class: dict[int, list[str]], fraction: float, seed: int = 0
) -> set[str]:
    """Keys of a ``fraction`` share of the items, stratified by class, for a fixed ``seed``.

    The total is ``round(fraction * n)``; each class gets the floor of its exact share and
    the classes with the largest remainders one more (ties: lower class index). Inside a class
    the items are ordered by a seeded hash of their key, so the pick does not depend on the
    listing order.
    """
    total = sum(len(v) for v in keys_by_class.values())
    want = round(fraction * total)
    if want <= 0:
        return set()
    exact = {c: fraction * len(v) for c, v in keys_by_class.items()}
    quota = {c: int(x) for c, x in exact.items()}
    left = want - sum(quota.values())
    for c in sorted(exact, key=lambda c: (quota[c] - exact[c], c))[: max(left, 0)]:
        quota[c] += 1
    picked: set[str] = set()
    for c, keys in keys_by_class.items():
        order = sorted(keys, key=lambda k: hashlib.sha1(f"{seed}\0{k}".encode()).hexdigest())
        picked.update(order[: quota[c]])
    return picked


LIMIT_SEED = 0  # which units --limit keeps: the same on every machine and every prepare


def _unit(it: Item) -> str:
    """What ``--limit`` counts: a video (items sharing ``extra["video"]``), else the item."""
    return f"video {it.extra['video']}" if "video" in it.extra else f"item {it.key}"


def limit_quotas(sizes: dict[Any, int], n: int) -> dict[Any, int]:
    """Units to keep per stratum, ``min(n, total)`` in all: first one for every stratum
    (largest strata first, an unknown label ``None`` last) while ``n`` lasts, then the rest in
    proportion to what each stratum has left (largest remainders first), never more than a
    stratum holds."""
    order = sorted(sizes, key=lambda c: (c is None, -sizes[c], repr(c)))
    quota = {c: int(i < n) for i, c in enumerate(order)}
    left = min(n, sum(sizes.values())) - sum(quota.values())
    if left > 0:
        room = {c: sizes[c] - quota[c] for c in order}
        exact = {c: left * room[c] / sum(room.values()) for c in order}  # <= room[c]
        add = {c: int(exact[c]) for c in order}
        by_rest = sorted(range(len(order)), key=lambda i: (add[order[i]] - exact[order[i]], i))
        for i in by_rest[: left - sum(add.values())]:
            add[order[i]] += 1
        quota = {c: quota[c] + add[c] for c in order}
    return quota


def limit_items(items: list[Item], limit: int) -> list[Item]:
    """At most ``limit`` units per split (videos where there are videos, else items),
    stratified by label so every class of a split survives when ``limit`` allows
    (:func:`limit_quotas`); the units of a class are taken in the order of a seeded hash of
    their key (not the listing order, which often lists one class first). A kept video keeps
    all its items; the kept items stay in listing order. Items already marked for exclusion
    (``extra["exclude"]``) pass through: they give no rows and count for nothing."""
    units: dict[str, dict[str, Any]] = {}  # split -> unit -> label of its first item
    for it in items:
        if "exclude" not in it.extra:
            units.setdefault(it.split, {}).setdefault(_unit(it), it.label)
    keep: set[tuple[str, str]] = set()
    for split, labels in units.items():
        strata: dict[Any, list[str]] = {}
        for unit, label in labels.items():
            strata.setdefault(label, []).append(unit)
        quota = limit_quotas({c: len(v) for c, v in strata.items()}, limit)
        for c, members in strata.items():
            order = sorted(
                members, key=lambda u: hashlib.sha1(f"{LIMIT_SEED}\0{u}".encode()).hexdigest()
            )
            keep.update((split, u) for u in order[: quota[c]])
    return [it for it in items if "exclude" in it.extra or (it.split, _unit(it)) in keep]


def hash_split(key: str, val_fraction: float, test_fraction: float) -> str:
    """Deterministic split of a key by its hash (stable when other items come or go)."""
    u = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0x100000000
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


SPLIT_DIRS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
