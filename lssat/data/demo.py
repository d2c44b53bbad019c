"""Embedded demo datasets with real labels, built in seconds from images packages ship.

No download: every image comes from an installed wheel, and each demo goes through the same
prepare pipeline and shard format as real data, cached in ``$LSSAT_CACHE``.

| name | task | images | labels |
|---|---|---|---|
| ``sbi`` | deepfake | the 100 faces of ``skimage.data.lfw_subset()`` | real vs self-blended |
| ``swap`` | deepfake | the same faces | real vs another face blended in (face swap) |
| ``faces`` | classify | the 100 faces + 100 non-faces of ``lfw_subset()`` | face vs non-face |
| ``digits`` | classify | scikit-learn's 1797 handwritten digits (8x8) | the digit 0-9 |

Deepfake demos: each face is one source ("identity") with a "real video" and a "fake video"
of ``FRAMES`` frames each (the same jittered poses, like an FF++ target and its
manipulation). Faces are split ``SPLIT_SIZES`` (50/20/30) into train/val/test by a seeded
permutation shared by both deepfake demos, so no source face crosses splits. Images are
upscaled (bicubic) to ``SIZE`` px and stored as three equal grey channels
(``meta["channels"] == "grey"``: no colour is invented).
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lssat.data.faces import to_rgb
from lssat.data.pipeline import prepare
from lssat.data.sbi import BLEND_RATIOS, Perturbation, face_mask, self_blend
from lssat.data.shards import META_FILE, read_json
from lssat.data.sources.base import Item, Output, Source
from lssat.errors import DataError

DEMO_VERSION = 2
SIZE = 64
FRAMES = 8
N_FACES = 100
# faces per split: a 30-face (60-video, 480-frame) test split keeps the held-out interval
# informative while 50 training faces (800 frames) still teach a small CNN the blend
SPLIT_SIZES = {"train": 50, "val": 20, "test": 30}
# stronger intensity change and misalignment than Perturbation's defaults, so the cue
# survives the 2-4x downsampling of strided CNN stems (a 4-layer CNN: val AUC ~0.72)
PERTURBATION = Perturbation(gain=(0.7, 1.3), bias=(-35.0, 35.0), scale=(0.92, 1.08), shift=0.06)
DEFAULT = "sbi"  # the demo a deepfake search without --data trains on


def default_cache_dir() -> Path:
    """``$LSSAT_CACHE``, else ``$XDG_CACHE_HOME/lssat-search``, else ``~/.cache/lssat-search``."""
    if os.environ.get("LSSAT_CACHE"):
        return Path(os.environ["LSSAT_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "lssat-search"


@functools.cache
def _lfw() -> tuple[np.ndarray, np.ndarray]:
    from skimage import data

    images = np.round(data.lfw_subset() * 255).astype(np.uint8)
    images.flags.writeable = False
    return images[:N_FACES], images[N_FACES:]


def lfw_faces() -> np.ndarray:
    """The 100 real faces of ``skimage.data.lfw_subset()`` as uint8 ``[100, 25, 25]``.

    Loaded once per process and shared: the array is read-only (copy it to modify it).
    """
    return _lfw()[0]


def lfw_non_faces() -> np.ndarray:
    """The 100 non-face patches of ``skimage.data.lfw_subset()``, uint8 ``[100, 25, 25]``."""
    return _lfw()[1]


@functools.cache
def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's shipped digits: uint8 images ``[1797, 8, 8]`` (0..255) and labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    return images, bunch.target.astype(np.int64)


LIGHTING = ["dark", "bright"]  # group values: source image below / above the median grey level


def lighting(images: np.ndarray) -> np.ndarray:
    """Group index per image ``[N]``: 0 = darker than the set's median mean grey, 1 = brighter.

    Not a demographic attribute (LFW-subset has none): a lighting group, so the demo's fairness
    section (per-group and worst-group accuracy) has something real to measure."""
    means = images.reshape(len(images), -1).mean(axis=1)
    return (means > np.median(means)).astype(np.int64)


def face_splits(seed: int) -> dict[int, str]:
    """Split of each of the 100 faces (seeded permutation, ``SPLIT_SIZES``)."""
    perm = np.random.default_rng(seed).permutation(N_FACES)
    split_of: dict[int, str] = {}
    start = 0
    for split, n in SPLIT_SIZES.items():
        for face in perm[start : start + n]:
            split_of[int(face)] = split
        start += n
    return split_of


def upscale(image: np.ndarray, size: int) -> np.ndarray:
    """uint8/float ``[h, w]`` -> float32 ``[size, size]`` (bicubic)."""
    return cv2.resize(image.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)


def _to_uint8_rgb(frame: np.ndarray) -> np.ndarray:
    return to_rgb(np.clip(np.round(frame), 0, 255).astype(np.uint8))


class DemoSource(Source):
    """Real vs manipulated LFW faces as 200 short "videos" (``real/lfw_017``, ``fake/...``).

    ``manipulation``: ``sbi`` (self-blend, :mod:`lssat.data.sbi`) or ``swap`` (another face of
    the same split, pose-jittered and matched in brightness and contrast, blended into the
    inner face).
    """

    task = "deepfake"
    label_kind = "binary"
    is_video = True
    chunk = 32
    channels = "grey"

    def __init__(
        self, seed: int = 0, size: int = SIZE, frames: int = FRAMES, manipulation: str = "sbi"
    ):
        super().__init__(None, size)
        if manipulation not in ("sbi", "swap"):
            raise DataError(f"demo manipulation {manipulation!r} is not one of sbi, swap")
        self.name = manipulation
        self.seed = seed
        self.frames = frames
        self.manipulation = manipulation
        self.classes = ["real", "fake"]
        self.groups = ["lighting"]
        self.group_values = {"lighting": LIGHTING}

    def options(self) -> dict[str, Any]:
        return {"seed": self.seed, "frames": self.frames, "demo_version": DEMO_VERSION}

    def meta_extra(self) -> dict[str, Any]:
        fakes = {
            "sbi": "self-blended images (SBI) of the same faces",
            "swap": "face swaps: another face of the same split blended into the inner face",
        }[self.manipulation]
        return {
            "demo_version": DEMO_VERSION,
            "demo": {
                "name": self.name,
                "faces": "skimage.data.lfw_subset() (100 real faces, 25x25 grey)",
                "fakes": fakes,
                "frames_per_video": self.frames,
                "split_faces": SPLIT_SIZES,
                "seed": self.seed,
            },
        }

    def list_items(self) -> list[Item]:
        split_of = face_splits(self.seed)
        donors = _donors(split_of, self.seed)
        light = lighting(lfw_faces())
        return [
            Item(
                f"{kind}/lfw_{face:03d}",
                split_of[face],
                label,
                groups=(int(light[face]),),
                extra={"face": face, "donor": donors[face]},
            )
            for face in range(N_FACES)
            for label, kind in ((0, "real"), (1, "fake"))
        ]

    def process(self, item: Item) -> Output:
        faces = lfw_faces()
        face = int(item.extra["face"])
        base = upscale(faces[face], self.size)
        poses = np.random.default_rng([self.seed, face, 0])  # shared by real and fake video
        blends = np.random.default_rng([self.seed, face, 1])
        noise = np.random.default_rng([self.seed, face, 2 + int(item.label or 0)])
        donor = upscale(faces[int(item.extra["donor"])], self.size)
        donor_poses = np.random.default_rng([self.seed, face, 3])
        frames = []
        for j in range(self.frames):
            frame = jitter_pose(base, poses)
            if item.label == 1 and self.manipulation == "sbi":
                frame, _ = self_blend(frame, blends, PERTURBATION)
            elif item.label == 1:
                frame = face_swap(frame, jitter_pose(donor, donor_poses), blends)
            frame = frame + noise.normal(0, noise.uniform(0.5, 2.0), frame.shape)
            frames.append((f"#{j}", _to_uint8_rgb(frame)))
        assert item.label is not None
        return Output(frames, item.label)


def _donors(split_of: dict[int, str], seed: int) -> dict[int, int]:
    """For each face, another face of the same split (a derangement within each split)."""
    rng = np.random.default_rng([seed, 7])
    donors: dict[int, int] = {}
    for split in SPLIT_SIZES:
        members = sorted(f for f, s in split_of.items() if s == split)
        shift = int(rng.integers(1, len(members)))
        order = rng.permutation(members)
        for i, face in enumerate(order):
            donors[int(face)] = int(order[(i + shift) % len(order)])
    return donors


def face_swap(target: np.ndarray, donor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``donor``'s inner face blended into ``target`` (float32 ``[H, W]``, 0..255), after
    matching the donor's mean and spread inside the mask to the target's (the colour
    correction of swap pipelines), with a slight blur as from a generator's decoder."""
    mask = face_mask(*target.shape[:2], rng) * rng.choice(BLEND_RATIOS[2:])
    weight = mask / max(float(mask.sum()), 1e-6)

    def stats(x: np.ndarray) -> tuple[float, float]:
        mean = float((weight * x).sum())
        return mean, float(np.sqrt((weight * (x - mean) ** 2).sum()) + 1e-3)

    (mt, st), (md, sd) = stats(target), stats(donor)
    matched = (donor - md) * (st / sd) + mt
    matched = cv2.GaussianBlur(matched.astype(np.float32), (0, 0), rng.uniform(0.3, 1.0))
    return np.clip(mask * matched + (1 - mask) * target, 0, 255)


