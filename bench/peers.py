"""Peer HPO methods on a recorded learning-curve table, on the replay's clock (issue 25, item 3).

Every method searches the same recorded grid (``search.replay.table.load_table``) on the same
simulated clock as ``python -m search.replay``: ``--concurrency`` asynchronous workers (a freed
slot asks for its next configuration at once), each epoch charged its recorded time. Methods:

- ``optuna_tpe_hyperband``: Optuna's TPESampler as ``search.optimize.study.make_sampler`` builds
  it (multivariate, grouped, constant liar) with Optuna's own
  ``HyperbandPruner(min_resource=1, max_resource=epochs)``; each epoch is reported
  (``trial.report``) and ``trial.should_prune()`` asked, as a pruning objective would;
- ``st_asha``, ``st_hyperband`` (``SyncHyperband``), ``st_bohb``, ``st_mobster``, ``st_dyhpo``: Syne
  Tune's baselines with their defaults on its simulator backend over the table as a user
  blackbox (``bench/peers_syne.py``; run in the peers venv when this interpreter lacks
  syne_tune: ``--peers-python``, default ``$LSSAT_PEERS_PYTHON`` or
  ``/work/peers-venv/bin/python``);
- ``ray_bohb``: Ray Tune's ``TuneBOHB`` + ``HyperBandForBOHB`` (needs hpbandster and ConfigSpace;
  the line says why it did not run);
- ``lssat_tpe_asha``, ``lssat_random``: the project's own searchers (``search.replay``'s
  ``simulate``), on the same metric, as reference rows.

Metric (issue 25): the cost, in trained epochs of all trials (stopped ones included) as a
fraction of the grid's epochs, until the incumbent (the best final value among trials that ran
every epoch) is in the grid's top ``--top`` fraction by recorded final value (at least one
configuration, ties included); a seed that does not get there within the grid's epochs (or whose
method stops first) counts 1.0 and ``reached`` False. ``hours``: the simulated clock then.

Outputs in ``--out`` (default ``TABLE_DIR/peers``): ``peers_runs.csv`` (one row per table x
method x seed; rows already there are skipped, so a run can be stopped and started again) and
``peers_summary.csv`` (per table x method: mean with a 95 % percentile-bootstrap interval,
scipy.stats.bootstrap with 10,000 resamples, median, reached share, mean hours). One line per
method: ``peers sbi st_asha: 0.251 [0.226, 0.279] of the grid's epochs, reached 100/100 (12 s)``.

    python bench/peers.py bench/curves/sbi --seeds 100 --top 0.05 --out bench/curves/peers
    python bench/peers.py bench/curves/sbi --methods optuna_tpe_hyperband,st_asha --seeds 10
"""

from __future__ import annotations

import argparse
import heapq
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from search.replay.table import Table, key, load_table  # noqa: E402

ST_METHODS = ("st_asha", "st_hyperband", "st_bohb", "st_mobster", "st_dyhpo")
METHODS = ("optuna_tpe_hyperband", *ST_METHODS, "ray_bohb", "lssat_tpe_asha", "lssat_random")
PEERS_PYTHON = os.environ.get("LSSAT_PEERS_PYTHON", "/work/peers-venv/bin/python")
RUNS, SUMMARY = "peers_runs.csv", "peers_summary.csv"
KEYS = ["table", "method", "seed", "concurrency", "top"]
Event = tuple[float, str, int]  # (clock seconds when the epoch ended, config key, epoch 1..n)


class Unavailable(Exception):
    """A method that cannot run here; the message says why in one sentence."""


@dataclass
class Run:
    """One seed's outcome: ``reach`` the cost fraction (1.0 unreached), the epochs spent, the
    clock then (hours) and why it ended (reached, budget, or the method stopped by itself)."""

    reach: float
    reached: bool
    epochs: int
    hours: float
    end: str


