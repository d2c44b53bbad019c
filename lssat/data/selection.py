"""Which rows a trial trains and is scored on, and the fingerprints that prove it.

The evaluation protocol (docs/search.md): every trial of a search is scored on one fixed
validation set; the test split is touched only by the final stage.

- Subsets count **units**: a unit is one video (all its frames), or one row where the data
  has no video ids. They are drawn with :data:`SUBSET_SEED`, which never depends on a trial's
  seed, from the sorted unit ids, so every trial, node and ``--resume`` gets the same rows.
- ``dataset_hash``: sha256 of a prepared dataset's content identity (task, label space, crop
  size, source name and options, and every row's key, split, label, video and groups); folder
  paths do not enter it, nor do the paths of split or label files (FF++ ``--splits``, the
  folder source's ``--csv``): what those files say is in every row's split and label.
- ``val_set``: sha256 of ``dataset_hash`` plus the sorted keys of the validation rows
  (independent of paths and of the trial's ``img_size``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from lssat.data.shards import PreparedDataset

SUBSET_SEED = 0  # the seed of every train/val subset; a trial's own seed never enters it
# source options naming where split or label files lie: only whether one was given is hashed
FILE_OPTIONS = ("splits", "csv")
STREAMS = {"train": 0, "val": 1, "test": 2}


def units_of(video: np.ndarray) -> np.ndarray:
    """Unit id per row ``[n]``: the video id, or ``-1 - position`` for rows without one."""
    video = np.asarray(video, dtype=np.int64)
    return np.where(video >= 0, video, -1 - np.arange(len(video), dtype=np.int64))


def unit_subset(rows: np.ndarray, video: np.ndarray, n: int, stream: int) -> np.ndarray:
    """``n`` whole units of ``rows`` (all when ``n`` is 0 or at least their number), sorted.

    ``video`` ``[len(rows)]`` gives each row's video id (-1 = none, then the row is its own
    unit). The draw uses :data:`SUBSET_SEED` and ``stream`` only: the same rows every time.
    """
    rows = np.asarray(rows, dtype=np.int64)
    units = units_of(np.asarray(video)[: len(rows)]) if len(rows) else np.zeros(0, np.int64)
    ids = np.unique(units)
    if n <= 0 or n >= len(ids):
        return rows
    rng = np.random.default_rng([SUBSET_SEED, stream])
    chosen = rng.choice(ids, size=n, replace=False)
    return np.sort(rows[np.isin(units, chosen)])


def dataset_name(data: PreparedDataset) -> str:
    """The prepared dataset's name (its source, e.g. ``faceforensics``, ``demo``)."""
    source = data.meta.get("source") or {}
    return str(source.get("dataset") or data.path.name)


def _keys(data: PreparedDataset, rows: np.ndarray | None = None) -> list[str]:
    keys = data._keys if rows is None else data._keys.take(np.asarray(rows, dtype=np.int64))
    return [str(k) for k in keys.to_pylist()]


def dataset_hash(data: PreparedDataset) -> str:
    """sha256 of the dataset's content identity (computed once per opened dataset)."""
    cached = getattr(data, "_lssat_hash", None)
    if cached is not None:
        return cached
    meta = data.meta
    source = meta.get("source") or {}
    head = {k: meta.get(k) for k in ("task", "label_kind", "classes", "groups", "size", "channels")}
    options = source.get("options")
    if isinstance(options, dict):  # a file's place is not the data: "given", never its path
        options = {k: "given" if k in FILE_OPTIONS and v is not None else v
                   for k, v in options.items()}  # fmt: skip
    head["source"] = {"dataset": source.get("dataset"), "options": options}
    digest = hashlib.sha256(json.dumps(head, sort_keys=True, default=str).encode())
    import pyarrow.compute as pc

    order = pc.sort_indices(data._keys).to_numpy() if len(data) else np.zeros(0, np.int64)
    digest.update("\n".join(_keys(data, order)).encode())
    for column in (data.split, data.labels, data.video, data.groups):
        digest.update(np.ascontiguousarray(np.asarray(column)[order]).tobytes())
    value = digest.hexdigest()
    data._lssat_hash = value  # type: ignore[attr-defined]
    return value


def rows_fingerprint(data: PreparedDataset, rows: Sequence[int] | np.ndarray) -> str:
    """sha256 of ``dataset_hash`` and the sorted keys of ``rows`` (the ``val_set`` column)."""
    digest = hashlib.sha256(dataset_hash(data).encode() + b"\n")
    digest.update("\n".join(sorted(_keys(data, np.asarray(rows)))).encode())
    return digest.hexdigest()


def val_is_test(meta: dict[str, Any]) -> bool:
    """True when validation would use the test split (no val rows, or meta.json says so)."""
    return meta.get("val_split") == "test" or bool(meta.get("val_is_test"))


def identity(data: PreparedDataset, val_rows: np.ndarray) -> dict[str, Any]:
    """The trial-row columns naming what a trial was scored on."""
    return {
        "dataset": dataset_name(data),
        "dataset_hash": dataset_hash(data),
        "val_set": rows_fingerprint(data, val_rows),
        "val_is_test": val_is_test(data.meta),
    }
