"""FaceForensics++: real (``original_sequences``) vs manipulated videos, N evenly spaced
frames per video, largest face (Haar cascade or a user box file) cropped with a margin.

Splits come from the official ``{train,val,test}.json`` files (lists of ``[target, source]``
id pairs; a fake video is named ``target_source``). Without them, each target is grouped
with its source (union-find over the ``target_source`` pairs, since a fake carries the source's
face) and whole groups are split 72/14/14, so no face is in two splits (a warning says so).
Video ids group frames by the full relative video path. Pre-extracted frame folders
(``videos/<name>/*.png``) work like videos.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lssat.data.sources.base import Item, VideoSource
from lssat.data.video import VIDEO_SUFFIXES
from lssat.errors import DataError

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter",
           "DeepFakeDetection")  # fmt: skip
DEFAULT_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
COMPRESSIONS = ("raw", "c23", "c40")
LAYOUT = (
    "expected ROOT/original_sequences/youtube/<comp>/videos/*.mp4 and "
    "ROOT/manipulated_sequences/<method>/<comp>/videos/*.mp4 (comp = raw, c23 or c40)"
)

FALLBACK_FRACTIONS = {"train": 0.72, "val": 0.14, "test": 0.14}


def identities(vid: str) -> list[str]:
    """Face ids in a video id: ``000`` -> [000], fake ``000_003`` (target_source) -> [000, 003];
    DeepFakeDetection's ``01__scene`` -> [01], ``01_02__scene__X`` -> [01, 02]."""
    return [p for p in vid.split("__")[0].split("_") if p] or [vid]


def identity_splits(vids: list[str], fractions: dict[str, float]) -> dict[str, str]:
    """``{video id: split}`` such that no face id is in two splits.

    Union-find joins the ids of every video (a fake joins its target and source); each group
    of ids, taken in the order of a hash of its smallest id, goes to the split furthest below
    its share of the videos (``fractions``) so far. Deterministic for a given list of videos.
    """
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for vid in vids:
        ids = identities(vid)
        for other in ids[1:]:
            ra, rb = find(ids[0]), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        find(ids[0])
    size: dict[str, int] = {}
    for vid in vids:
        root = find(identities(vid)[0])
        size[root] = size.get(root, 0) + 1
    members: dict[str, str] = {}  # smallest id of each group
    for a in parent:
        root = find(a)
        members[root] = min(members.get(root, a), a)
    order = sorted(size, key=lambda r: hashlib.sha1(members[r].encode()).hexdigest())
    given = dict.fromkeys(fractions, 0)
    split_of: dict[str, str] = {}
    for root in order:
        total = sum(given.values()) + size[root]
        best = max(fractions, key=lambda s: fractions[s] * total - given[s])
        split_of[root] = best
        given[best] += size[root]
    return {vid: split_of[find(identities(vid)[0])] for vid in vids}


