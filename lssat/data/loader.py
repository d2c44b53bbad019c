"""Torch Datasets over prepared shards and ``load_trial_data`` for the training engine.

No image decoding happens here: rows are memory-mapped uint8 crops; training rows get the
augmentation of :mod:`lssat.data.augment`, evaluation rows are only resized.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lssat.data.augment import Augment, augment_image, plain_image
from lssat.data.selection import STREAMS, identity, unit_subset
from lssat.data.shards import PreparedDataset, open_dataset
from lssat.errors import DataError
from lssat.trial_data import TrialData


class ShardDataset(Dataset):
    """Rows ``indices`` of a prepared dataset as items of the ``lssat.trial_data`` contract:

    ``image`` uint8 ``[3, S, S]``, ``label`` int64 ``[]`` (float32 ``[K]`` multilabel),
    ``video`` int64 ``[]`` (-1 = none), ``groups`` int64 ``[G]`` (-1 = unknown).
    """

    def __init__(
        self,
        data: PreparedDataset,
        indices: np.ndarray,
        img_size: int,
        augment: Augment | None = None,
    ):
        self.data = data
        self.indices = np.asarray(indices, dtype=np.int64)
        self.img_size = int(img_size)
        self.augment = augment
        self.rgb = data.meta.get("channels", "rgb") != "grey"
        labels = data.labels[self.indices]
        multilabel = data.meta["label_kind"] == "multilabel"
        self._labels = torch.from_numpy(labels.astype(np.float32 if multilabel else np.int64))
        self._video = torch.from_numpy(data.video[self.indices].astype(np.int64))
        self._groups = torch.from_numpy(data.groups[self.indices].astype(np.int64))

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def videos(self) -> np.ndarray:
        """Video id per item ``[N]`` int64 (-1 = none), without reading any image."""
        return self._video.numpy()

    def _image(self, i: int) -> torch.Tensor:
        hwc = self.data.image(int(self.indices[i]))
        if self.augment is not None:
            return augment_image(hwc, self.img_size, self.augment, self.rgb)
        return plain_image(hwc, self.img_size)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "image": self._image(i),
            "label": self._labels[i].clone(),
            "video": self._video[i].clone(),
            "groups": self._groups[i].clone(),
        }

    def __getitems__(self, batch: list[int]) -> list[dict[str, torch.Tensor]]:
        """A batch of items (DataLoader's batched fetch): one gather, one copy of the labels."""
        pos = np.asarray(batch, dtype=np.int64)
        rows = self.indices[pos]
        if self.augment is None and self.data.size == self.img_size:
            images = torch.from_numpy(self.data.images(rows)).permute(0, 3, 1, 2)
        else:
            images = [self._image(int(i)) for i in pos]  # type: ignore[assignment]
        t = torch.from_numpy(pos)
        labels, video, groups = self._labels[t], self._video[t], self._groups[t]
        return [
            {"image": images[j], "label": labels[j], "video": video[j], "groups": groups[j]}
            for j in range(len(pos))
        ]


def subset(data: PreparedDataset, rows: np.ndarray, n: int, split: str) -> np.ndarray:
    """``n`` whole videos (rows where there are no video ids) of ``rows``, the same for every
    trial and seed (see :mod:`lssat.data.selection`); all rows when n == 0 or n >= units."""
    return unit_subset(rows, data.video[rows], n, STREAMS[split])


def load_trial_data(
    path_or_prepared: str | Path | PreparedDataset, config: Any, augment: Augment | None = None
) -> TrialData:
    """Train (augmented) / val / test datasets for one trial from a prepared dataset.

    Uses ``config.task``, ``img_size``, ``train_subset``, ``val_subset`` (whole videos, or
    rows where there are none; 0 = all). The subsets never depend on ``config.seed``: configs
    that differ only in their seed get identical ``val`` items. Validation uses the ``val``
    split, or ``test`` when there is none (``meta["val_split"]`` says which; ``extra``
    ``val_is_test`` is then True); ``test`` is returned separately only when it is not the
    validation split, and the training engine never reads it. ``extra`` also names what the
    trial is scored on: ``dataset``, ``dataset_hash`` and the ``val_set`` fingerprint.
    """
    data = (
        path_or_prepared
        if isinstance(path_or_prepared, PreparedDataset)
        else open_dataset(path_or_prepared)
    )
    if data.task != config.task:
        raise DataError(
            f"dataset {data.path} holds task {data.task!r}, but the config asks for task "
            f"{config.task!r}"
        )
    train = data.indices("train")
    if not len(train):
        raise DataError(f"dataset {data.path} has no train rows")
    val_split = data.meta["val_split"]  # "val", "test" (no val rows) or None (neither)
    if val_split is None:
        raise DataError(f"dataset {data.path} has neither val nor test rows to validate on")
    val = data.indices(val_split)
    test = data.indices("test") if val_split == "val" else np.zeros(0, np.int64)
    train = subset(data, train, config.train_subset, "train")
    val = subset(data, val, config.val_subset, "val")
    size = config.img_size
    return TrialData(
        train=ShardDataset(data, train, size, augment or Augment()),
        val=ShardDataset(data, val, size, None),
        test=ShardDataset(data, test, size, None) if len(test) else None,
        meta=trial_meta(data, val_split),
        extra={"path": str(data.path), "val_split": val_split,
               "rows": {"train": len(train), "val": len(val), "test": len(test)},
               **identity(data, val)},
    )  # fmt: skip


def trial_meta(data: PreparedDataset, val_split: str | None = None) -> dict[str, Any]:
    """The dataset's meta for the engine (the per-file skip list stays in meta.json)."""
    meta = {k: v for k, v in data.meta.items() if k != "skipped"}
    meta["skipped"] = {k: v for k, v in data.meta.get("skipped", {}).items() if k != "list"}
    if val_split is not None:
        meta["val_split"] = val_split
    return meta