# ------------------------------------------------------------------------------ the metric
def account(table: Table, events: Iterable[Event], top: float, budget: int | None = None) -> Run:
    """The issue's metric from a method's epochs in clock order. Each event is one trained
    epoch (charged whatever the trial does next); a trial that reports its configuration's last
    recorded epoch (a complete, finite recording) has finished and may become the incumbent;
    the run reaches once the incumbent is in ``table.top_set(top)``. Epochs past a failed
    recording's last one were never trained and are skipped. Stops at ``budget`` epochs
    (default: the grid's)."""
    budget = table.grid_epochs if budget is None else budget
    sign, targets = table.sign(), table.top_set(top)
    cut = min(sign * table.configs[k].final for k in targets)
    spent, clock, incumbent = 0, 0.0, -math.inf  # incumbent kept as sign * value
    for clock, k, ep in events:
        cfg = table.configs[k]
        if ep > len(cfg.values):
            continue
        spent += 1
        final = ep == len(cfg.values) == table.epochs and math.isfinite(cfg.final)
        if final:
            incumbent = max(incumbent, sign * cfg.final)
            if incumbent >= cut:
                return Run(spent / table.grid_epochs, True, spent, clock / 3600.0, "reached")
        if spent >= budget:
            return Run(1.0, False, spent, clock / 3600.0, "budget")
    return Run(1.0, False, spent, clock / 3600.0, "stopped")


# --------------------------------------------------------------------- Optuna TPE + Hyperband
def optuna_events(table: Table, seed: int, concurrency: int) -> Iterator[Event]:
    """Optuna TPE (``make_sampler``) + ``HyperbandPruner`` on the replay's asynchronous clock:
    ``concurrency`` trials asked at once; at each epoch's end its recorded value is reported and
    ``should_prune`` asked; a pruned, failed or finished trial frees its slot, which asks the next
    trial at once. Yields every trained epoch; the caller stops iterating when it is done."""
    import optuna
    from optuna.trial import TrialState

    from search.optimize.study import FAILED_CONSTRAINT, make_sampler, optuna_outcome

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(
            study_name=f"peers-{seed}",  # Hyperband's bracket of a trial hashes the study name
            sampler=make_sampler(seed),
            pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=table.epochs),
            direction="maximize" if table.mode == "max" else "minimize",
        )
    heap: list[tuple[float, int, int]] = []  # (clock the epoch ends, trial number, epoch index)
    live: dict[int, tuple[Any, str]] = {}

    def launch(now: float) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = study.ask()
            k = key(table.space.suggest(trial))
        live[trial.number] = (trial, k)
        heapq.heappush(heap, (now + table.configs[k].times[0], trial.number, 0))

    for _ in range(concurrency):
        launch(0.0)
    while heap:
        clock, number, idx = heapq.heappop(heap)
        trial, k = live[number]
        cfg = table.configs[k]
        value = cfg.values[idx]
        yield clock, k, idx + 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if idx + 1 == len(cfg.values):  # the last recorded epoch: finished or failed
                if not cfg.failed and math.isfinite(value):
                    study.tell(trial, value)
                else:  # told as the Recorder does (search.optimize.study)
                    state, worst, violation = optuna_outcome("FAIL", None, table.mode)
                    trial.set_constraint(FAILED_CONSTRAINT, violation)
                    study.tell(trial, worst, state=state)
            else:
                if math.isfinite(value):
                    trial.report(value, idx + 1)
                if not trial.should_prune():
                    heapq.heappush(heap, (clock + cfg.times[idx + 1], number, idx + 1))
                    continue
                study.tell(trial, state=TrialState.PRUNED)
        del live[number]
        launch(clock)


# --------------------------------------------------------------------------------- Syne Tune
def table_spec(table: Table, top: float) -> dict[str, Any]:
    """The table as ``bench/peers_syne.py`` reads it (JSON-able; no project imports there)."""
    return {
        "params": [p.name for p in table.space.params],
        "epochs": table.epochs,
        "metric": table.metric,
        "mode": table.mode,
        "budget": table.grid_epochs,
        "targets": sorted(table.top_set(top)),
        "configs": [
            {"key": k, "params": c.params, "values": [v if math.isfinite(v) else None
             for v in c.values], "times": c.times, "failed": c.failed}
            for k, c in table.configs.items()
        ],
    }  # fmt: skip


