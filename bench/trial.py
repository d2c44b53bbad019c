"""Benchmark one L-SSAT training step against the primary-only step, in the same run.

For each backbone and masked-pass input (``mask_input`` ``rgb``, then ``descriptor``):
samples/s of the full L-SSAT step (masked pass + decoder + full pass + backward + AdamW) and of
the primary-only step (``aux_weight = 0``: no masked pass), their ratio (goal for the tiny ViT
at mask ratio 0.75 with RGB input: <= 1.6x; the ``descriptor`` rows are reported, not held to
it), and the share of the L-SSAT step spent computing descriptors (grey + descriptor +
encoding of the target, plus the visible-only descriptor input for ``descriptor`` rows; goal
<= 5 %). Steps of the two variants are interleaved and medians taken, so a noisy, shared
machine affects both alike.

    python bench/trial.py          # tiny ViT and resnet18, 64 px, batch 32, 1 CPU thread
    python bench/trial.py --device cuda --batch 128 --steps 30
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lssat.config import TrialConfig
from lssat.masking import random_masking
from lssat.model import build


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step_fn(config: TrialConfig, device: torch.device, batch: dict):
    torch.manual_seed(config.seed)
    model = build(config).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dtype = torch.bfloat16 if device.type == "cuda" else None

    def step() -> float:
        _sync(device)
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(batch)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        _sync(device)
        return time.perf_counter() - t

    return model, step


def _descriptor_time(model, images: torch.Tensor, device: torch.device) -> float:
    """Seconds spent on descriptors in one L-SSAT step: the target's, and the masked input's."""
    mask = random_masking(images.shape[0], model.num_patches, model.config.mask_ratio, device)
    _sync(device)
    t = time.perf_counter()
    x = model.prepare(images, True)
    model.target(x)
    if model.config.mask_input == "descriptor":
        model.visible_descriptor(images, mask.mask)
    _sync(device)
    return time.perf_counter() - t


def bench(
    backbone: str, mask_input: str, args: argparse.Namespace, device: torch.device
) -> dict[str, float]:
    base = dict(
        backbone=backbone, img_size=args.size, patch_size=args.patch, mask_ratio=args.mask_ratio,
        descriptor=args.descriptor, encoding=args.encoding, decoder_dim=128, decoder_depth=2,
        mask_input=mask_input,
    )  # fmt: skip
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch, 3, args.size, args.size), dtype=torch.uint8,
                           generator=g)  # fmt: skip
    batch = {"image": images.to(device), "label": torch.randint(0, 2, (args.batch,)).to(device)}
    lssat_model, lssat_step = _step_fn(TrialConfig(**base, aux_weight=0.5), device, batch)
    _, plain_step = _step_fn(TrialConfig(**base, aux_weight=0.0), device, batch)
    for _ in range(args.warmup):
        lssat_step(), plain_step()
    t_lssat, t_plain, t_desc = [], [], []
    for _ in range(args.steps):
        t_lssat.append(lssat_step())
        t_plain.append(plain_step())
        with torch.no_grad():
            t_desc.append(_descriptor_time(lssat_model, batch["image"], device))
    lssat, plain, desc = (statistics.median(v) for v in (t_lssat, t_plain, t_desc))
    return {
        "lssat_sps": args.batch / lssat,
        "plain_sps": args.batch / plain,
        "ratio": lssat / plain,
        "desc_share": desc / lssat,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbones", nargs="+", default=["vit_tiny_patch16_224", "resnet18"])
    p.add_argument("--mask-inputs", nargs="+", default=["rgb", "descriptor"])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--patch", type=int, default=16)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--mask-ratio", type=float, default=0.75)
    p.add_argument("--descriptor", default="ldp")
    p.add_argument("--encoding", default="hist")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"device {device}, {args.threads} threads, {args.size} px, patch {args.patch}, batch "
        f"{args.batch}, mask ratio {args.mask_ratio}, descriptor {args.descriptor}/"
        f"{args.encoding}, median of {args.steps} interleaved steps"
    )
    print(
        f"{'backbone':24} {'mask_input':10} {'L-SSAT/s':>9} {'primary/s':>9} {'ratio':>6} "
        f"{'desc share':>10}"
    )
    for mask_input in args.mask_inputs:
        for name in args.backbones:
            r = bench(name, mask_input, args, device)
            print(
                f"{name:24} {mask_input:10} {r['lssat_sps']:9.1f} {r['plain_sps']:9.1f} "
                f"{r['ratio']:5.2f}x {100 * r['desc_share']:9.1f}%",
                flush=True,
            )


if __name__ == "__main__":
    main()
