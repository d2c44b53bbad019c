"""Tiny raw datasets in the real on-disk layouts, for tests, docs and the benchmark.

Faces are the real LFW faces shipped with scikit-image, enlarged and pasted on a textured
background so OpenCV's Haar cascade finds them. Each builder can add the broken cases a
real download has: corrupt files, missing annotations, face-less videos, empty classes.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from lssat.data.demo import lfw_faces
from lssat.tasks import CELEBA_ATTRIBUTES as CELEBA_NAMES

# LFW-subset faces that OpenCV 4.x's frontal Haar cascade misses once enlarged and pasted
MISSED_BY_HAAR = (4, 13, 30)
GOOD_FACES = tuple(i for i in range(100) if i not in MISSED_BY_HAAR)


def face_scene(
    face: int, width: int = 160, height: int = 120, side: int = 80, dx: int = 0, dy: int = 0
) -> np.ndarray:
    """uint8 RGB ``[height, width, 3]``: the ``face``-th detectable LFW face enlarged to
    ``side`` px, tinted, pasted near the centre (shifted by dx, dy) on a smooth background."""
    face = GOOD_FACES[face % len(GOOD_FACES)]
    rng = np.random.default_rng(face)
    grey = cv2.resize(lfw_faces()[face], (side, side), interpolation=cv2.INTER_CUBIC)
    tint = np.array([1.0, 0.85, 0.72]) * rng.uniform(0.9, 1.1)
    face_rgb = np.clip(grey[:, :, None] * tint, 0, 255)
    bg = rng.uniform(60, 160, size=(height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
    scene = cv2.resize(bg, (width, height), interpolation=cv2.INTER_LINEAR)
    y0, x0 = (height - side) // 2 + dy, (width - side) // 2 + dx
    scene[y0 : y0 + side, x0 : x0 + side] = face_rgb
    return np.clip(scene, 0, 255).astype(np.uint8)


def blank_scene(seed: int, width: int = 160, height: int = 120) -> np.ndarray:
    """uint8 RGB ``[height, width, 3]`` with no face: a smooth random texture."""
    rng = np.random.default_rng(10_000 + seed)
    bg = rng.uniform(0, 255, size=(height // 16 + 1, width // 16 + 1, 3)).astype(np.float32)
    return cv2.resize(bg, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.uint8)


def write_image(path: Path, rgb: np.ndarray, quality: int = 92) -> Path:
    """Write an RGB image as JPEG or PNG (by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
        raise OSError(f"could not write {path}")
    return path


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float = 10.0) -> Path:
    """Write RGB frames as an MPEG-4 Part 2 ``.mp4`` (fourcc ``mp4v``, which this OpenCV
    build encodes; H.264 ``avc1`` has no encoder in the wheel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = list(frames)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path} with fourcc mp4v")
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def face_clip(face: int, n: int = 8, **scene: int) -> list[np.ndarray]:
    """``n`` frames of a slowly moving face."""
    return [face_scene(face, dx=2 * (i % 4) - 3, dy=(i % 3) - 1, **scene) for i in range(n)]


def corrupt_file(path: Path, nbytes: int = 600) -> Path:
    """A file of random bytes (a corrupt image or video)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(7).integers(0, 256, nbytes, dtype=np.uint8).tobytes())
    return path


# --------------------------------------------------------------------- FaceForensics++
FF_SPLITS = {"train": [["000", "001"]], "val": [["002", "003"]], "test": [["004", "005"]]}


