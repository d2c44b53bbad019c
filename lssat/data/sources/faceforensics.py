"""FaceForensics++: real (``original_sequences``) vs manipulated videos, N evenly spaced
frames per video, largest face (Haar cascade or a user box file) cropped with a margin.

Splits come from the official ``{train,val,test}.json`` files (lists of ``[target, source]``
id pairs; a fake video is named ``target_source``). Without them, a deterministic hash of
the target id splits 72/14/14 (a warning says so). Video ids group frames by the full
relative video path. Pre-extracted frame folders (``videos/<name>/*.png``) work like videos.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lssat.data.faces import Skip
from lssat.data.sources.base import Exclude, ImageSource, Item, Output, hash_split
from lssat.data.video import VIDEO_SUFFIXES, read_frames
from lssat.errors import DataError

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter",
           "DeepFakeDetection")  # fmt: skip
DEFAULT_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
COMPRESSIONS = ("raw", "c23", "c40")
LAYOUT = (
    "expected ROOT/original_sequences/youtube/<comp>/videos/*.mp4 and "
    "ROOT/manipulated_sequences/<method>/<comp>/videos/*.mp4 (comp = raw, c23 or c40)"
)


class FaceForensicsSource(ImageSource):
    """Deepfake (binary, 1 = fake); ``video`` = index of the video in the listing."""

    name = "faceforensics"
    task = "deepfake"
    label_kind = "binary"
    is_video = True
    chunk = 8

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
        split_map = self._split_map()
        if split_map is None:
            self.split_source = "hash of the target id (no split JSON files found)"
            self.warnings.append(
                "no official split files (train.json, val.json, test.json) found under ROOT or "
                "ROOT/splits: videos were split 72/14/14 by a hash of the target id"
            )
        items = []
        for label, folder in dirs:
            entries = sorted(
                p for p in folder.iterdir()
                if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or p.is_dir()
            )  # fmt: skip
            for p in entries:
                vid = p.stem if p.is_file() else p.name
                key = self.rel(p)
                if split_map is not None:
                    split = split_map.get(vid)
                    extra = {} if split else {"exclude": "video id not in the split files"}
                else:
                    split, extra = hash_split(vid.split("_")[0], 0.14, 0.14), {}
                items.append(Item(key, split or "train", label, (), p, extra=extra))
        if not items:
            raise DataError(f"FaceForensics++ root {self.root} holds no videos; {LAYOUT}")
        return items

    # -------------------------------------------------------------- processing
    def process(self, item: Item) -> Output:
        if "exclude" in item.extra:
            raise Exclude(item.extra["exclude"])
        assert item.path is not None and isinstance(item.label, int)
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