def _peers_syne() -> Any:
    spec = importlib.util.spec_from_file_location("peers_syne", ROOT / "bench/peers_syne.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def syne_runs(
    table: Table, method: str, seeds: Sequence[int], concurrency: int, top: float, python: str
) -> Iterator[dict[str, Any]]:
    """``{"seed", "events"}`` (or ``"error"``) per seed from ``bench/peers_syne.py``: in this
    process when syne_tune imports here, else in ``python`` (the peers venv), streamed."""
    spec = table_spec(table, top)
    if importlib.util.find_spec("syne_tune") is not None:
        yield from _peers_syne().runs(spec, method, seeds, concurrency)
        return
    if not Path(python).exists():
        raise Unavailable(
            f"syne_tune is not importable here and the peers venv's python {python} does not "
            "exist (see docs/search.md, 'Peer methods')"
        )
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        path, err = Path(tmp) / "spec.json", Path(tmp) / "stderr.txt"
        path.write_text(json.dumps(spec))
        cmd = [python, str(ROOT / "bench/peers_syne.py"), str(path), "--method", method,
               "--seeds", ",".join(map(str, seeds)), "--concurrency", str(concurrency)]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        env.pop("PYTHONPATH", None)
        with (
            err.open("w") as ferr,
            subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=ferr, text=True, env=env, cwd=tmp
            ) as proc,
        ):
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("{"):
                    yield json.loads(line)
        if proc.returncode:
            tail = err.read_text().strip().splitlines()[-1:] or ["no message"]
            raise Unavailable(f"{Path(python).name} {cmd[1]} exited {proc.returncode}: {tail[0]}")


# ----------------------------------------------------------------------------------- Ray BOHB
def ray_bohb_check() -> None:
    """``Unavailable`` unless Ray's TuneBOHB can be built here (hpbandster + ConfigSpace)."""
    missing = [m for m in ("hpbandster", "ConfigSpace") if importlib.util.find_spec(m) is None]
    if missing:
        raise Unavailable(
            f"{' and '.join(missing)} not importable in this interpreter (Ray's TuneBOHB needs "
            "them; see docs/search.md, 'Peer methods', for why they are not installed)"
        )
    raise Unavailable(
        "hpbandster imports, but driving Ray's HyperBandForBOHB (a pause/resume scheduler that "
        "needs Tune's controller) on the simulated clock is not implemented"
    )


# ---------------------------------------------------------------------------------- running
def lssat_run(table: Table, searcher: str, seed: int, concurrency: int, top: float) -> Run:
    """The project's own searcher (``search.replay.simulate``), read on the same metric."""
    from search.replay.simulate import simulate

    tr = simulate(table, searcher, seed, concurrency, top)
    if math.isinf(tr.reach_epochs):
        last = tr.events[-1] if tr.events else {"cum_epochs": 0, "end": 0.0}
        return Run(1.0, False, int(last["cum_epochs"]), float(last["end"]) / 3600.0, "budget")
    return Run(tr.reach_epochs / table.grid_epochs, True, int(tr.reach_epochs), tr.reach_hours,
               "reached")  # fmt: skip


