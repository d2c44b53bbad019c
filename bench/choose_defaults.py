"""Choose the search's defaults out of sample: leave one table out (issue 25, item 4).

    python bench/choose_defaults.py bench/curves/sbi_1k bench/curves/digits_1k \\
        --grid "n_startup_trials=5,10,20;grace_fraction=0.33,0.5,0.75;reduction_factor=2,3" \\
        --out bench/curves/tuning/loto.csv

Every candidate (each searcher of ``--searchers``, default TPE + ASHA and TPE alone, with the
keys it reads of each ``--grid`` point) is replayed on every table over the TUNING seeds
(``--tune-seeds``, default 100..149) with ``search.replay``'s own simulation, and random
search (without replacement) once per table as the yardstick. For each table H in turn, the
candidate with the lowest mean over the OTHER tables of (its mean cost / random's mean cost) is
chosen, then replayed on H over the REPORTING seeds (``--report-seeds``,
default 0..99, disjoint) beside random search: the held-out figure, mean cost with its 95 %
t interval and the ratio to random with a 95 % bootstrap interval (scipy, resampling each
searcher's seeds). The setting chosen on all tables together is printed last: the candidate for
the code's defaults (``search.execution.asha``, ``search.optimize.study``). Every replay row is
kept in ``--out`` and skipped when run again (resumable). Costs count unreached seeds as the
whole grid, as ``search.replay`` does.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lssat.errors import ConfigError  # noqa: E402
from search.replay import Settings, Table, load_table, simulate  # noqa: E402
from search.replay.figures import mean_ci  # noqa: E402

RANDOM = "random"
SAMPLER_KEYS = ("n_startup_trials",)
SCHEDULER_KEYS = ("grace_fraction", "grace_period", "reduction_factor")


def parse_grid(text: str) -> list[dict[str, Any]]:
    """``"a=1,2;b=0.5"`` -> [{a: 1, b: 0.5}, {a: 2, b: 0.5}]; one sentence on a bad entry."""
    axes: dict[str, list[Any]] = {}
    for part in [p for p in text.split(";") if p.strip()]:
        name, _, values = part.partition("=")
        name = name.strip()
        if name not in SAMPLER_KEYS + SCHEDULER_KEYS or not values.strip():
            raise ConfigError(f"--grid entry {part!r}: use NAME=V1,V2 with NAME one of "
                              f"{', '.join(SAMPLER_KEYS + SCHEDULER_KEYS)}")  # fmt: skip
        try:
            axes[name] = [float(v) if "." in v else int(v) for v in values.split(",")]
        except ValueError:
            raise ConfigError(f"--grid entry {part!r}: values must be numbers") from None
    names = list(axes)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]


def candidates(searchers: Sequence[str], grid: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """(searcher + the grid keys it reads) for each searcher and grid point, without repeats:
    TPE alone reads only the sampler's keys, random + ASHA only the scheduler's."""
    reads = {"tpe_asha": SAMPLER_KEYS + SCHEDULER_KEYS, "tpe": SAMPLER_KEYS,
             "random_asha": SCHEDULER_KEYS}  # fmt: skip
    out: list[dict[str, Any]] = []
    for name in searchers:
        if name not in reads:
            raise ConfigError(f"--searchers entry {name!r}: choose from {', '.join(reads)}")
        for setting in grid:
            c = {"searcher": name, **{k: v for k, v in setting.items() if k in reads[name]}}
            if c not in out:
                out.append(c)
    return out


def settings_of(setting: dict[str, Any]) -> Settings:
    return Settings({k: v for k, v in setting.items() if k in SAMPLER_KEYS},
                    {k: v for k, v in setting.items() if k in SCHEDULER_KEYS})  # fmt: skip


def _range(text: str) -> range:
    a, _, b = text.partition(":")
    return range(int(a), int(b))


def costs(table: Table, searcher: str, setting: dict[str, Any], seeds: Sequence[int],
          top: float, concurrency: int) -> list[float]:
    """Each seed's cost to reach the target (unreached: the whole grid, 1.0)."""
    grid = table.grid_epochs
    out = []
    for seed in seeds:
        t = simulate(table, searcher, seed, concurrency, top, settings_of(setting))
        out.append(min(t.reach_epochs / grid, 1.0))
    return out