def jitter_pose(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A video-like frame: small rotation, scale, shift and global intensity change."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-6, 6), rng.uniform(0.96, 1.06))
    matrix[:, 2] += rng.uniform(-0.03, 0.03, size=2) * (w, h)
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)  # fmt: skip
    return out * rng.uniform(0.9, 1.1) + rng.uniform(-10, 10)


class StillSource(Source):
    """Labelled still images shipped in a package, one row each, split per class
    (``fractions`` of each class to train/val/test, seeded), upscaled to ``size`` px grey."""

    task = "classify"
    label_kind = "multiclass"
    chunk = 512
    channels = "grey"
    fractions = (0.6, 0.2, 0.2)

    def __init__(self, seed: int = 0, size: int = SIZE):
        super().__init__(None, size)
        self.seed = seed

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images ``[N, h, w]`` and int labels ``[N]``."""
        raise NotImplementedError

    def description(self) -> dict[str, Any]:
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        return {"seed": self.seed, "demo_version": DEMO_VERSION}

    def meta_extra(self) -> dict[str, Any]:
        return {"demo_version": DEMO_VERSION, "demo": {"name": self.name, **self.description(),
                                                       "seed": self.seed}}  # fmt: skip

    def list_items(self) -> list[Item]:
        images, labels = self.arrays()
        rng = np.random.default_rng([self.seed, 11])
        split = np.empty(len(labels), dtype=object)
        for cls in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == cls))
            n_train = round(self.fractions[0] * len(idx))
            n_val = round(self.fractions[1] * len(idx))
            split[idx[:n_train]] = "train"
            split[idx[n_train : n_train + n_val]] = "val"
            split[idx[n_train + n_val :]] = "test"
        light = lighting(images) if self.groups else None
        return [
            Item(
                f"{self.classes[int(y)]}/{i:04d}",
                str(split[i]),
                int(y),
                groups=(int(light[i]),) if light is not None else (),
                extra={"i": i},
            )
            for i, y in enumerate(labels)
        ]

    def process(self, item: Item) -> Output:
        images, _ = self.arrays()
        image = upscale(images[int(item.extra["i"])], self.size)
        assert item.label is not None
        return Output([("", _to_uint8_rgb(image))], item.label)


class FacesSource(StillSource):
    """Face vs non-face: the 100 faces and 100 non-face patches of ``lfw_subset()``."""

    name = "faces"

    def __init__(self, seed: int = 0, size: int = SIZE):
        super().__init__(seed, size)
        self.classes = ["non_face", "face"]
        self.groups = ["lighting"]
        self.group_values = {"lighting": LIGHTING}

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        faces, others = _lfw()
        labels = np.r_[np.ones(len(faces)), np.zeros(len(others))].astype(np.int64)
        return np.concatenate([faces, others]), labels

    def description(self) -> dict[str, Any]:
        return {"images": "skimage.data.lfw_subset(): 100 faces + 100 non-face patches, 25x25",
                "split": "60/20/20 % of each class"}  # fmt: skip


class DigitsSource(StillSource):
    """Handwritten digits 0-9: scikit-learn's shipped ``load_digits()`` (8x8, 1797 images)."""

    name = "digits"

    def __init__(self, seed: int = 0, size: int = 32):
        super().__init__(seed, size)
        self.classes = [str(d) for d in range(10)]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return sklearn_digits()

    def description(self) -> dict[str, Any]:
        return {"images": "sklearn.datasets.load_digits(): 1797 digits, 8x8, 17 grey levels",
                "split": "60/20/20 % of each class"}  # fmt: skip


