"""Face datasets: prepare raw data once into memory-mapped shards, load them for trials.

- ``python -m lssat.data.prepare {faceforensics,celeba,affectnet,folder} --root RAW --out DIR``
- :func:`open_dataset` (a prepared directory), :func:`load_trial_data` (train / val / test
  torch Datasets for one trial), :func:`demo_dataset` (the embedded deepfake demo),
  :func:`resolve_data` (the data a trial uses).
"""

from lssat.data.augment import Augment
from lssat.data.demo import DEMO_VERSION, default_cache_dir, demo_dataset
from lssat.data.loader import ShardDataset, load_trial_data
from lssat.data.resolve import resolve_data
from lssat.data.shards import SPLITS, PreparedDataset, open_dataset

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