class FaceForensicsSource(VideoSource):
    """Deepfake (binary, 1 = fake); ``video`` = index of the video in the listing."""

    name = "faceforensics"

    def __init__(
        self,
        root: Path,
        size: int = 224,
        limit: int = 0,
        compression: str = "c23",
        methods: list[str] | None = None,
        originals: list[str] | None = None,
        frames: int = 32,
        splits: Path | None = None,
        margin: float = 0.2,
        boxes: Path | None = None,
    ):
        super().__init__(root, size, limit, detect=True, margin=margin, boxes=boxes)
        if compression not in COMPRESSIONS:
            raise DataError(
                f"FaceForensics++ compression {compression!r} is unknown; allowed: "
                + ", ".join(COMPRESSIONS)
            )
        self.methods_given = bool(methods)
        self.methods = list(methods or DEFAULT_METHODS)
        for m in self.methods:
            if m not in METHODS:
                raise DataError(
                    f"FaceForensics++ method {m!r} is unknown; allowed: {', '.join(METHODS)}"
                )
        if frames < 1:
            raise DataError(f"FaceForensics++ --frames is {frames}; it must be at least 1")
        self.compression = compression
        self.originals = list(originals or ["youtube"])
        self.frames = frames
        self.splits_dir = Path(splits).expanduser().resolve() if splits else None
        self.classes = ["real", "fake"]
        self.split_source = "?"

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "compression": self.compression,
            "methods": self.methods,
            "originals": self.originals,
            "frames": self.frames,
            "splits": str(self.splits_dir) if self.splits_dir else None,
        }

    def meta_extra(self) -> dict[str, Any]:
        return {
            "split_source": self.split_source,
            "methods": self.methods,
            "compression": self.compression,
            "frames_per_video": self.frames,
        }

    def _warn_shares(self, split_map: dict[str, str]) -> None:
        """Warn when identity groups are too large for the 72/14/14 shares (a chained tree)."""
        n = max(len(split_map), 1)
        share = {s: sum(v == s for v in split_map.values()) / n for s in FALLBACK_FRACTIONS}
        if any(abs(share[s] - f) > 0.05 for s, f in FALLBACK_FRACTIONS.items()):
            shown = " / ".join(f"{s} {share[s]:.0%}" for s in FALLBACK_FRACTIONS)
            self.warnings.append(
                f"identity groups are large (target_source pairs chain many faces together): "
                f"the videos split {shown} instead of 72/14/14"
            )

    def split_roles(self) -> dict[str, str]:
        if self.split_source.startswith("official"):
            return {s: f"the official {s}.json pairs" for s in ("train", "val", "test")}
        return dict.fromkeys(("train", "val", "test"), "identity groups (no split files)")

    # ----------------------------------------------------------------- listing
    def _video_dir(self, *parts: str) -> Path:
        assert self.root is not None
        folder = self.root.joinpath(*parts, self.compression, "videos")
        if not folder.is_dir():
            raise DataError(
                f"FaceForensics++ root {self.root} lacks folder {self.rel(folder)}; {LAYOUT}"
            )
        return folder

    def _split_map(self) -> dict[str, str] | None:
        assert self.root is not None
        candidates = [self.splits_dir] if self.splits_dir else [self.root / "splits", self.root]
        for folder in candidates:
            files = {s: folder / f"{s}.json" for s in ("train", "val", "test")}
            present = [s for s, f in files.items() if f.is_file()]
            if not present:
                if self.splits_dir:
                    raise DataError(
                        f"split folder {folder} holds none of train.json, val.json, test.json"
                    )
                continue
            out: dict[str, str] = {}
            for split in present:
                try:
                    pairs = json.loads(files[split].read_text())
                    ok = all(len(p) == 2 for p in pairs)
                except (OSError, ValueError, TypeError):
                    ok = False
                if not ok:
                    raise DataError(
                        f"FaceForensics++ split file {files[split]} must be a JSON list of "
                        '["target", "source"] id pairs'
                    )
                for a, b in pairs:
                    for vid in (str(a), str(b), f"{a}_{b}", f"{b}_{a}"):
                        out[vid] = split
            self.split_source = f"official ({folder})"
            return out
        return None

    def list_items(self) -> list[Item]:
        dirs = [(0, self._video_dir("original_sequences", o)) for o in self.originals]
        if not self.methods_given:  # defaults: use the methods that were downloaded
            assert self.root is not None
            present = [
                m for m in self.methods
                if (self.root / "manipulated_sequences" / m / self.compression / "videos").is_dir()
            ]  # fmt: skip
            for m in sorted(set(self.methods) - set(present)):
                self.warnings.append(f"method {m} not found under manipulated_sequences/")
            self.methods = present or self.methods  # none at all: the error below names one
        dirs += [(1, self._video_dir("manipulated_sequences", m)) for m in self.methods]
        listed = []
        for label, folder in dirs:
            entries = sorted(
                p for p in folder.iterdir()
                if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or p.is_dir()
            )  # fmt: skip
            listed += [(label, p, p.stem if p.is_file() else p.name) for p in entries]
        if not listed:
            raise DataError(f"FaceForensics++ root {self.root} holds no videos; {LAYOUT}")
        split_map = self._split_map()
        if split_map is None:
            split_map = identity_splits([vid for _, _, vid in listed], FALLBACK_FRACTIONS)
            self._warn_shares(split_map)
            self.split_source = (
                "identity groups (no split JSON files found): union-find over target_source "
                "pairs, groups assigned 72/14/14"
            )
            self.warnings.append(
                "no official split files (train.json, val.json, test.json) found under ROOT or "
                "ROOT/splits: each target was grouped with its source (union-find over "
                "target_source pairs) and the groups split 72/14/14, so no face crosses splits"
            )
        items = []
        for label, p, vid in listed:
            split = split_map.get(vid)
            extra = {} if split else {"exclude": "video id not in the split files"}
            items.append(Item(self.rel(p), split or "train", label, (), p, extra=extra))
        return items
