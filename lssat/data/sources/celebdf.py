"""Celeb-DF-v2, a cross-dataset deepfake **test** set (train elsewhere, e.g. on FF++).

Layout as downloaded::

    ROOT/Celeb-real/id0_0000.mp4         real (celebrity interviews)
    ROOT/YouTube-real/00000.mp4          real (YouTube)
    ROOT/Celeb-synthesis/id0_id1_0000.mp4  synthesised (target id0, source id1)
    ROOT/List_of_testing_videos.txt      the official test list, one ``label path`` a line

In ``List_of_testing_videos.txt`` label **1 = real, 0 = synthesised** (the opposite of this
project's ``1 = fake``): every line is checked against its folder (``*-real/`` = 1,
``Celeb-synthesis/`` = 0) and a contradiction is an error naming the line. Everything goes to
the ``test`` split (an evaluation-only prepared set): the official list by default, every
video of the three folders with ``--all``. Frames, face crops, video ids and bad files are
handled as for FaceForensics++ (:class:`~lssat.data.sources.base.VideoSource`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lssat.data.sources.base import Item, VideoSource
from lssat.data.video import VIDEO_SUFFIXES
from lssat.errors import DataError

LIST_FILE = "List_of_testing_videos.txt"
FOLDERS = {"Celeb-real": 0, "YouTube-real": 0, "Celeb-synthesis": 1}  # folder -> label, 1 = fake
LIST_LABEL = {"1": 0, "0": 1}  # the list's label (1 = real) -> ours (1 = fake)
LAYOUT = (
    "expected ROOT/Celeb-real/, ROOT/YouTube-real/ and ROOT/Celeb-synthesis/ holding *.mp4 "
    f"videos, and ROOT/{LIST_FILE} (lines '<1 real | 0 synthesised> <folder>/<name>.mp4')"
)


class CelebDFSource(VideoSource):
    """Celeb-DF-v2 videos, all in the ``test`` split; ``video`` = index in the listing."""

    name = "celebdf"
    evaluation_only = True

    def __init__(
        self,
        root: Path,
        size: int = 224,
        limit: int = 0,
        frames: int = 32,
        all_videos: bool = False,
        margin: float = 0.2,
        boxes: Path | None = None,
    ):
        super().__init__(root, size, limit, detect=True, margin=margin, boxes=boxes)
        if frames < 1:
            raise DataError(f"Celeb-DF --frames is {frames}; it must be at least 1")
        self.frames = frames
        self.all_videos = all_videos
        self.classes = ["real", "fake"]

    def options(self) -> dict[str, Any]:
        return {**super().options(), "frames": self.frames, "all": self.all_videos}

    def meta_extra(self) -> dict[str, Any]:
        return {
            "split_source": "every video (--all)" if self.all_videos else f"official {LIST_FILE}",
            "frames_per_video": self.frames,
        }

    def split_roles(self) -> dict[str, str]:
        what = "every video of the three folders (--all)" if self.all_videos else LIST_FILE
        return {"test": f"Celeb-DF-v2 {what}"}

    def list_items(self) -> list[Item]:
        assert self.root is not None
        missing = [f for f in FOLDERS if not (self.root / f).is_dir()]
        if missing:
            raise DataError(f"Celeb-DF root {self.root} lacks folder {missing[0]}/; {LAYOUT}")
        items = self._all_items() if self.all_videos else self._listed_items()
        if not items:
            raise DataError(f"Celeb-DF root {self.root} holds no videos; {LAYOUT}")
        return items

    def _all_items(self) -> list[Item]:
        assert self.root is not None
        items = []
        for folder, label in FOLDERS.items():
            for p in sorted((self.root / folder).iterdir()):
                if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or p.is_dir():
                    items.append(Item(self.rel(p), "test", label, (), p))
        return items

    def _listed_items(self) -> list[Item]:
        assert self.root is not None
        path = self.root / LIST_FILE
        if not path.is_file():
            raise DataError(
                f"Celeb-DF root {self.root} has no {LIST_FILE}; pass --all to use every video "
                f"as the test set, or {LAYOUT}"
            )
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"Celeb-DF test list {path} cannot be read ({exc})") from None
        items, seen = [], set()
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or parts[0] not in LIST_LABEL:
                raise DataError(
                    f"Celeb-DF test list {path} line {n} must be '<1|0> <folder>/<video>' "
                    f"(1 = real, 0 = synthesised), got {line.strip()!r}"
                )
            rel = Path(parts[1]).as_posix()
            folder = rel.split("/")[0]
            if folder not in FOLDERS:
                raise DataError(
                    f"Celeb-DF test list {path} line {n} names {rel!r}, outside the folders "
                    f"{', '.join(FOLDERS)}"
                )
            label = LIST_LABEL[parts[0]]
            if label != FOLDERS[folder]:
                raise DataError(
                    f"Celeb-DF test list {path} line {n} labels {rel!r} {parts[0]} "
                    f"({'real' if parts[0] == '1' else 'synthesised'}), but folder {folder}/ "
                    f"holds {'synthesised' if FOLDERS[folder] else 'real'} videos"
                )
            if rel in seen:
                raise DataError(f"Celeb-DF test list {path} line {n} repeats {rel!r}")
            seen.add(rel)
            items.append(Item(rel, "test", label, (), self.root / rel))
        return items
