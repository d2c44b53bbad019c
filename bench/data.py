"""Shard loader vs JPEG decoding: images/s of the training input pipeline, in one run.

Both sides read the same face images (``--n`` JPEGs of ``--stored`` px, written once from the
LFW faces shipped with scikit-image) through a torch DataLoader (batch 64, 2 workers) and
produce the same augmented uint8 ``[B, 3, 112, 112]`` batches. Stored at 112 px is the
recommended use (prepare at the training size); 224 px shows the cost of resizing too.

- shards: ``python -m lssat.data.prepare folder`` output, memory-mapped, ``ShardDataset``
  (random resized crop, flip, colour jitter on uint8 arrays, no decoding);
- reference: PIL ``Image.open`` + torchvision ``RandomResizedCrop``, ``RandomHorizontalFlip``,
  ``ColorJitter``, ``PILToTensor`` (the usual ImageFolder pipeline).

Also the evaluation path (resize only). Each pipeline is timed ``--repeats`` times, alternating,
best run kept; the first batch (worker start-up) is not timed.

    .venv/bin/python bench/data.py [--n 1024] [--epochs 2] [--stored 112,224] [--size 112]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lssat.data import Augment, ShardDataset, open_dataset
from lssat.data import testing as T
from lssat.data.pipeline import prepare
from lssat.data.sources.folder import FolderSource


class JpegDataset(Dataset):
    """The reference: decode each JPEG with PIL, transform with torchvision."""

    def __init__(self, files: list[Path], labels: list[int], size: int, train: bool):
        from torchvision import transforms as tv

        self.files, self.labels = files, labels
        aug = Augment()
        if train:
            self.transform = tv.Compose([
                tv.RandomResizedCrop(size, scale=aug.scale, ratio=aug.ratio),
                tv.RandomHorizontalFlip(aug.flip),
                tv.ColorJitter(aug.brightness, aug.contrast, aug.saturation),
                tv.PILToTensor(),
            ])  # fmt: skip
        else:
            self.transform = tv.Compose([tv.Resize((size, size)), tv.PILToTensor()])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from PIL import Image

        with Image.open(self.files[i]) as im:
            image = self.transform(im.convert("RGB"))
        return {
            "image": image,
            "label": torch.tensor(self.labels[i]),
            "video": torch.tensor(-1),
            "groups": torch.zeros(0, dtype=torch.int64),
        }


def images_per_s(ds: Dataset, batch: int, workers: int, epochs: int) -> float:
    """Images/s over ``epochs`` passes, after the first batch (worker start-up excluded)."""
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0)  # fmt: skip
    it = iter(loader)
    first = next(it)
    assert first["image"].dtype == torch.uint8
    start, seen = time.perf_counter(), 0
    for b in it:
        seen += len(b["image"])
    for _ in range(epochs - 1):
        for b in loader:
            seen += len(b["image"])
    return seen / (time.perf_counter() - start)


def run(n: int, stored: int, args: argparse.Namespace) -> None:
    """Write ``n`` JPEGs of ``stored`` px, prepare them, time both pipelines, print."""
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        root = Path(tmp) / "raw"
        for i in range(n):
            scene = T.face_scene(i, stored, stored, int(stored * 0.8))
            T.write_image(root / f"class{i % 2}" / f"{i:05d}.jpg", scene, quality=90)
        t0 = time.perf_counter()
        source = FolderSource(root, size=stored, val_fraction=0.0, test_fraction=0.0)
        prepare(source, Path(tmp) / "shards", progress=False)
        prep_s = time.perf_counter() - t0
        data = open_dataset(Path(tmp) / "shards")
        files = [root / data.key(i) for i in range(len(data))]
        labels = [int(v) for v in data.labels]
        idx = np.arange(len(data))
        pipelines = {
            "train": (ShardDataset(data, idx, args.size, Augment()),
                      JpegDataset(files, labels, args.size, True)),
            "eval": (ShardDataset(data, idx, args.size, None),
                     JpegDataset(files, labels, args.size, False)),
        }  # fmt: skip
        jpeg_mb = sum(f.stat().st_size for f in files) / 2**20
        shard_mb = sum((Path(tmp) / "shards" / s).stat().st_size for s in data.meta["shards"])
        print(
            f"{len(data)} faces stored at {stored} px: JPEG {jpeg_mb:.1f} MiB, shards "
            f"{shard_mb / 2**20:.1f} MiB (prepare {prep_s:.1f} s); batch {args.batch}, "
            f"{args.workers} workers, output {args.size} px, best of {args.repeats}"
        )
        for mode, (shard_ds, jpeg_ds) in pipelines.items():
            best = {"shards": 0.0, "jpeg": 0.0}
            for _ in range(args.repeats):
                for name, ds in (("jpeg", jpeg_ds), ("shards", shard_ds)):
                    rate = images_per_s(ds, args.batch, args.workers, args.epochs)
                    best[name] = max(best[name], rate)
            print(
                f"  {mode:5s}: shard loader {best['shards']:7.0f} img/s | PIL+torchvision JPEG "
                f"{best['jpeg']:6.0f} img/s | ratio {best['shards'] / best['jpeg']:5.1f}x"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1024, help="images")
    p.add_argument("--stored", default="112,224", help="JPEG / shard sides in px, comma list")
    p.add_argument("--size", type=int, default=112, help="training image side in px")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    for stored in (int(v) for v in args.stored.split(",")):
        run(args.n, stored, args)


if __name__ == "__main__":
    main()
