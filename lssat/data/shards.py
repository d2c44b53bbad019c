"""Prepared-dataset storage: Arrow IPC shard files, memory-mapped when read.

Layout of a prepared directory::

    DIR/meta.json             task, classes, groups, counts, skipped files (written last)
    DIR/prepare.json          the options fingerprint a resumed prepare must match
    DIR/shards/part-00000.arrow ...

One shard holds the rows made from one fixed chunk of source items, so a resumed prepare
rewrites only the missing chunks and never duplicates a row. Columns:

- ``image``  ``fixed_size_binary(S*S*3)``: uint8 ``[S, S, 3]`` (HWC, RGB) face crop
- ``label``  ``int64`` (binary / multiclass) or ``fixed_size_list<uint8>[K]`` (multilabel)
- ``split``  ``int8`` index into :data:`SPLITS`
- ``video``  ``int64`` video id (-1 = none)
- ``key``    ``string`` source item (relative path, ``#frame`` for video frames)
- ``groups`` ``fixed_size_list<int8>[G]`` group values, -1 = unknown (only when G > 0)

Shard schema metadata carries the chunk's skipped items and reasons as JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from lssat.errors import DataError

FORMAT = "lssat-shards"
FORMAT_VERSION = 1
SPLITS: tuple[str, ...] = ("train", "val", "test")
META_FILE = "meta.json"
SHARD_DIR = "shards"


@dataclass
class Record:
    """One prepared row: ``image`` uint8 ``[S, S, 3]`` RGB plus its labels."""

    image: np.ndarray
    label: int | Sequence[int]
    split: str
    key: str
    video: int = -1
    groups: Sequence[int] = ()


@dataclass
class ChunkResult:
    """What one chunk of source items produced: rows, skipped / excluded items, bad frames."""

    records: list[Record] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    excluded: list[dict[str, str]] = field(default_factory=list)
    skipped_frames: list[dict[str, str]] = field(default_factory=list)


def shard_schema(size: int, num_labels: int, num_groups: int) -> pa.Schema:
    """Arrow schema of a shard; ``num_labels`` > 0 means a multilabel ``[K]`` label."""
    label = pa.list_(pa.uint8(), num_labels) if num_labels else pa.int64()
    cols = [
        pa.field("image", pa.binary(size * size * 3)),
        pa.field("label", label),
        pa.field("split", pa.int8()),
        pa.field("video", pa.int64()),
        pa.field("key", pa.string()),
    ]
    if num_groups:
        cols.append(pa.field("groups", pa.list_(pa.int8(), num_groups)))
    return pa.schema(cols)


def shard_name(index: int) -> str:
    """Relative path of chunk ``index``'s shard."""
    return f"{SHARD_DIR}/part-{index:05d}.arrow"


def write_shard(
    path: Path, result: ChunkResult, size: int, num_labels: int, num_groups: int
) -> None:
    """Write one chunk atomically (temp file + rename), so a present shard is complete."""
    schema = shard_schema(size, num_labels, num_groups)
    notes = {
        "skipped": result.skipped,
        "excluded": result.excluded,
        "skipped_frames": result.skipped_frames,
    }
    schema = schema.with_metadata({"lssat": json.dumps(notes, sort_keys=True)})
    recs = result.records
    nbytes = size * size * 3
    for r in recs:
        if r.image.shape != (size, size, 3) or r.image.dtype != np.uint8:
            raise ValueError(f"record {r.key!r} has image {r.image.shape} {r.image.dtype}")
    images = pa.array([r.image.tobytes() for r in recs], type=pa.binary(nbytes))
    if num_labels:
        flat = np.asarray([list(r.label) for r in recs], dtype=np.uint8).reshape(-1)
        labels = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.uint8()), num_labels)
    else:
        labels = pa.array([int(r.label) for r in recs], type=pa.int64())
    arrays = [
        images,
        labels,
        pa.array([SPLITS.index(r.split) for r in recs], type=pa.int8()),
        pa.array([int(r.video) for r in recs], type=pa.int64()),
        pa.array([r.key for r in recs], type=pa.string()),
    ]
    if num_groups:
        flat = np.asarray([list(r.groups) for r in recs], dtype=np.int8).reshape(-1)
        arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.int8()), num_groups))
    table = pa.Table.from_arrays(arrays, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        if len(table):
            writer.write_table(table)
    os.replace(tmp, path)


def open_shard(path: Path) -> pa.Table:
    """Memory-map one shard; DataError naming the file when it is missing or corrupt."""
    try:
        source = pa.memory_map(str(path), "r")
        return pa.ipc.open_file(source).read_all()
    except FileNotFoundError:
        raise DataError(f"shard file {path} is missing; prepare the dataset again") from None
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"shard file {path} is corrupt ({exc}); prepare the dataset again"
        ) from None


def shard_notes(table: pa.Table) -> dict[str, Any]:
    """The skipped items / frames recorded in a shard's schema metadata."""
    raw = (table.schema.metadata or {}).get(b"lssat", b"{}")
    return json.loads(raw)


