"""Inference latency of one image, for the ``latency_ms`` search objective (GPU only).

``measure(model, device, dtype, img_size)`` times the full (evaluation) pass on a uint8
``[1, 3, S, S]`` image: ``warmup`` untimed passes (kernel selection, caches), then ``repeats``
timed ones, each fenced by ``torch.cuda.synchronize``; the median in milliseconds. On two busy
CPU cores such a number is noise, so the search offers it only to trials that hold a GPU.
"""

from __future__ import annotations

import statistics
import time
from contextlib import nullcontext
from typing import Any

import torch

WARMUP = 10
REPEATS = 50


def measure(
    model: Any,
    device: torch.device,
    dtype: torch.dtype | None,
    img_size: int,
    warmup: int = WARMUP,
    repeats: int = REPEATS,
) -> dict[str, float]:
    """``{"latency_ms": median, "latency_ms_p90": 90th percentile}`` of single-image passes."""
    image = torch.zeros(1, 3, img_size, img_size, dtype=torch.uint8, device=device)
    cuda = device.type == "cuda"
    amp = nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)
    was_training = model.training
    model.eval()
    times = []
    try:
        with torch.no_grad(), amp:
            for i in range(warmup + repeats):
                if cuda:
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
                model({"image": image})
                if cuda:
                    torch.cuda.synchronize(device)
                if i >= warmup:
                    times.append((time.perf_counter() - t0) * 1e3)
    finally:
        model.train(was_training)
    times.sort()
    return {
        "latency_ms": statistics.median(times),
        "latency_ms_p90": times[min(len(times) - 1, int(0.9 * len(times)))],
    }


def final_eval(img_size: int) -> Any:
    """A ``run_trial`` ``final_eval`` hook: the latency, measured once after the last epoch."""

    def hook(model: Any, device: torch.device, dtype: torch.dtype | None) -> dict[str, float]:
        return measure(model, device, dtype, img_size)

    return hook
