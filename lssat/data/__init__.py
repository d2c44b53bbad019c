"""Face datasets: prepare raw data once into memory-mapped shards, load them for trials.

- ``python -m lssat.data.prepare {faceforensics,celeba,affectnet,folder} --root RAW --out DIR``
- :func:`open_dataset` (a prepared directory), :func:`load_trial_data` (train / val / test
  torch Datasets for one trial), :func:`demo_dataset` (the embedded deepfake demo),
  :func:`resolve_data` (the data a trial uses).

The torch-backed names (``Augment``, ``ShardDataset``, ``load_trial_data``) are imported on
first use, so the prepare CLI and its worker processes never load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lssat.data.demo import DEMO_VERSION, default_cache_dir, demo_dataset
from lssat.data.resolve import resolve_data
from lssat.data.shards import SPLITS, PreparedDataset, open_dataset

if TYPE_CHECKING:
    from lssat.data.augment import Augment
    from lssat.data.loader import ShardDataset, load_trial_data

_LAZY = {
    "Augment": "lssat.data.augment",
    "ShardDataset": "lssat.data.loader",
    "load_trial_data": "lssat.data.loader",
}

__all__ = [
    "DEMO_VERSION",
    "SPLITS",
    "Augment",
    "PreparedDataset",
    "ShardDataset",
    "default_cache_dir",
    "demo_dataset",
    "load_trial_data",
    "open_dataset",
    "resolve_data",
]


def __getattr__(name: str) -> Any:
    """PEP 562: import the torch-backed names on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