def make_faceforensics(
    root: Path,
    methods: tuple[str, ...] = ("Deepfakes",),
    compression: str = "c23",
    frames: int = 8,
    broken: bool = True,
    frame_folders: tuple[str, ...] = (),
    splits: bool = True,
) -> Path:
    """FF++ tree: originals 000-005, fakes ``target_source`` for each split pair in both
    directions, split JSONs in ``root/splits``. ``broken`` adds ``006.mp4`` (random bytes)
    and ``007.mp4`` (no face) to the test pairs; ``frame_folders`` methods are written as
    folders of PNG frames instead of videos."""
    pairs = {s: [list(p) for p in v] for s, v in FF_SPLITS.items()}
    real = root / "original_sequences" / "youtube" / compression / "videos"
    for i in range(6):
        write_video(real / f"{i:03d}.mp4", face_clip(i, frames))
    if broken:
        pairs["test"].append(["006", "007"])
        corrupt_file(real / "006.mp4")
        write_video(real / "007.mp4", [blank_scene(i) for i in range(frames)])
    for m in methods:
        folder = root / "manipulated_sequences" / m / compression / "videos"
        for a, b in (p for ps in FF_SPLITS.values() for p in ps):
            for t, s in ((a, b), (b, a)):
                clip = face_clip(50 + int(t) * 7 + int(s), frames)
                if m in frame_folders:
                    for j, f in enumerate(clip):
                        write_image(folder / f"{t}_{s}" / f"{j:04d}.png", f)
                else:
                    write_video(folder / f"{t}_{s}.mp4", clip)
    if splits:
        (root / "splits").mkdir(parents=True, exist_ok=True)
        for s, p in pairs.items():
            (root / "splits" / f"{s}.json").write_text(json.dumps(p))
    return root


# ------------------------------------------------------------------------------ Celeb-DF
def make_celebdf(root: Path, frames: int = 6, broken: bool = True) -> Path:
    """Celeb-DF-v2 tree: ``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/`` videos and
    ``List_of_testing_videos.txt`` (``label path``, 1 = real, 0 = synthesised) listing 3 of
    the 6 good videos. ``broken`` lists a corrupt video, a face-less one and a missing one."""
    good = {
        "Celeb-real/id0_0000.mp4": 0, "Celeb-real/id1_0000.mp4": 1, "YouTube-real/00000.mp4": 2,
        "Celeb-synthesis/id0_id1_0000.mp4": 60, "Celeb-synthesis/id1_id0_0000.mp4": 61,
        "Celeb-synthesis/id2_id0_0001.mp4": 62,
    }  # fmt: skip
    for rel, face in good.items():
        write_video(root / rel, face_clip(face, frames))
    listed = ["1 Celeb-real/id0_0000.mp4", "1 YouTube-real/00000.mp4",
              "0 Celeb-synthesis/id0_id1_0000.mp4"]  # fmt: skip
    if broken:
        corrupt_file(root / "Celeb-real/id2_0000.mp4")
        write_video(root / "YouTube-real/00001.mp4", [blank_scene(i) for i in range(frames)])
        listed += ["1 Celeb-real/id2_0000.mp4", "1 YouTube-real/00001.mp4",
                   "0 Celeb-synthesis/id9_id8_0000.mp4"]  # fmt: skip
    (root / "List_of_testing_videos.txt").write_text("\n".join(listed) + "\n")
    return root