def read_json(path: Path, what: str) -> dict[str, Any]:
    """Load a JSON object; DataError naming the file when missing or malformed."""
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{what} {path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{what} {path} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise DataError(f"{what} {path} must hold a JSON object")
    return value


def write_json(path: Path, value: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


class PreparedDataset:
    """A prepared directory: ``meta`` plus memory-mapped images and in-memory labels.

    ``images(idx)`` gathers uint8 ``[n, S, S, 3]`` without decoding; ``labels`` is ``[N]`` int64
    (``[N, K]`` uint8 for multilabel), ``video`` ``[N]``, ``split`` ``[N]`` int8,
    ``groups`` ``[N, G]`` int8.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(f"prepared dataset {self.path} does not exist or is not a folder")
        self.meta = read_json(self.path / META_FILE, "dataset meta file")
        keys = ("format", "size", "shards", "task", "label_kind", "classes", "groups", "val_split")
        for key in keys:
            if key not in self.meta:
                raise DataError(f"dataset meta file {self.path / META_FILE} lacks key {key!r}")
        if self.meta["format"] != FORMAT or self.meta.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"dataset meta file {self.path / META_FILE} has format "
                f"{self.meta['format']!r} v{self.meta.get('format_version')}; this code reads "
                f"{FORMAT!r} v{FORMAT_VERSION}: prepare the dataset again"
            )
        self.size = int(self.meta["size"])
        self._open()

    def _open(self) -> None:
        size = self.size
        views, labels, splits, videos, groups, keys = [], [], [], [], [], []
        n_groups = len(self.meta["groups"])
        for rel in self.meta["shards"]:
            table = open_shard(self.path / rel)
            expected = pa.binary(size * size * 3)
            if table.schema.field("image").type != expected:
                raise DataError(
                    f"shard file {self.path / rel} holds images of another size than "
                    f"meta.json's {size}; prepare the dataset again"
                )
            for chunk in table.column("image").chunks:
                buf = np.frombuffer(chunk.buffers()[1], dtype=np.uint8)
                start = chunk.offset * size * size * 3
                stop = start + len(chunk) * size * size * 3
                views.append(buf[start:stop].reshape(-1, size, size, 3))
            lab = table.column("label").combine_chunks()
            if pa.types.is_fixed_size_list(lab.type):
                k = lab.type.list_size
                labels.append(lab.flatten().to_numpy().reshape(-1, k))
            else:
                labels.append(lab.to_numpy())
            splits.append(table.column("split").to_numpy())
            videos.append(table.column("video").to_numpy())
            keys.extend(table.column("key").chunks)
            if n_groups:
                g = table.column("groups").combine_chunks()
                groups.append(g.flatten().to_numpy().reshape(-1, n_groups))
            else:
                groups.append(np.zeros((len(table), 0), np.int8))
        self._views = [v for v in views if len(v)]
        self._starts = np.cumsum([0] + [len(v) for v in self._views])
        k = len(self.meta["classes"]) if self.meta["label_kind"] == "multilabel" else 0
        self.labels = _cat(labels, np.uint8, (0, k)) if k else _cat(labels, np.int64)
        self.split = _cat(splits, np.int8)
        self.video = _cat(videos, np.int64)
        self.groups = _cat(groups, np.int8, (0, n_groups))
        self._keys = pa.chunked_array(keys, pa.string())

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])

    @property
    def task(self) -> str:
        return str(self.meta["task"])

    def key(self, i: int) -> str:
        """The source item of row ``i`` (relative path, ``#frame`` for a video frame)."""
        return str(self._keys[int(i)].as_py())

    def indices(self, split: str) -> np.ndarray:
        """Row indices ``[n]`` of one split (empty when the split has no rows)."""
        if split not in SPLITS:
            raise DataError(f"split {split!r} is unknown; allowed: {', '.join(SPLITS)}")
        return np.flatnonzero(self.split == SPLITS.index(split))

    def image(self, i: int) -> np.ndarray:
        """Read-only view uint8 ``[S, S, 3]`` of row ``i`` (memory-mapped, no copy)."""
        shard = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self._views[shard][i - self._starts[shard]]

    def images(self, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        """Gather rows into a new writable uint8 ``[n, S, S, 3]`` array."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((len(idx), self.size, self.size, 3), np.uint8)
        shard = np.searchsorted(self._starts, idx, side="right") - 1
        for s in np.unique(shard):
            sel = np.flatnonzero(shard == s)
            out[sel] = self._views[s][idx[sel] - self._starts[s]]
        return out


def _cat(parts: list[np.ndarray], dtype: Any, empty_shape: tuple[int, ...] = (0,)) -> np.ndarray:
    parts = [p for p in parts if len(p)]
    if not parts:
        return np.zeros(empty_shape, dtype)
    return np.concatenate(parts).astype(dtype, copy=False)


def open_dataset(path: str | Path) -> PreparedDataset:
    """Open a prepared directory (reads ``meta.json``, memory-maps the shards)."""
    return PreparedDataset(path)
