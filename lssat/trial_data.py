"""What one trial trains and evaluates on: two torch Datasets plus the dataset's meta.

Item contract (every Dataset handed to ``run_trial`` yields dicts like this):

- ``image``:  uint8 ``[3, S, S]`` (S = config.img_size), already augmented for training
- ``label``:  int64 ``[]`` (binary / multiclass) or float32 ``[K]`` in {0, 1} (multilabel)
- ``video``:  int64 ``[]`` video index for video-level metrics, -1 when there is none
- ``groups``: int64 ``[G]`` demographic group values (G = len(meta["groups"])), -1 = unknown

``meta`` keys used by the engine: ``task``, ``label_kind`` ("binary" | "multiclass" |
"multilabel"), ``classes`` (names; for multilabel the attribute names), ``groups`` (names of the
group columns, may be empty).

``extra`` (from ``lssat.data.load_trial_data``): ``dataset``, ``dataset_hash``, ``val_set`` (the
fingerprint of the validation rows) and ``val_is_test``, which ``run_trial`` reports every
epoch. ``test`` is for the final stage only; the training engine never reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import Dataset


@dataclass
class TrialData:
    """Train and validation sets (and optionally test) for one trial."""

    train: Dataset
    val: Dataset
    meta: dict[str, Any]
    test: Dataset | None = None
    extra: dict[str, Any] = field(default_factory=dict)
