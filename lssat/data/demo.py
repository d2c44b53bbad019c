"""The embedded deepfake demo: real LFW faces vs self-blended pseudo-fakes, no download.

Faces: the 100 real faces of scikit-image's ``data.lfw_subset()`` (25x25 grey, shipped in
the wheel). Each face is one identity-like source: it gets a "real video" and a "fake video"
of ``FRAMES`` frames each (both from the same jittered poses, like an FF++ target and its
manipulation); fake frames are self-blended (:mod:`lssat.data.sbi`). Faces are split
60/20/20 into train/val/test by a seeded permutation, so no source face crosses splits.
Frames are upscaled (bicubic) to ``SIZE`` px and stored as three equal grey channels
(``meta["channels"] == "grey"``: no colour is invented, saturation jitter is skipped).
Prepared through the same pipeline and shard format as real data and cached.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lssat.data.faces import to_rgb
from lssat.data.pipeline import prepare
from lssat.data.sbi import Perturbation, self_blend
from lssat.data.shards import META_FILE, read_json
from lssat.data.sources.base import Item, Output, Source
from lssat.errors import DataError

DEMO_VERSION = 1
SIZE = 64
FRAMES = 8
N_FACES = 100
SPLIT_SIZES = {"train": 60, "val": 20, "test": 20}
# stronger intensity change and misalignment than Perturbation's defaults, so the cue
# survives the 2-4x downsampling of strided CNN stems (a 4-layer CNN: val AUC ~0.72)
PERTURBATION = Perturbation(gain=(0.7, 1.3), bias=(-35.0, 35.0), scale=(0.92, 1.08), shift=0.06)


def default_cache_dir() -> Path:
    """``$LSSAT_CACHE``, else ``$XDG_CACHE_HOME/lssat-search``, else ``~/.cache/lssat-search``."""
    if os.environ.get("LSSAT_CACHE"):
        return Path(os.environ["LSSAT_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lssat-search"


@functools.cache
def lfw_faces() -> np.ndarray:
    """The 100 real faces of ``skimage.data.lfw_subset()`` as uint8 ``[100, 25, 25]``.

    Loaded once per process and shared: the array is read-only (copy it to modify it).
    """
    from skimage import data

    faces = np.round(data.lfw_subset()[:N_FACES] * 255).astype(np.uint8)
    faces.flags.writeable = False
    return faces


class DemoSource(Source):
    """Real vs self-blended LFW faces as 200 short "videos" (``real/lfw_017``, ``fake/...``)."""

    name = "demo"
    task = "deepfake"
    label_kind = "binary"
    is_video = True
    chunk = 32
    channels = "grey"

    def __init__(self, seed: int = 0, size: int = SIZE, frames: int = FRAMES):
        super().__init__(None, size)
        self.seed = seed
        self.frames = frames
        self.classes = ["real", "fake"]
        self._faces: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_faces": None}

    def options(self) -> dict[str, Any]:
        return {"seed": self.seed, "frames": self.frames, "demo_version": DEMO_VERSION}

    def meta_extra(self) -> dict[str, Any]:
        return {
            "demo_version": DEMO_VERSION,
            "demo": {
                "faces": "skimage.data.lfw_subset() (100 real faces, 25x25 grey)",
                "fakes": "self-blended images (SBI) of the same faces",
                "frames_per_video": self.frames,
                "split_faces": SPLIT_SIZES,
                "seed": self.seed,
            },
        }

    def list_items(self) -> list[Item]:
        perm = np.random.default_rng(self.seed).permutation(N_FACES)
        split_of = {}
        start = 0
        for split, n in SPLIT_SIZES.items():
            for face in perm[start : start + n]:
                split_of[int(face)] = split
            start += n
        return [
            Item(f"{kind}/lfw_{face:03d}", split_of[face], label, extra={"face": face})
            for face in range(N_FACES)
            for label, kind in ((0, "real"), (1, "fake"))
        ]

    def process(self, item: Item) -> Output:
        if self._faces is None:
            self._faces = lfw_faces()
        face = int(item.extra["face"])
        base = cv2.resize(
            self._faces[face].astype(np.float32), (self.size, self.size),
            interpolation=cv2.INTER_CUBIC,
        )  # fmt: skip
        poses = np.random.default_rng([self.seed, face, 0])  # shared by real and fake video
        blends = np.random.default_rng([self.seed, face, 1])
        noise = np.random.default_rng([self.seed, face, 2 + int(item.label or 0)])
        frames = []
        for j in range(self.frames):
            frame = jitter_pose(base, poses)
            if item.label == 1:
                frame, _ = self_blend(frame, blends, PERTURBATION)
            frame = frame + noise.normal(0, noise.uniform(0.5, 2.0), frame.shape)
            frames.append((f"#{j}", to_rgb(np.clip(np.round(frame), 0, 255).astype(np.uint8))))
        assert item.label is not None
        return Output(frames, item.label)


def jitter_pose(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A video-like frame: small rotation, scale, shift and global intensity change."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-6, 6), rng.uniform(0.96, 1.06))
    matrix[:, 2] += rng.uniform(-0.03, 0.03, size=2) * (w, h)
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)  # fmt: skip
    return out * rng.uniform(0.9, 1.1) + rng.uniform(-10, 10)


def _valid(path: Path) -> bool:
    try:
        return read_json(path / META_FILE, "demo meta").get("demo_version") == DEMO_VERSION
    except DataError:
        return False


def demo_dataset(cache_dir: str | Path | None = None, *, seed: int = 0) -> Path:
    """The prepared demo directory, built on first use (and again when DEMO_VERSION moves).

    Built in a temporary folder and renamed into place, so two processes racing to build it
    both end up with one complete copy.
    """
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    final = base / f"demo-deepfake-v{DEMO_VERSION}-seed{seed}"
    if _valid(final):
        return final
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".demo-build-", dir=base))
    try:
        prepare(DemoSource(seed=seed), work / "data", progress=False)
        if final.exists() and not _valid(final):  # a broken leftover: move it out of the way
            try:
                os.rename(final, work / "stale")
            except OSError:
                pass
        try:
            os.rename(work / "data", final)
        except OSError:
            if not _valid(final):  # nobody else finished it either
                raise DataError(f"could not build the demo dataset at {final}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final
