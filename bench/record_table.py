"""Record a large learning-curve table in one process, one configuration after another.

    python bench/record_table.py bench/curves/grid_sbi_1k.yaml --out bench/curves/sbi_1k
    python bench/record_table.py GRID --out DIR --seed-check 20      # + 20 configs x 2 seeds
    python bench/record_table.py GRID --out DIR --shard 0/2          # half of the grid

Every grid point of the space file (``sampler: {name: grid}``, ``scheduler: none``) is
trained to the space's full epoch budget with ``lssat.train.run_trial``, with no Ray and no
early stopping, and written as it ends: ``DIR/trials/tNNNNN.parquet`` and
``DIR/epochs/tNNNNN.parquet`` in the results format (``search.replay`` reads the folder like
a search's), plus ``DIR/space.yaml``. Trial ``number`` is the configuration's index in
``grid_points()`` order and its seed is ``number`` (as ``search.run`` seeds trial i with
seed + i). Resumable: a configuration whose trial file exists is skipped, so stop it any time
and run the same command again. ``--seed-check N`` then records N configurations (every
grid size / N-th point) again with seed + 100,000 under ``DIR/seeds/``: the seed-to-seed
spread that the table's spread across configurations is compared with
(``bench/table_signal.py``). Run it at nice 19 on one core (``bench/record_curves.sh``
does), with OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

SEED_OFFSET = 100_000


def _row(space: Any, number: int, params: dict[str, Any], values: list[float],
         times: list[float], status: str, error: str | None, seed: int) -> dict[str, Any]:
    from search import results

    cfg = space.config(params, seed=seed)
    return {
        "task": space.task,
        "experiment": "table",
        "trial_id": f"t{number:05d}",
        "number": number,
        "status": status,
        "stop_reason": "completed" if status == "COMPLETE" else "error",
        "error": error,
        "metric": space.metric,
        "mode": space.mode,
        "final_value": float(values[-1]) if values else None,
        "epochs_run": len(values),
        "wall_time_s": float(sum(times)),
        "params": dict(params),
        **results.config_columns(cfg),
    }


def record_one(space: Any, data_path: Path, out: Path, number: int, params: dict[str, Any],
               seed: int) -> str:
    """Train one configuration to the full budget and write its trial and epoch rows."""
    from lssat.config import TrialConfig
    from lssat.data import load_trial_data
    from lssat.train import run_trial
    from search import results

    cfg = TrialConfig.from_dict(space.config(params, seed=seed))
    values: list[float] = []
    times: list[float] = []
    rows: list[dict[str, Any]] = []
    clock = [time.perf_counter()]

    def report(metrics: dict[str, Any], _ckpt: Any) -> None:
        now = time.perf_counter()
        v = metrics.get(space.metric)
        values.append(float(v) if v is not None else math.nan)
        times.append(now - clock[0])
        rows.append({"epoch": int(metrics.get("epoch", len(values))), space.metric: values[-1],
                     "epoch_time_s": times[-1],
                     **{k: float(metrics[k]) for k in ("train_loss", "loss_primary", "loss_aux")
                        if isinstance(metrics.get(k), int | float)}})
        clock[0] = time.perf_counter()

    status, error = "COMPLETE", None
    try:
        data = load_trial_data(data_path, cfg)
        clock[0] = time.perf_counter()
        run_trial(cfg, data, report)
    except Exception as exc:  # a configuration that cannot train is a FAIL row, not a stop
        status, error = "FAIL", f"{type(exc).__name__}: {exc}"
    ident = {"task": space.task, "experiment": "table", "trial_id": f"t{number:05d}",
             "number": number}
    if rows:
        results.write_epochs(out, ident, rows)
    results.write_trial(out, _row(space, number, params, values, times, status, error, seed))
    return status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/record_table.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grid", help="grid space file (sampler: grid, scheduler: none, a 'data' key)")
    p.add_argument("--out", required=True, help="table folder to write (resumed when it exists)")
    p.add_argument("--data", help="dataset (default: the space file's 'data' comment key)")
    p.add_argument("--seed-check", type=int, default=0, metavar="N",
                   help="then record N configurations again with another seed under OUT/seeds")
    p.add_argument("--shard", default="0/1", help="I/N: record every N-th point from I")
    p.add_argument("--limit", type=int, default=0, help="stop after this many new trials")
    args = p.parse_args(argv)

    import yaml

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from lssat.data import resolve_data
    from search.optimize.space import parse_space

    raw = yaml.safe_load(Path(args.grid).read_text())
    data_spec = args.data or raw.pop("data", None)
    raw.pop("data", None)
    if not data_spec:
        p.error(f"{args.grid} has no 'data' key; give --data")
    space = parse_space(raw, args.grid)
    if space.sampler_name != "grid" or space.early_stopping:
        p.error(f"{args.grid}: a table needs sampler: {{name: grid}} and scheduler: none")
    i, n = (int(x) for x in args.shard.split("/"))
    data_path = resolve_data(data_spec, space.task)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space.dump(out / "space.yaml")
    (out / "DATA").write_text(f"{data_spec}\n")
    points = space.grid_points()
    todo = [k for k in range(i, len(points), n)
            if not (out / "trials" / f"t{k:05d}.parquet").exists()]
    print(f"table {out}: {len(points)} configurations x {space.epochs} epochs on {data_spec}; "
          f"{len(points) - len(todo)} recorded (shard {i}/{n} has {len(todo)} to go)", flush=True)
    start, done = time.time(), 0
    for k in todo:
        status = record_one(space, data_path, out, k, points[k], seed=k)
        done += 1
        if done % 10 == 0 or status != "COMPLETE":
            rate = (time.time() - start) / done
            print(f"  #{k} {status}; {done}/{len(todo)} in {time.time() - start:.0f} s, "
                  f"about {rate * (len(todo) - done) / 60:.0f} min to go", flush=True)
        if args.limit and done >= args.limit:
            return 0
    if args.seed_check and i == 0:
        seeds = out / "seeds"
        step = max(1, len(points) // args.seed_check)
        for k in range(0, len(points), step)[: args.seed_check]:
            if not (seeds / "trials" / f"t{k:05d}.parquet").exists():
                record_one(space, data_path, seeds, k, points[k], seed=k + SEED_OFFSET)
        print(f"seed check: {args.seed_check} configurations again under {seeds}", flush=True)
    print(f"table {out}: done", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