class Cache:
    """Replay rows (table, searcher, setting, seed range) -> per-seed costs, kept in a CSV."""

    def __init__(self, path: Path):
        self.path = path
        self.rows = pd.read_csv(path).to_dict("records") if path.is_file() else []

    def get(self, table: Table, searcher: str, setting: dict[str, Any], seeds: range,
            top: float, concurrency: int) -> list[float]:
        key = {"table": Path(table.path).name, "searcher": searcher,
               "setting": json.dumps(setting, sort_keys=True),
               "seeds": f"{seeds.start}:{seeds.stop}", "top": top, "concurrency": concurrency}
        for r in self.rows:
            if all(str(r[k]) == str(v) for k, v in key.items()):
                return json.loads(r["costs"])
        got = costs(table, searcher, setting, seeds, top, concurrency)
        self.rows.append({**key, "mean": float(np.mean(got)), "costs": json.dumps(got)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(self.rows).to_csv(self.path, index=False)
        return got


def ratio_ci(a: Sequence[float], b: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """mean(a) / mean(b) with a 95 % percentile bootstrap interval (independent resamples)."""
    from scipy import stats

    res = stats.bootstrap((np.asarray(a), np.asarray(b)),
                          lambda x, y, axis=-1: np.mean(x, axis=axis) / np.mean(y, axis=axis),
                          method="percentile", n_resamples=2000, vectorized=True,
                          rng=np.random.default_rng(seed))  # fmt: skip
    ci = res.confidence_interval
    return float(np.mean(a) / np.mean(b)), float(ci.low), float(ci.high)


def choose(scores: dict[str, dict[str, float]], tables: Sequence[str]) -> str:
    """The setting (JSON) with the lowest mean over ``tables`` of its cost ratio to random."""
    return min(scores, key=lambda s: (np.mean([scores[s][t] for t in tables]), s))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tables", nargs="+", help="recorded table folders (at least two)")
    p.add_argument("--grid", default="n_startup_trials=5,10,20;grace_fraction=0.33,0.5,0.75;"
                   "reduction_factor=2,3", help="candidate settings, NAME=V1,V2;...")
    p.add_argument("--searchers", default="tpe_asha,tpe",
                   help="searchers to choose from (tpe_asha, tpe, random_asha; default "
                   "tpe_asha,tpe)")  # fmt: skip
    p.add_argument("--tune-seeds", default="100:150", help="seeds to choose on (A:B)")
    p.add_argument("--report-seeds", default="0:100", help="seeds to report on (A:B)")
    p.add_argument("--top", type=float, default=0.01)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--out", default=str(ROOT / "bench" / "curves" / "tuning" / "loto.csv"))
    args = p.parse_args(argv)
    try:
        grid = candidates([s.strip() for s in args.searchers.split(",") if s.strip()],
                          parse_grid(args.grid))
        if len(args.tables) < 2:
            raise ConfigError("leave-one-table-out needs at least two tables")
        tune, report = _range(args.tune_seeds), _range(args.report_seeds)
        if set(tune) & set(report):
            raise ConfigError("--tune-seeds and --report-seeds overlap; choose disjoint ranges")
        tables = {Path(t).name: load_table(t) for t in args.tables}
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cache = Cache(Path(args.out))
    scores: dict[str, dict[str, float]] = {}
    for name, table in tables.items():
        base = np.mean(cache.get(table, RANDOM, {}, tune, args.top, args.concurrency))
        for cand in grid:
            setting = {k: v for k, v in cand.items() if k != "searcher"}
            got = cache.get(table, cand["searcher"], setting, tune, args.top, args.concurrency)
            scores.setdefault(json.dumps(cand, sort_keys=True), {})[name] = (
                float(np.mean(got)) / base
            )
        print(f"tuned on {name}: {len(grid)} candidates x {len(tune)} seeds", flush=True)
    for held, table in tables.items():
        others = [t for t in tables if t != held]
        best = choose(scores, others)
        cand = json.loads(best)
        searcher = cand.pop("searcher")
        ours = cache.get(table, searcher, cand, report, args.top, args.concurrency)
        rnd = cache.get(table, RANDOM, {}, report, args.top, args.concurrency)
        m, lo, hi = mean_ci(ours)
        rm, rlo, rhi = mean_ci(rnd)
        r, rl, rh = ratio_ci(ours, rnd)
        print(f"held out {held}: chosen on {', '.join(others)}: {best}; {searcher} {m:.3f} "
              f"[{lo:.3f}, {hi:.3f}] vs random {rm:.3f} [{rlo:.3f}, {rhi:.3f}]; ratio "
              f"{r:.2f} [{rl:.2f}, {rh:.2f}] (seeds {args.report_seeds})", flush=True)
    print(f"chosen on every table: {choose(scores, list(tables))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
