"""``load_trial_data``: the item contract, augmentation, subsets, val fallback, workers."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lssat.data import Augment, load_trial_data, open_dataset
from lssat.data import testing as T
from lssat.data.augment import augment_image, colour_matrix
from lssat.data.pipeline import prepare
from lssat.data.sources.affectnet import AffectNetSource
from lssat.data.sources.celeba import CelebASource
from lssat.errors import DataError

NO_COLOUR = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0}


def config(**changes):
    """A TrialConfig (load_trial_data reads task, img_size, seed, train/val_subset)."""
    from lssat.config import TrialConfig

    values = {"task": "deepfake", "img_size": 32, "patch_size": 8, "seed": 0, **changes}
    return TrialConfig.from_dict(values)


def test_item_contract_binary(demo_data: Path) -> None:
    td = load_trial_data(demo_data, config())
    assert td.meta["task"] == "deepfake" and td.meta["label_kind"] == "binary"
    assert td.meta["classes"] == ["real", "fake"] and td.meta["groups"] == ["lighting"]
    assert td.meta["val_split"] == "val" and td.test is not None
    for ds in (td.train, td.val, td.test):
        item = ds[3]
        assert set(item) == {"image", "label", "video", "groups"}
        assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 32, 32)
        assert item["label"].dtype == torch.int64 and item["label"].shape == ()
        assert item["video"].dtype == torch.int64 and item["video"] >= 0
        assert item["groups"].dtype == torch.int64 and item["groups"].shape == (1,)
    data = open_dataset(demo_data)
    assert len(td.train) == len(data.indices("train")) and len(td.val) == len(data.indices("val"))


def test_eval_items_are_the_stored_crops(demo_data: Path) -> None:
    data = open_dataset(demo_data)
    td = load_trial_data(data, config(img_size=data.size, patch_size=16))
    row = int(td.val.indices[5])
    expected = torch.from_numpy(np.array(data.image(row))).permute(2, 0, 1)
    assert torch.equal(td.val[5]["image"], expected)
    assert td.val[5]["label"] == int(data.labels[row])


def test_multilabel_items_and_groups(tmp_path: Path) -> None:
    root = T.make_celeba(tmp_path / "c", n=8, broken=False)
    prepare(CelebASource(root, size=24), tmp_path / "out", progress=False)
    td = load_trial_data(tmp_path / "out", config(task="attributes", img_size=16))
    item = td.train[0]
    assert item["label"].dtype == torch.float32 and item["label"].shape == (40,)
    assert set(item["label"].tolist()) <= {0.0, 1.0}
    assert item["groups"].dtype == torch.int64 and item["groups"].shape == (2,)
    assert td.meta["groups"] == ["Male", "Young"] and item["image"].shape == (3, 16, 16)


def test_val_falls_back_to_test_split(tmp_path: Path) -> None:
    root = T.make_affectnet(tmp_path / "a", broken=False)
    prepare(AffectNetSource(root, size=24, val_fraction=0.0), tmp_path / "out", progress=False)
    td = load_trial_data(tmp_path / "out", config(task="emotion", img_size=16))
    assert td.meta["val_split"] == "test" and td.extra["val_split"] == "test"
    assert td.test is None and len(td.val) == 3
    assert "list" not in td.meta["skipped"]  # the per-file list stays in meta.json


def test_task_mismatch_names_both(demo_data: Path) -> None:
    with pytest.raises(
        DataError, match="holds task 'deepfake', but the config asks for task 'emotion'"
    ):
        load_trial_data(demo_data, config(task="emotion"))


def test_subsets_count_whole_videos_and_ignore_the_seed(demo_data: Path) -> None:
    a = load_trial_data(demo_data, config(train_subset=12, val_subset=5))
    c = load_trial_data(demo_data, config(train_subset=12, val_subset=5, seed=1))
    full = load_trial_data(demo_data, config())
    data = open_dataset(demo_data)
    assert len(np.unique(data.video[a.train.indices])) == 12
    assert len(np.unique(data.video[a.val.indices])) == 5
    assert len(a.val) == 5 * 8  # the demo's videos have 8 frames each: none is cut short
    assert np.array_equal(a.train.indices, c.train.indices)
    assert np.array_equal(a.val.indices, c.val.indices)
    assert set(a.train.indices) <= set(full.train.indices)
    assert set(a.val.indices) <= set(full.val.indices)
    big = load_trial_data(demo_data, config(train_subset=10**6))
    assert len(big.train) == len(full.train)


def test_augmentation_reproducible_and_varied(demo_data: Path) -> None:
    td = load_trial_data(demo_data, config())
    torch.manual_seed(3)
    first = [td.train[i]["image"] for i in range(4)]
    torch.manual_seed(3)
    again = [td.train[i]["image"] for i in range(4)]
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
    views = torch.stack([td.train[0]["image"] for _ in range(6)])
    assert len({v.numpy().tobytes() for v in views}) > 1
    # grey data stays grey: colour jitter never invents colour
    assert torch.equal(views[:, 0], views[:, 1]) and torch.equal(views[:, 1], views[:, 2])


def test_flip_and_crop_are_geometric_only() -> None:
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    same = augment_image(hwc, 20, Augment(scale=(1, 1), ratio=(1, 1), flip=0.0, **NO_COLOUR))
    assert torch.equal(same, torch.from_numpy(hwc).permute(2, 0, 1))
    flipped = augment_image(hwc, 20, Augment(scale=(1, 1), ratio=(1, 1), flip=1.0, **NO_COLOUR))
    assert torch.equal(flipped, torch.from_numpy(hwc[:, ::-1].copy()).permute(2, 0, 1))
    torch.manual_seed(0)
    crop = augment_image(hwc, 10, Augment(scale=(0.25, 0.25), ratio=(1, 1), flip=0.0, **NO_COLOUR))
    assert crop.shape == (3, 10, 10)
    # a 10x10 window, no resize needed: the output is one exact window of the input
    windows = [hwc[y : y + 10, x : x + 10] for y in range(11) for x in range(11)]
    assert any(np.array_equal(crop.permute(1, 2, 0).numpy(), w) for w in windows)


def test_colour_matrix_matches_torchvision() -> None:
    from torchvision.transforms.v2 import functional as F

    rng = np.random.default_rng(1)
    hwc = rng.integers(60, 190, (16, 16, 3), dtype=np.uint8)
    chw = torch.from_numpy(hwc).permute(2, 0, 1).float() / 255
    for b, c, s in [(1.1, 0.9, 1.2), (0.85, 1.15, 0.8), (1.0, 1.0, 1.0)]:
        import cv2

        ours = cv2.transform(hwc, colour_matrix(hwc, b, c, s)).astype(int)
        ref = F.adjust_saturation(F.adjust_contrast(F.adjust_brightness(chw, b), c), s)
        ref = (ref * 255).round().permute(1, 2, 0).numpy().astype(int)
        assert np.abs(ours - ref).max() <= 1, (b, c, s)


def test_dataloader_workers_and_pickling(demo_data: Path) -> None:
    td = load_trial_data(demo_data, config(train_subset=16))
    clone = pickle.loads(pickle.dumps(td.val))
    assert torch.equal(clone[7]["image"], td.val[7]["image"])
    loader = DataLoader(td.train, batch_size=64, num_workers=2, shuffle=True)
    batches = list(loader)
    assert [b["image"].shape for b in batches] == [(64, 3, 32, 32)] * 2
    assert batches[0]["label"].dtype == torch.int64 and batches[0]["groups"].shape == (64, 1)
    assert set(torch.cat([b["label"] for b in batches]).tolist()) == {0, 1}


def test_batched_fetch_equals_single_items(demo_data: Path) -> None:
    td = load_trial_data(demo_data, config(img_size=64, patch_size=16))
    for ds in (td.val, td.train):
        torch.manual_seed(1)
        batch = ds.__getitems__([4, 0, 9])
        torch.manual_seed(1)
        single = [ds[i] for i in (4, 0, 9)]
        for b, s in zip(batch, single, strict=True):
            assert b.keys() == s.keys()
            assert all(torch.equal(b[k], s[k]) and b[k].dtype == s[k].dtype for k in b)
