"""Warm start measured on the recorded tables: ``python bench/warm_start.py``.

For every ordered pair of recorded tables (source -> target; default the four in
``bench/curves``: 4 x 3 pairs) it replays the target's search cold and warm-started from the
source (``search.replay`` with ``search.run --warm-start``'s own plan: the source's top-k
configurations enqueued first, its values as TPE's rank-normalised prior) and prints the cost to
reach the target grid's top 5 % (median over seeds, fraction of the grid's epochs), the speed-up
cold / warm, and Kendall's tau between the two tables' rankings of their shared
configurations. Goal (issue 17): >= 1.5x faster when tau > 0.5, never more than 1.1x slower
otherwise. Writes ``warm_start.csv`` (one row per pair) to ``--out``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search import replay  # noqa: E402

FAST, SLOW = 1.5, 1.1  # the goal's thresholds
TAU = 0.5


def goal(tau: float, speedup: float) -> str:
    """'yes' / 'NO' against the issue's goal for this pair."""
    if not math.isfinite(speedup):
        return "n/a"
    if tau > TAU:
        return "yes" if speedup >= FAST else "NO"
    return "yes" if speedup >= 1 / SLOW else "NO"


def median_reach(traces: list[replay.Trace], grid: int) -> float:
    """Median fraction of the grid's epochs to reach the top set (inf: not in most seeds)."""
    return replay._q([t.reach_epochs / grid for t in traces], 50)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/warm_start.py", description=__doc__)
    p.add_argument("--tables", default="sbi,swap,faces,digits", help="tables in bench/curves")
    p.add_argument("--root", default=str(Path(__file__).resolve().parent / "curves"))
    p.add_argument("--searcher", default="tpe_asha", help="replay searcher (default: tpe_asha)")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--k", type=int, default=5, help="--warm-start-k (default: 5)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--top", type=float, default=0.05)
    p.add_argument("--grace-period", type=int, help="override ASHA's grace period")
    p.add_argument("--reduction-factor", type=int, help="override ASHA's reduction factor")
    p.add_argument("--out", default="results/bench")
    args = p.parse_args(argv)
    t0 = time.time()
    names = [n.strip() for n in args.tables.split(",") if n.strip()]
    tables = {n: replay.load_table(Path(args.root) / n) for n in names}
    rows = []
    cold: dict[str, float] = {}
    for tgt, table in tables.items():
        settings = replay.settings_for(Path(table.path), _no_flags(args))
        traces = replay.replay(table, [args.searcher], args.seeds, args.concurrency, args.top,
                               settings)  # fmt: skip
        cold[tgt] = median_reach(traces, table.grid_epochs)
        for src, source in tables.items():
            if src == tgt:
                continue
            plan = replay.warm_plan(table, source, args.k)
            warm = replay.replay(table, [args.searcher], args.seeds, args.concurrency, args.top,
                                 settings, plan)  # fmt: skip
            w = median_reach(warm, table.grid_epochs)
            tau = replay.tables_tau(table, source)
            c = cold[tgt]
            speedup = (min(c, 1.0) / min(w, 1.0)) if w > 0 else math.inf
            rows.append({"source": src, "target": tgt, "tau": tau, "cold": c, "warm": w,
                         "speedup": speedup, "goal": goal(tau, speedup),
                         "enqueued": len(plan.enqueue), "prior": len(plan.prior),
                         "searcher": args.searcher, "seeds": args.seeds, "k": args.k})  # fmt: skip
            print(f"  {src:>7} -> {tgt:<7} tau {tau:+.3f}  cold {replay.fmt_reach(c)}  "
                  f"warm {replay.fmt_reach(w)}  {speedup:.2f}x  goal {rows[-1]['goal']}",
                  flush=True)  # fmt: skip
    df = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "warm_start.csv", index=False)
    print(f"\n| source -> target | tau | cold | warm (k={args.k}) | speed-up | goal |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['source']} -> {r['target']} | {r['tau']:+.3f} | {replay.fmt_reach(r['cold'])} "
              f"| {replay.fmt_reach(r['warm'])} | {r['speedup']:.2f}x | {r['goal']} |")  # fmt: skip
    agree = df[df["tau"] > TAU]
    other = df[df["tau"] <= TAU]
    print(
        f"\nwarm start ({args.searcher}, {args.seeds} seeds, k={args.k}): tau > {TAU}: "
        f"{len(agree)} pairs, median speed-up {agree['speedup'].median():.2f}x "
        f"(goal >= {FAST}x met in {(agree['goal'] == 'yes').sum()}); tau <= {TAU}: "
        f"{len(other)} pairs, median {other['speedup'].median():.2f}x, slowest "
        f"{other['speedup'].min():.2f}x (goal >= {1 / SLOW:.2f}x met in "
        f"{(other['goal'] == 'yes').sum()}); {time.time() - t0:.0f} s; wrote {out}/warm_start.csv"
    )
    return 0


def _no_flags(args: argparse.Namespace | None = None) -> replay.ReplayRequest:
    return replay.ReplayRequest(
        experiment="",
        grace_period=getattr(args, "grace_period", None),
        reduction_factor=getattr(args, "reduction_factor", None),
    )


if __name__ == "__main__":
    sys.exit(main())