# ------------------------------------------------------------------------------ CelebA
def make_celeba(root: Path, n: int = 9, variant: str = "txt", broken: bool = True) -> Path:
    """CelebA tree: ``n`` aligned 178x218 JPEGs, attribute and partition files (``txt``:
    official; ``csv``: Kaggle layout with a doubled image folder). ``broken`` lists one
    image that is missing and makes one a corrupt file."""
    rng = np.random.default_rng(3)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    folder = root / "img_align_celeba"
    if variant == "csv":
        folder = folder / "img_align_celeba"
    for i, name in enumerate(names):
        write_image(folder / name, face_scene(i, width=178, height=218, side=140))
    listed = list(names)
    if broken:
        corrupt_file(folder / names[-1])
        listed.append(f"{n + 1:06d}.jpg")  # annotated, but the file is missing
    values = rng.choice([-1, 1], size=(len(listed), len(CELEBA_NAMES)))
    parts = [
        0 if i < len(listed) * 0.6 else (1 if i < len(listed) * 0.8 else 2)
        for i in range(len(listed))
    ]
    if variant == "csv":
        with open(root / "list_attr_celeba.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image_id", *CELEBA_NAMES])
            w.writerows([name, *map(int, v)] for name, v in zip(listed, values, strict=True))
        with open(root / "list_eval_partition.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image_id", "partition"])
            w.writerows(zip(listed, parts, strict=True))
    else:
        lines = [str(len(listed)), " ".join(CELEBA_NAMES) + " "]
        lines += [
            f"{name} " + " ".join(f"{v:2d}" for v in row)
            for name, row in zip(listed, values, strict=True)
        ]
        (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
        text = "".join(f"{name} {p}\n" for name, p in zip(listed, parts, strict=True))
        (root / "list_eval_partition.txt").write_text(text)
    return root


# --------------------------------------------------------------------------- AffectNet
AFFECTNET_FOLDERS = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")


def _npy_str(path: Path, value: str) -> None:
    np.save(path, np.array(value))  # AffectNet stores each annotation as a 0-d string array


def make_affectnet(root: Path, variant: str = "raw", broken: bool = True, copies: int = 1) -> Path:
    """AffectNet tree. ``raw``: ``{train,val}_set/images/<id>.jpg`` + ``annotations/<id>_
    {exp,val,aro,lnd}.npy``, labels 0-7 in train plus one code 8 (None), each ``copies``
    times; ``broken`` adds a corrupt image and an image without annotation. ``folders``:
    ``train|val/<class>/*.jpg`` with an empty ``contempt`` class folder."""
    if variant == "folders":
        for split, per in (("train", 2), ("val", 1)):
            for c, name in enumerate(AFFECTNET_FOLDERS):
                (root / split / name).mkdir(parents=True, exist_ok=True)
                if name == "contempt" and broken:
                    continue
                for k in range(per):
                    write_image(root / split / name / f"{c}_{k}.jpg",
                                face_scene(c * 3 + k, 112, 112, 96))  # fmt: skip
        return root
    for split, codes in (("train_set", list(range(9)) * copies), ("val_set", [0, 1, 7])):
        img_dir, ann = root / split / "images", root / split / "annotations"
        ann.mkdir(parents=True, exist_ok=True)
        for k, code in enumerate(codes):
            stem = f"{1000 * (split == 'val_set') + k}"
            write_image(img_dir / f"{stem}.jpg", face_scene(k % 50, 112, 112, 96))
            _npy_str(ann / f"{stem}_exp.npy", str(code))
            _npy_str(ann / f"{stem}_val.npy", "0.25")
            _npy_str(ann / f"{stem}_aro.npy", "-0.1")
            np.save(ann / f"{stem}_lnd.npy", np.zeros(136, np.float32))
        if broken and split == "train_set":
            corrupt_file(img_dir / "900.jpg")
            _npy_str(ann / "900_exp.npy", "1")
            write_image(img_dir / "901.jpg", face_scene(20, 112, 112, 96))  # no annotation
    return root


# ------------------------------------------------------------------------------ folder
def make_folder(root: Path, classes: tuple[str, ...] = ("cat_a", "cat_b"), per_class: int = 3,
                empty: str | None = "cat_empty", corrupt: bool = True) -> Path:  # fmt: skip
    """``root/<class>/*.jpg|png`` tree with an optional empty class and a corrupt image."""
    for c, name in enumerate(classes):
        for k in range(per_class):
            suffix = ".png" if k % 2 else ".jpg"
            write_image(root / name / f"img{k}{suffix}", face_scene(c * 5 + k, 96, 96, 80))
    if empty:
        (root / empty).mkdir(parents=True, exist_ok=True)
    if corrupt:
        corrupt_file(root / classes[0] / "broken.jpg")
    return root


def make_folder_csv(root: Path, n: int = 8) -> Path:
    """Images in ``root/images`` and ``root/labels.csv`` with path,label,split,group."""
    rows = []
    for k in range(n):
        rel = f"images/{k:03d}.jpg"
        write_image(root / rel, face_scene(k, 96, 96, 80))
        split = "train" if k < n - 2 else ("val" if k == n - 2 else "test")
        rows.append([rel, "smile" if k % 2 else "neutral", split, ["a", "b", ""][k % 3]])
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "split", "group"])
        w.writerows(rows)
    return root
