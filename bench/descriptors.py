"""Descriptor speed: torch (whole batch) vs a reference run per image, ratios in one run.

Batch: 256 grey 112x112 crops of scikit-image's photos (camera, astronaut, coffee, chelsea,
rocket, coins, grey via ``lssat.descriptors.to_gray``), on the CPU with 2 threads by default.
Reference: ``skimage.feature.local_binary_pattern`` per image for the LBP rows (``mslbp`` = its
three scales); for the others a plain NumPy implementation per image (written here, vectorised
within an image). Each time is the best of ``--repeats`` runs; ``ref/f64`` and ``ref/f32``
are reference time over torch time for float64 and float32 input, ``cpu`` the same ratio of
process CPU time (steadier when other jobs share the machine). ``f32 diff`` is the fraction of
pixels whose float32 code differs from the reference (0 for float64 LBP, which is bit-exact).

A second table times the LBP rows on the opt-in compiled backend (``set_backend("compiled")``,
one fused ``torch.compile`` kernel, exact in every dtype): ``first s`` is the first call
(compilation, or loading Inductor's on-disk cache), excluded from the best-of times.

    .venv/bin/python bench/descriptors.py [--threads 2] [--repeats 3] [--batch 256]
                                          [--only TEXT] [--backend both|eager|compiled]
"""

from __future__ import annotations

import argparse
import functools
import os
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from skimage import data
from skimage.feature import local_binary_pattern

from lssat.descriptors import backend, compute, to_gray

# ---------------------------------------------------------------------------- NumPy references
RING = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))


def np_ring(img: np.ndarray) -> np.ndarray:
    p = np.pad(img, 1, mode="edge")
    h, w = img.shape
    return np.stack([p[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w] for dr, dc in RING])


def np_kirsch(img: np.ndarray) -> np.ndarray:
    n = np_ring(img)
    three = n + np.roll(n, 1, 0) + np.roll(n, -1, 0)
    return 8 * three - 3 * n.sum(0)


def np_ldp(img: np.ndarray, k: int = 3) -> np.ndarray:
    order = np.argsort(-np.abs(np_kirsch(img)), axis=0, kind="stable")[:k]
    return (1 << order).sum(0).astype(np.float64)


def np_ldn(img: np.ndarray) -> np.ndarray:
    m = np_kirsch(img)
    return (8 * m.argmax(0) + m.argmin(0)).astype(np.float64)


def np_ltp(img: np.ndarray, t: float = 5.0) -> np.ndarray:
    d = np_ring(img) - img
    weights = (1 << np.arange(8)).reshape(8, 1, 1)
    return np.stack([((d >= t) * weights).sum(0), ((d <= -t) * weights).sum(0)]).astype(float)


def np_hog(img: np.ndarray, cell: int = 8, bins: int = 9) -> np.ndarray:
    gx, gy = np.zeros_like(img), np.zeros_like(img)
    gx[:, 1:-1] = img[:, 2:] - img[:, :-2]
    gy[1:-1] = img[2:] - img[:-2]
    mag = np.hypot(gx, gy)
    b = np.minimum((np.arctan2(gy, gx) % np.pi * bins / np.pi).astype(int), bins - 1)
    h, w = img.shape
    hc, wc = -(-h // cell), -(-w // cell)
    hist = np.zeros((bins, hc, wc))
    rows, cols = np.indices(img.shape) // cell
    np.add.at(hist, (b, rows, cols), mag)
    energy = np.pad((hist**2).sum(0), 1)
    block = sum(energy[i : i + hc, j : j + wc] for i in range(3) for j in range(3))
    normed = hist / (np.sqrt(block) + 1e-5)
    return normed.repeat(cell, 1).repeat(cell, 2)[:, :h, :w]


def sk_lbp(P: int, R: float, method: str) -> Callable[[np.ndarray], np.ndarray]:
    return lambda img: local_binary_pattern(img, P, R, method)


def sk_mslbp(img: np.ndarray) -> np.ndarray:
    return np.stack([local_binary_pattern(img, P, R, "uniform") for P, R in MSLBP])


MSLBP = ((8, 1.0), (16, 2.0), (24, 3.0))
COMPILED = ("lbp", "mslbp")  # descriptors with a compiled kernel (lssat/descriptors/fused.py)


def lbp_row(P: int, R: float, method: str) -> tuple:
    """The bench row of ``lbp`` (P, R, method) against skimage on the same setting."""
    label = f"lbp {method} P={P} R={R:g}"
    return label, "lbp", {"P": P, "R": R, "method": method}, "skimage", sk_lbp(P, R, method)


# (label, torch name, params, reference label, reference per image)
ROWS = [
    *(lbp_row(8, 1.0, m) for m in ("uniform", "default", "ror", "nri_uniform", "var")),
    lbp_row(16, 2.0, "uniform"),
    lbp_row(24, 3.0, "uniform"),
    ("mslbp", "mslbp", {}, "skimage x3", sk_mslbp),
    ("ltp t=5", "ltp", {"t": 5.0}, "numpy", np_ltp),
    ("ldp k=3", "ldp", {"k": 3}, "numpy", np_ldp),
    ("ldn", "ldn", {}, "numpy", np_ldn),
    ("hog cell=8 bins=9", "hog", {"cell": 8, "bins": 9}, "numpy", np_hog),
]


# --------------------------------------------------------------------------------- the batch
def batch(n: int, size: int = 112, seed: int = 0) -> np.ndarray:
    """``n`` integer-valued grey crops ``[n, size, size]`` (float64) of scikit-image photos."""
    photos = [data.camera(), data.coins()]
    for rgb in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket()):
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
        photos.append(to_gray(x)[0, 0].numpy())
    rng = np.random.default_rng(seed)
    crops = []
    for k in range(n):
        src = photos[k % len(photos)]
        r = rng.integers(0, src.shape[0] - size + 1)
        c = rng.integers(0, src.shape[1] - size + 1)
        crops.append(src[r : r + size, c : c + size])
    return np.stack(crops).astype(np.float64)


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """(best wall seconds, best CPU seconds, last result) over ``repeats`` runs after a warm-up."""
    result = fn()
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus), result