# name -> (task, source factory(seed))
DEMOS: dict[str, tuple[str, Callable[[int], Source]]] = {
    "sbi": ("deepfake", lambda seed: DemoSource(seed, manipulation="sbi")),
    "swap": ("deepfake", lambda seed: DemoSource(seed, manipulation="swap")),
    "faces": ("classify", lambda seed: FacesSource(seed)),
    "digits": ("classify", lambda seed: DigitsSource(seed)),
}


def demo_task(name: str) -> str:
    """The task of demo ``name``; DataError naming the demos for an unknown one."""
    if name not in DEMOS:
        raise DataError(f"demo dataset {name!r} is unknown; built-in demos: {', '.join(DEMOS)}")
    return DEMOS[name][0]


def folder_name(name: str, seed: int = 0) -> str:
    """Cache folder of one demo: ``demo-<name>-v<DEMO_VERSION>-seed<seed>``."""
    return f"demo-{name}-v{DEMO_VERSION}-seed{seed}"


def _valid(path: Path) -> bool:
    try:
        return read_json(path / META_FILE, "demo meta").get("demo_version") == DEMO_VERSION
    except DataError:
        return False


def demo_dataset(
    cache_dir: str | Path | None = None, *, seed: int = 0, name: str = DEFAULT
) -> Path:
    """The prepared demo ``name`` (see ``DEMOS``), built on first use (and again when
    DEMO_VERSION moves).

    Built in a temporary folder and renamed into place, so two processes racing to build it
    both end up with one complete copy.
    """
    demo_task(name)
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    final = base / folder_name(name, seed)
    if _valid(final):
        return final
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".demo-build-", dir=base))
    try:
        prepare(DEMOS[name][1](seed), work / "data", progress=False)
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
