"""Tune the search's defaults (TPE start-up trials, ASHA grace period and reduction factor) on a
recorded learning-curve table with ``search.replay``'s own simulation (issue 16, item 4).

For every combination of the listed settings it replays TPE + ASHA (and, once per setting it
depends on, TPE alone, random search and random + ASHA) over ``--seeds`` seeds starting at
``--seed-offset`` (default 100: disjoint from the seeds 0..19 that ``python -m search.replay``
reports, so the reported figures are not the ones the settings were picked on), and appends one
row per searcher x setting to the CSV: median and interquartile range of the fraction of the
grid's epochs spent until the best-so-far is in the grid's top ``--top`` set, and how many seeds
reached it. Rows already in the CSV (same table, searcher, settings, seeds) are skipped, so a
run can be stopped and started again. The replay runs on a simulated clock: CPU load does not
change its figures. Last line: the best TPE + ASHA setting by median (ties: upper quartile,
then seeds reached) and its ratio to random search's median.

    python bench/tune_replay.py bench/curves/sbi --out bench/curves/tuning/sbi.csv
    python bench/tune_replay.py bench/curves/swap --n-startup-trials 10 --grace-period 2 \\
        --reduction-factor 3 --out bench/curves/tuning/confirm.csv     # confirm one setting
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lssat.errors import ConfigError  # noqa: E402
from search.cli import Parser, run_cli  # noqa: E402
from search.replay import Settings, Table, _q, load_table, simulate  # noqa: E402

KEYS = ["table", "searcher", "n_startup_trials", "grace_period", "grace_fraction",
        "reduction_factor", "seeds", "seed_offset", "concurrency", "top"]  # fmt: skip


def _ints(text: str, flag: str, low: int) -> list[int]:
    """``"1,2,3"`` -> [1, 2, 3]; ``ConfigError`` naming the flag otherwise."""
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{flag} is {text!r}; it must be comma-separated integers") from None
    if not out or min(out) < low:
        raise ConfigError(f"{flag} is {text!r}; each value must be at least {low}")
    return out


def _fractions(text: str) -> list[float]:
    """``"0.33,0.5"`` -> [0.33, 0.5] (empty: none); ``ConfigError`` naming the flag otherwise."""
    try:
        out = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--grace-fraction is {text!r}; it must be comma-separated") from None
    if any(not 0 < f <= 1 for f in out):
        raise ConfigError(f"--grace-fraction is {text!r}; each value must lie in (0, 1]")
    return out


def measure(table: Table, searcher: str, settings: Settings, args: argparse.Namespace) -> dict:
    """Median / IQR of the reach fraction over the seeds, for one searcher and setting."""
    seeds = range(args.seed_offset, args.seed_offset + args.seeds)
    reach = [
        simulate(table, searcher, s, args.concurrency, args.top, settings).reach_epochs
        / table.grid_epochs
        for s in seeds
    ]
    return {
        "reached": sum(math.isfinite(r) for r in reach),
        "reach_median": _q(reach, 50),
        "reach_q25": _q(reach, 25),
        "reach_q75": _q(reach, 75),
    }


def run(args: argparse.Namespace) -> int:
    starts = _ints(args.n_startup_trials, "--n-startup-trials", 1)
    periods = _ints(args.grace_period, "--grace-period", 1) if args.grace_period else []
    graces = [(g, 0.0) for g in periods] + [(0, f) for f in _fractions(args.grace_fraction)]
    if not graces:
        raise ConfigError("--grace-period and --grace-fraction are both empty; give one")
    rfs = _ints(args.reduction_factor, "--reduction-factor", 2)
    if args.seeds < 1 or args.concurrency < 1:
        raise ConfigError("--seeds and --concurrency must be at least 1")
    table = load_table(args.experiment)
    name = Path(args.experiment).name
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = pd.read_csv(out) if out.is_file() else pd.DataFrame(columns=KEYS)
    done = {tuple(str(v) for v in r) for r in old[KEYS].itertuples(index=False)}
    # what each searcher depends on: random nothing, tpe its start-up trials, *_asha ASHA's
    jobs: list[tuple[str, int, tuple[int, float], int]] = [("random", 0, (0, 0.0), 0)]
    jobs += [("random_asha", 0, g, rf) for g, rf in itertools.product(graces, rfs)]
    jobs += [("tpe", n, (0, 0.0), 0) for n in starts]
    jobs += [("tpe_asha", *c) for c in itertools.product(starts, graces, rfs)]
    print(f"tune {name}: {len(table.configs)} configurations, {table.grid_epochs} epochs; "
          f"{len(jobs)} settings x {args.seeds} seeds -> {out}", flush=True)  # fmt: skip
    for searcher, n, (g, gf), rf in jobs:
        ident = {"table": name, "searcher": searcher, "n_startup_trials": n, "grace_period": g,
                 "grace_fraction": gf, "reduction_factor": rf, "seeds": args.seeds,
                 "seed_offset": args.seed_offset, "concurrency": args.concurrency,
                 "top": args.top}  # fmt: skip
        if tuple(str(ident[k]) for k in KEYS) in done:
            continue
        grace = {"grace_period": g} if g else {"grace_fraction": gf}
        settings = Settings(
            {"n_startup_trials": n} if n else {},
            {**grace, "reduction_factor": rf} if rf else {},
        )
        row = {**ident, **measure(table, searcher, settings, args)}
        pd.DataFrame([row]).to_csv(out, mode="a", header=not out.is_file(), index=False)
        print(f"  {searcher:<12} n={n:<3} grace={g or gf} rf={rf}: median "
              f"{row['reach_median']:.3f} [{row['reach_q25']:.3f}, {row['reach_q75']:.3f}] "
              f"reached {row['reached']}/{args.seeds}", flush=True)  # fmt: skip
    rows = pd.read_csv(out)
    rows = rows[(rows["table"] == name) & (rows["seeds"] == args.seeds)
                & (rows["seed_offset"] == args.seed_offset)]  # fmt: skip
    ta = rows[rows["searcher"] == "tpe_asha"].sort_values(
        ["reach_median", "reach_q75", "reached"], ascending=[True, True, False]
    )
    print(ta.head(args.show).to_string(index=False))
    rnd = rows[rows["searcher"] == "random"]["reach_median"]
    best = ta.iloc[0]
    base = float(rnd.iloc[0]) if len(rnd) else math.nan
    ratio = best["reach_median"] / base if math.isfinite(base) else math.nan
    grace = best["grace_period"] or f"fraction {best['grace_fraction']:g}"
    print(f"tune {name}: best tpe_asha n_startup_trials {best['n_startup_trials']}, grace "
          f"{grace}, reduction factor {best['reduction_factor']}: "
          f"{best['reach_median']:.3f} of the grid's epochs (median of {args.seeds} seeds), "
          f"{ratio:.2f}x random search's")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python bench/tune_replay.py", description=__doc__.split("\n\n")[0])
    p.add_argument("experiment", help="recorded grid folder (e.g. bench/curves/sbi)")
    p.add_argument("--n-startup-trials", default="3,5,10", help="TPE start-up trials")
    p.add_argument("--grace-period", default="1,2,3", help="ASHA grace periods ('': none)")
    p.add_argument("--grace-fraction", default="", help="ASHA grace_fraction values, e.g. 0.33")
    p.add_argument("--reduction-factor", default="2,3", help="ASHA reduction factors")
    p.add_argument("--seeds", type=int, default=40, help="seeds per setting (default: 40)")
    p.add_argument("--seed-offset", type=int, default=100, help="first seed (default: 100)")
    p.add_argument("--concurrency", type=int, default=4, help="trials at once (default: 4)")
    p.add_argument("--top", type=float, default=0.05, help="target fraction (default: 0.05)")
    p.add_argument("--show", type=int, default=10, help="best settings to print (default 10)")
    p.add_argument("--out", default="bench/curves/tuning/tune.csv", help="CSV to append to")
    return p


if __name__ == "__main__":
    sys.exit(run_cli(build_parser(), run))
