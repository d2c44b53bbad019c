"""Evenly spaced frames from a video file (OpenCV) or a folder of pre-extracted frames."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from lssat.data.faces import Skip, image_files, read_image

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
# FFmpeg's own log lines ("moov atom not found") would break the progress bar; a bad video
# is reported in meta.json instead. An explicit user setting wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def even_indices(total: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly over ``[0, total)`` (all when total <= count)."""
    if total <= 0:
        return []
    if total <= count:
        return list(range(total))
    return sorted({int(round(v)) for v in np.linspace(0, total - 1, count)})


def read_frames(path: Path, count: int) -> Iterator[tuple[int, np.ndarray | str]]:
    """Yield ``(frame_index, RGB [H, W, 3])`` for ``count`` evenly spaced frames, or
    ``(frame_index, reason)`` for a frame that cannot be decoded; Skip for an unusable video."""
    if path.is_dir():
        files = image_files(path)
        if not files:
            raise Skip("frame folder holds no images")
        for i in even_indices(len(files), count):
            try:
                yield i, read_image(files[i])
            except Skip as exc:
                yield i, str(exc)
        return
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise Skip("unreadable or corrupt video")
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if total <= 0:  # some containers do not store it: count by decoding
            total = 0
            while cap.grab():
                total += 1
            cap.release()
            cap = cv2.VideoCapture(str(path))
        wanted = even_indices(total, count)
        if not wanted:
            raise Skip("video has no frames")
        # decode sequentially (seeking is inexact for many codecs)
        pos, got = 0, 0
        for target in wanted:
            while pos < target:
                if not cap.grab():
                    break
                pos += 1
            ok, frame = cap.read()
            pos += 1
            if not ok or frame is None:
                yield target, "frame could not be decoded"
                continue
            got += 1
            yield target, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if got == 0:
            raise Skip("no frame could be decoded")
    finally:
        cap.release()
