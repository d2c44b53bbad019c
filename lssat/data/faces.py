"""Image reading, face detection (OpenCV Haar cascade) and square face crops.

All images here are numpy uint8 RGB ``[H, W, 3]``; grey inputs become three equal channels.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from lssat.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
CASCADE = "haarcascade_frontalface_default.xml"

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


class Skip(Exception):
    """A source item (or frame) that cannot be used; the message is the reason."""


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (by suffix), in name order."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W]`` / ``[H, W, 1]`` / ``[H, W, 3]`` / ``[H, W, 4]`` -> ``[H, W, 3]``.

    Grey images get the grey value in all three channels (no colour is invented).
    """
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def read_image(path: Path) -> np.ndarray:
    """Decode an image file to uint8 RGB ``[H, W, 3]``; Skip when unreadable or corrupt."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise Skip(f"unreadable file ({exc.strerror or exc})") from None
    if data.size == 0:
        raise Skip("empty file")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise Skip("corrupt or unsupported image")
    if image.dtype != np.uint8:  # 16-bit PNG / TIFF
        image = image / (65535.0 if image.dtype == np.uint16 else image.max() or 1) * 255
        image = image.round().astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    elif image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return to_rgb(image)


class FaceDetector:
    """Largest frontal face by OpenCV's Haar cascade (shipped in opencv-python-headless<5)."""

    def __init__(self, min_face: float = 0.1, neighbors: int = 5):
        self.min_face = min_face
        self.neighbors = neighbors
        self._cascade: cv2.CascadeClassifier | None = None

    def __getstate__(self) -> dict[str, float]:
        return {"min_face": self.min_face, "neighbors": self.neighbors}

    def __setstate__(self, state: dict[str, float]) -> None:
        self.__init__(**state)

    @property
    def cascade(self) -> cv2.CascadeClassifier:
        if self._cascade is None:
            path = Path(cv2.data.haarcascades) / CASCADE
            cascade = cv2.CascadeClassifier(str(path))
            if cascade.empty():
                raise DataError(
                    f"OpenCV's Haar cascade {path} is missing; install opencv-python-headless<5 "
                    "or pass a face box file (--boxes)"
                )
            self._cascade = cascade
        return self._cascade

    def __call__(self, image: np.ndarray) -> Box | None:
        """The largest face box in an RGB ``[H, W, 3]`` image, or None."""
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        side = max(int(min(grey.shape) * self.min_face), 20)
        found = self.cascade.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=self.neighbors, minSize=(side, side)
        )
        if len(found) == 0:
            return None
        x, y, w, h = max((tuple(int(v) for v in b) for b in found), key=lambda b: b[2] * b[3])
        return x, y, w, h


def crop_square(image: np.ndarray, box: Box, margin: float, size: int) -> np.ndarray:
    """Square crop around ``box`` enlarged by ``margin`` (0.3 = 30% of the box side on each
    side), padded by edge replication where it leaves the image, resized to ``[size, size, 3]``."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(int(round(side)), 1)
    height, width = image.shape[:2]
    pad = max(0, -x0, -y0, x0 + s - width, y0 + s - height)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    return resize(image[y0 : y0 + s, x0 : x0 + s], size)


def center_square(image: np.ndarray, size: int) -> np.ndarray:
    """Central square crop of an already aligned face, resized to ``[size, size, 3]``."""
    h, w = image.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return resize(image[y0 : y0 + s, x0 : x0 + s], size)


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``[size, size, 3]``: area filter when shrinking, bicubic when enlarging."""
    if image.shape[0] == size and image.shape[1] == size:
        return np.ascontiguousarray(image)
    shrink = image.shape[0] > size
    method = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(image, (size, size), interpolation=method))


def load_boxes(path: Path) -> dict[tuple[str, int], Box]:
    """A user face-box CSV with header ``path,frame,x,y,w,h`` (``frame`` empty or -1 for
    still images; ``path`` relative to the dataset root) -> ``{(path, frame): box}``."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise DataError(f"face box file {path} cannot be read ({exc.strerror or exc})") from None
    need = {"path", "x", "y", "w", "h"}
    if not rows or not need <= set(rows[0]):
        raise DataError(
            f"face box file {path} needs a header with columns path,frame,x,y,w,h "
            "(frame may be empty for still images)"
        )
    boxes: dict[tuple[str, int], Box] = {}
    for n, row in enumerate(rows, start=2):
        try:
            frame = int(row.get("frame") or -1)
            box = tuple(int(float(row[k])) for k in ("x", "y", "w", "h"))
        except (TypeError, ValueError):
            raise DataError(f"face box file {path} line {n} has a non-numeric value") from None
        if box[2] <= 0 or box[3] <= 0:
            raise DataError(f"face box file {path} line {n} has a box of width/height <= 0")
        boxes[(Path(row["path"]).as_posix(), frame)] = box  # type: ignore[assignment]
    return boxes
