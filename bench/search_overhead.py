"""What the search costs on top of a bare ``run_trial`` (same config, same CPU, one run).

Reference: ``lssat.train.run_trial`` called directly in this process (one torch thread).
Measured: the same fixed config run N times by ``python -m search.run`` (Ray Tune + Optuna +
Recorder, one trial at a time, 1 CPU per trial, actors reused, ASHA never stopping).

Prints
- throughput ratio: mean training samples/s inside the search / bare (goal >= 0.95);
- fixed overhead per trial in seconds: (trial wall time - its epochs' time) minus the same for the
  bare run, plus the idle gap before the next trial; for the first trial (fresh Ray actor) and the
  median of the reused-actor trials (goal <= 3 s);
- the search's own start-up (Ray start, Tune set-up) once per search, for scale.

Throughput counts epochs 2.. of each run (the first epoch warms caches). The bare run goes
before and after the search and the two are averaged, so a drift in machine load shows up as a
before/after difference instead of a bogus ratio.

    python bench/search_overhead.py [--trials 4] [--epochs 3] [--backbone resnet18]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# a Ray worker holding 1 CPU runs with OMP_NUM_THREADS=1; the bare reference gets the same
os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("MKL_NUM_THREADS", "1")


def _fixed(args: argparse.Namespace) -> dict[str, object]:
    """The one trial config both runs use (the search's ``fixed``, the bare run's config)."""
    return {
        "backbone": args.backbone, "img_size": args.img, "patch_size": 8, "batch_size": 32,
        "epochs": args.epochs, "train_subset": args.train, "val_subset": args.val,
        "aux_weight": args.aux, "decoder_dim": 64, "decoder_depth": 1, "checkpoint_every": 1,
        "seed": 0,
    }  # fmt: skip


def _space(args: argparse.Namespace) -> str:
    import yaml

    return yaml.safe_dump(
        {
            "task": "deepfake",
            "trials": args.trials,
            "scheduler": {"grace_period": args.epochs, "reduction_factor": 2},
            "fixed": _fixed(args),
            "params": {},
        },
        sort_keys=False,
    )


def _config(args: argparse.Namespace):
    from lssat.config import TrialConfig

    return TrialConfig.from_dict({"task": "deepfake", **_fixed(args)})


def bare(args: argparse.Namespace, data: Path) -> dict[str, float]:
    """One warm-up epoch, then the measured run; returns samples/s and fixed cost."""
    import torch

    from lssat.train import run_trial

    torch.set_num_threads(1)
    cfg = _config(args)
    run_trial(cfg.replace(epochs=1), data, lambda m, c: None)  # imports, caches, allocator
    rows: list[dict] = []
    t0 = time.perf_counter()
    run_trial(cfg, data, lambda m, c: rows.append(dict(m)))
    wall = time.perf_counter() - t0
    epochs = sum(r["epoch_time_s"] for r in rows)
    return {
        "samples_per_s": statistics.mean(r["samples_per_s"] for r in rows[1:] or rows),
        "best": max(r["samples_per_s"] for r in rows[1:] or rows),
        "wall": wall,
        "fixed": wall - epochs,
    }


def search(args: argparse.Namespace, data: Path, tmp: Path) -> tuple[list[dict], float]:
    """Run the CLI; returns per-trial rows (with their epochs) and its total wall time."""
    from search import results

    (tmp / "bench.yaml").write_text(_space(args))
    cmd = [sys.executable, "-m", "search.run", "--task", "deepfake", "--space",
           str(tmp / "bench.yaml"), "--data", str(data), "--results", str(tmp / "results"),
           "--name", "bench", "--max-concurrent", "1", "--cpus-per-trial", "1",
           "--no-dashboard"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"search failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    exp = tmp / "results" / "deepfake" / "bench"
    trials = results.read_trials(exp).sort_values("started_at")
    epochs = results.read_epochs(exp)
    rows = []
    for rec in trials.to_dict("records"):
        mine = epochs[epochs["trial_id"] == rec["trial_id"]].sort_values("epoch")
        rec["epoch_time_s"] = float(mine["epoch_time_s"].sum())
        rec["speeds"] = list(mine["samples_per_s"])
        rows.append(rec)
    return rows, total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--img", type=int, default=32)
    p.add_argument("--train", type=int, default=32, help="train videos")
    p.add_argument("--val", type=int, default=8, help="val videos")
    p.add_argument("--aux", type=float, default=0.0)
    args = p.parse_args()
    from lssat.data import demo_dataset

    data = demo_dataset()
    print(f"config: {args.backbone} {args.img}px, {args.epochs} epochs x {args.train} train / "
          f"{args.val} val videos, aux_weight {args.aux}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        # bare runs before and after the search, so a change in machine load hits both sides
        before = bare(args, data)
        rows, total = search(args, data, Path(tmp))
        after = bare(args, data)
    ref = {k: (before[k] + after[k]) / 2 for k in before}
    speeds = [s for r in rows for s in (r["speeds"][1:] or r["speeds"])]
    ratio = statistics.mean(speeds) / ref["samples_per_s"]
    best = max(speeds) / max(before["best"], after["best"])
    starts = [datetime.fromisoformat(r["started_at"]).timestamp() for r in rows]
    ends = [datetime.fromisoformat(r["ended_at"]).timestamp() for r in rows]
    overhead = []
    for i, r in enumerate(rows):
        gap = starts[i + 1] - ends[i] if i + 1 < len(rows) else 0.0
        overhead.append(r["wall_time_s"] - r["epoch_time_s"] - ref["fixed"] + max(gap, 0.0))
    in_trials = sum(r["wall_time_s"] for r in rows) + sum(
        max(starts[i + 1] - ends[i], 0.0) for i in range(len(rows) - 1)
    )
    print(f"bare run_trial:   {ref['samples_per_s']:.1f} samples/s (before "
          f"{before['samples_per_s']:.1f}, after {after['samples_per_s']:.1f}), "
          f"{ref['wall']:.1f} s, {ref['fixed']:.1f} s of it outside epochs")  # fmt: skip
    per_trial = ", ".join(f"{statistics.mean(r['speeds'][1:] or r['speeds']):.1f}" for r in rows)
    print(f"inside search:    {statistics.mean(speeds):.1f} samples/s ({per_trial} per trial)")
    print(f"throughput ratio: {ratio:.3f} of means, {best:.3f} of best epochs (goal >= 0.95)")
    print(f"fixed overhead per trial: first (new actor) {overhead[0]:.2f} s, reused actors "
          f"median {statistics.median(overhead[1:] or overhead):.2f} s (goal <= 3 s)")  # fmt: skip
    print(f"search start-up and shut-down (Ray, Tune): {total - in_trials:.1f} s once per search")


if __name__ == "__main__":
    main()