def method_runs(
    table: Table, method: str, seeds: Sequence[int], concurrency: int, top: float, python: str
) -> Iterator[tuple[int, Run]]:
    """``(seed, Run)`` for each seed; ``Unavailable`` when the method cannot run here."""
    if method == "optuna_tpe_hyperband":
        for seed in seeds:
            yield seed, account(table, optuna_events(table, seed, concurrency), top)
    elif method in ST_METHODS:
        for line in syne_runs(table, method, seeds, concurrency, top, python):
            if "error" in line:
                raise Unavailable(f"seed {line['seed']}: {line['error']}")
            yield int(line["seed"]), account(table, map(tuple, line["events"]), top)
    elif method == "ray_bohb":
        ray_bohb_check()
    elif method in ("lssat_tpe_asha", "lssat_random"):
        for seed in seeds:
            yield seed, lssat_run(table, method.removeprefix("lssat_"), seed, concurrency, top)
    else:
        raise Unavailable(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def bootstrap_ci(x: Sequence[float]) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean (10,000 resamples, fixed seed)."""
    import numpy as np
    from scipy.stats import bootstrap

    arr = np.asarray(x, dtype=float)
    if len(arr) < 2 or np.ptp(arr) == 0:
        return float(arr.mean()), float(arr.mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap((arr,), np.mean, n_resamples=10_000, confidence_level=0.95,
                        method="percentile", rng=np.random.default_rng(0))  # fmt: skip
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per table x method x concurrency x top: mean [95 % CI], median, reached share."""
    rows = []
    runs = runs.drop_duplicates(subset=KEYS, keep="first")  # two sweeps that overlapped
    for (tab, method, conc, top), g in runs.groupby(
        ["table", "method", "concurrency", "top"], sort=False
    ):
        lo, hi = bootstrap_ci(g["reach"].tolist())
        rows.append({
            "table": tab, "method": method, "concurrency": conc, "top": top, "seeds": len(g),
            "mean": g["reach"].mean(), "ci_low": lo, "ci_high": hi,
            "ci": "95% percentile bootstrap of the mean, 10000 resamples",
            "median": g["reach"].median(), "reached": int(g["reached"].sum()),
            "reached_share": g["reached"].mean(), "mean_hours": g["hours"].mean(),
            "wall_s": g["wall_s"].sum(),
        })  # fmt: skip
    return pd.DataFrame(rows)


def line(tab: str, method: str, s: pd.Series, wall: float) -> str:
    return (
        f"peers {tab} {method}: {s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}] of the "
        f"grid's epochs (mean, 95% CI), reached {int(s['reached'])}/{int(s['seeds'])} "
        f"({wall:.0f} s)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("table", help="recorded table folder (e.g. bench/curves/sbi)")
    p.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated subset of {', '.join(METHODS)} (default: all)",
    )
    p.add_argument("--seeds", type=int, default=100, help="seeds 0..N-1 (default: 100)")
    p.add_argument("--concurrency", type=int, default=4, help="workers (default: 4)")
    p.add_argument("--top", type=float, default=0.01, help="target top fraction (default 0.01)")
    p.add_argument("--out", help="output folder (default: TABLE/peers)")
    p.add_argument("--peers-python", default=PEERS_PYTHON,
                   help=f"python of the Syne Tune venv (default: {PEERS_PYTHON})")  # fmt: skip
    a = p.parse_args(argv)
    table = load_table(a.table)
    tab = Path(a.table).resolve().name
    out = Path(a.out or Path(a.table) / "peers")
    out.mkdir(parents=True, exist_ok=True)
    runs_csv = out / RUNS
    runs = pd.read_csv(runs_csv) if runs_csv.exists() else pd.DataFrame(columns=KEYS)
    done = set(zip(*(runs[k].astype(str) for k in KEYS), strict=True))
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    for method in methods:
        todo = [s for s in range(a.seeds)
                if (tab, method, str(s), str(a.concurrency), str(a.top)) not in done]  # fmt: skip
        t0 = time.monotonic()
        new: list[dict[str, Any]] = []
        try:
            last = time.monotonic()
            for seed, run in method_runs(table, method, todo, a.concurrency, a.top,
                                         a.peers_python):  # fmt: skip
                now = time.monotonic()
                row = {"table": tab, "method": method, "seed": seed,
                       "concurrency": a.concurrency, "top": a.top, **asdict(run),
                       "wall_s": round(now - last, 3)}  # fmt: skip
                last = now
                new.append(row)
                pd.DataFrame([row]).to_csv(runs_csv, mode="a", index=False,
                                           header=not runs_csv.exists())  # fmt: skip
        except Unavailable as exc:
            print(f"peers {tab} {method}: not run: {exc}", flush=True)
            if not new:
                continue
        runs = pd.read_csv(runs_csv)
        mine = runs[(runs["table"] == tab) & (runs["method"] == method)
                    & (runs["concurrency"] == a.concurrency) & (runs["top"] == a.top)]  # fmt: skip
        if mine.empty:
            continue
        s = summarize(mine).iloc[0]
        print(line(tab, method, s, time.monotonic() - t0), flush=True)
    if runs_csv.exists():
        summarize(pd.read_csv(runs_csv)).to_csv(out / SUMMARY, index=False, float_format="%.4f")
    return 0


if __name__ == "__main__":
    sys.exit(main())