def mismatch(expected: np.ndarray, got: np.ndarray, continuous: bool) -> float:
    if continuous:
        close = np.isclose(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
        return float(1 - close.mean())
    return float((expected != got).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--only", default="", help="run rows whose label contains this")
    parser.add_argument("--backend", choices=("both", "eager", "compiled"), default="both")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Applying `local_binary_pattern`")
    images = batch(args.batch)
    x64 = torch.from_numpy(images)[:, None]
    x32 = x64.float()
    print(
        f"batch {args.batch}x112x112, torch {torch.__version__}, {args.threads} threads, "
        f"best of {args.repeats}, load average before {os.getloadavg()[0]:.2f}"
    )
    head = (
        f"{'descriptor':26} {'reference':11} {'ref ms':>8} {'f64 ms':>8} {'f32 ms':>8} "
        f"{'ref/f64':>8} {'ref/f32':>8} {'cpu f64':>8} {'cpu f32':>8} {'f32 diff':>9}"
    )
    rows = [row for row in ROWS if args.only in row[0]]
    if args.backend == "compiled":  # only LBP has a compiled kernel: no other reference to time
        rows = [row for row in rows if row[1] in COMPILED]
    refs = {}
    if args.backend != "compiled":
        print(head)
        print("-" * len(head))
    for label, name, params, ref_label, ref in rows:
        ref_wall, ref_cpu, expected = refs[label] = best_time(
            lambda ref=ref: np.stack([ref(im) for im in images]), args.repeats
        )
        if args.backend == "compiled":
            continue
        w64, c64, out64 = best_time(functools.partial(compute, name, x64, **params), args.repeats)
        w32, c32, out32 = best_time(functools.partial(compute, name, x32, **params), args.repeats)
        expected = expected.reshape(out64.shape)
        continuous = name == "hog" or params.get("method") == "var"
        diff64 = mismatch(expected, out64.numpy(), continuous)
        diff32 = mismatch(expected, out32.double().numpy(), continuous)
        note = "" if diff64 == 0 else f"  (f64 diff {diff64:.2%})"
        print(
            f"{label:26} {ref_label:11} {ref_wall * 1e3:8.0f} {w64 * 1e3:8.0f} {w32 * 1e3:8.0f} "
            f"{ref_wall / w64:7.1f}x {ref_wall / w32:7.1f}x {ref_cpu / c64:7.1f}x "
            f"{ref_cpu / c32:7.1f}x {diff32:9.3%}{note}",
            flush=True,
        )
    if args.backend != "eager":
        compiled_table(rows, refs, x64, x32, args.repeats)
    print(f"load average after {os.getloadavg()[0]:.2f}")


def compiled_table(rows: list, refs: dict, x64: torch.Tensor, x32: torch.Tensor, repeats: int):
    """The LBP rows again on the compiled backend (codes must equal the reference)."""
    head = (
        f"{'compiled backend':26} {'reference':11} {'ref ms':>8} {'c64 ms':>8} {'c32 ms':>8} "
        f"{'ref/c64':>8} {'ref/c32':>8} {'first s':>8} {'diff':>9}"
    )
    print()
    print(head)
    print("-" * len(head))
    for label, name, params, ref_label, _ref in rows:
        if name not in COMPILED:
            continue
        ref_wall, _, expected = refs[label]
        with backend("compiled"):
            t0 = time.perf_counter()
            compute(name, x64, **params)  # compiles, or loads Inductor's cache
            first = time.perf_counter() - t0
            w64, _, out64 = best_time(functools.partial(compute, name, x64, **params), repeats)
            w32, _, out32 = best_time(functools.partial(compute, name, x32, **params), repeats)
        expected = expected.reshape(out64.shape)
        continuous = params.get("method") == "var"
        diff = max(
            mismatch(expected, out64.numpy(), continuous),
            mismatch(expected, out32.double().numpy(), continuous),
        )
        print(
            f"{label:26} {ref_label:11} {ref_wall * 1e3:8.0f} {w64 * 1e3:8.0f} {w32 * 1e3:8.0f} "
            f"{ref_wall / w64:7.1f}x {ref_wall / w32:7.1f}x {first:8.1f} {diff:9.3%}",
            flush=True,
        )


if __name__ == "__main__":
    main()
