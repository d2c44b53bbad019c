"""``python -m search.replay EXPERIMENT_DIR``: what would the search have cost on a recorded grid?

A recorded grid (``sampler: {name: grid}``, ``scheduler: none``; ``bench/curves/<task>/`` or a
user's own experiment folder) is a tabular benchmark: every configuration's per-epoch metric
values and epoch times are in its Parquet epochs. The replay runs a discrete-event simulation of
an asynchronous search at ``--concurrency`` slots on a simulated clock:

- the proposer is the project's own Optuna sampler (``search.study.make_sampler``: TPE with the
  space's settings, or RandomSampler), asked and told through Optuna's ask/tell over the grid's
  values (the space's parameters with their recorded values as choices, ``when`` kept);
- a proposed configuration is looked up in the table and costs its recorded epoch times; a
  configuration proposed twice is charged twice (the real search would train it again);
- early stopping (``*_asha``) is Ray's own ``ASHAScheduler`` object, built by
  ``search.run.make_scheduler`` with the space's settings and driven on the simulated clock
  (``on_trial_add`` / ``on_trial_result`` / ``on_trial_complete``, as Tune's controller calls
  them); a stopped trial is told PRUNED after its intermediate values, as the Recorder does;
- the incumbent (best-so-far) is the best final value among trials that ran every epoch.

The target is robust to validation noise: any configuration in the grid's top ``--top`` fraction
by recorded final value (at least one; ties included). Cost is counted in trained epochs (all
trials, stopped ones included) as a fraction of the grid's epochs, and in simulated hours (the
clock at ``--concurrency``). Regret is the distance of the incumbent's recorded final value from
the grid's best (before any trial completes: the distance of the grid's worst). A searcher that
does not reach the top set within the grid's cost reports ``1.000+``. Outputs (``--out``, default
``EXPERIMENT_DIR/replay``): ``replay_runs.csv`` (one row per searcher x seed),
``replay_summary.csv`` (median and IQR over seeds), ``replay_curves.csv`` (regret vs cost) and
``replay.png``. Exit codes: 0 done, 2 bad input (one sentence naming it).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from lssat.errors import ConfigError, DataError
from search.cli import Parser, run_cli

SEARCHERS = ("random", "random_asha", "tpe", "tpe_asha")
FRACTIONS = (0.05, 0.1, 0.25)  # regret at 1/20, 1/10, 1/4 of the grid's cost
NEVER = 1e300  # stands for +inf inside percentiles
CURVE_POINTS = 101  # regret-vs-cost samples in replay_curves.csv


# ------------------------------------------------------------------------------ the table
@dataclass
class Config:
    """One recorded configuration: its params and per-epoch (value, seconds)."""

    params: dict[str, Any]
    values: list[float]  # metric at epochs 1..n (NaN where not reported)
    times: list[float]  # seconds of epochs 1..n
    failed: bool = False  # the recorded trial failed after len(values) epochs

    @property
    def final(self) -> float:
        return self.values[-1] if self.values and not self.failed else math.nan


@dataclass
class Table:
    """A recorded grid: the replay space, its configurations and how to rank them."""

    space: Any  # search.space.SearchSpace with the grid's values as choices
    configs: dict[str, Config]  # key(params) -> Config
    metric: str
    mode: str
    epochs: int
    path: str = ""
    task: str = ""

    def sign(self) -> float:
        """+1 for max (higher is better), -1 for min."""
        return 1.0 if self.mode == "max" else -1.0

    @property
    def grid_epochs(self) -> int:
        """The grid's cost: every configuration's recorded epochs."""
        return sum(len(c.values) for c in self.configs.values())

    @property
    def grid_seconds(self) -> float:
        return sum(sum(c.times) for c in self.configs.values())

    def finals(self) -> dict[str, float]:
        """Final value of each configuration that completed with a finite value."""
        return {k: c.final for k, c in self.configs.items() if math.isfinite(c.final)}

    def best(self) -> float:
        vals = list(self.finals().values())
        return max(vals) if self.mode == "max" else min(vals)

    def worst(self) -> float:
        vals = list(self.finals().values())
        return min(vals) if self.mode == "max" else max(vals)

    def top_set(self, top: float) -> set[str]:
        """Keys in the top ``top`` fraction by final value (at least one; ties included)."""
        finals = self.finals()
        k = max(1, math.ceil(top * len(finals) - 1e-9))
        ranked = sorted(finals.values(), key=lambda v: -self.sign() * v)
        cut = ranked[k - 1]
        return {key for key, v in finals.items() if self.sign() * v >= self.sign() * cut}

    def regret(self, value: float | None) -> float:
        """Distance of ``value`` from the grid's best (``None``: no incumbent yet = the worst)."""
        v = self.worst() if value is None else value
        return abs(self.best() - v)


def key(params: Mapping[str, Any]) -> str:
    """A configuration's lookup key: its active params, sorted, as JSON."""
    return json.dumps({k: params[k] for k in sorted(params)}, sort_keys=True, default=str)


def load_table(exp_dir: str | Path) -> Table:
    """Read a recorded experiment folder (space.yaml, trials/, epochs/) as a replay table.

    ``DataError`` naming the folder unless it holds a complete grid: every combination of the
    recorded parameter values, each run to the space's epoch count (or recorded as failed)."""
    from search import results
    from search.space import Param, load_space

    exp = Path(exp_dir)
    if not exp.is_dir():
        raise DataError(f"experiment folder {str(exp)!r} does not exist")
    if not (exp / "space.yaml").is_file():
        raise DataError(f"experiment folder {exp} has no space.yaml; it is not a search's folder")
    space = load_space(exp / "space.yaml")
    trials = results.read_trials(exp)
    epochs = results.read_epochs(exp)
    if trials.empty or epochs.empty:
        raise DataError(f"experiment folder {exp} holds no finished trials to replay")
    metric, mode, n_epochs = space.metric, space.mode, space.epochs
    if metric not in epochs.columns:
        raise DataError(f"experiment folder {exp}: its epochs do not record metric {metric!r}")
    configs: dict[str, Config] = {}
    for row in trials.sort_values("number").to_dict("records"):
        params = json.loads(row["params"]) if isinstance(row["params"], str) else {}
        ep = epochs[epochs["trial_id"] == row["trial_id"]].sort_values("epoch")
        values = [float(v) if v is not None else math.nan for v in ep[metric]]
        times = _epoch_times(ep, row)
        failed = row["status"] == "FAIL"
        if failed and not values:  # failed before its first epoch: one free, empty epoch
            values, times = [math.nan], [0.0]
        if row["status"] == "PRUNED" or (not failed and len(values) < n_epochs):
            raise DataError(
                f"experiment folder {exp}: trial #{row['number']} ran {len(values)} of "
                f"{n_epochs} epochs; replay needs a recording without early stopping "
                "(scheduler: none)"
            )
        configs.setdefault(key(params), Config(params, values, times, failed))
    # the replay space: every parameter with its grid values (a grid recording), else the
    # values the table holds (another sampler's recording), as its choices
    seen: dict[str, list[Any]] = {}
    for c in configs.values():
        for name, value in c.params.items():
            if value not in seen.setdefault(name, []):
                seen[name].append(value)
    params = []
    for p in space.params:
        choices = p.grid_values() or sorted(seen.get(p.name, []))
        if choices:
            params.append(Param(p.name, "categorical", choices=tuple(choices), when=p.when))
    rspace = replace(space, params=params, enqueue=[], sampler={}, scheduler={})
    expected = {key(pt) for pt in rspace.grid_points()}
    missing = expected - set(configs)
    if missing:
        raise DataError(
            f"experiment folder {exp} holds {len(expected) - len(missing)} of the "
            f"{len(expected)} grid configurations its values span; replay needs a complete grid "
            "(record one with sampler: {name: grid})"
        )
    table = Table(rspace, {k: configs[k] for k in sorted(expected)}, metric, mode, n_epochs)
    if not table.finals():
        raise DataError(f"experiment folder {exp}: no configuration completed with a value")
    table.path, table.task = str(exp), space.task
    return table


def _epoch_times(ep: pd.DataFrame, row: Mapping[str, Any]) -> list[float]:
    """Recorded seconds per epoch (``epoch_time_s``), else the trial's wall time spread evenly."""
    n = len(ep)
    if "epoch_time_s" in ep.columns and ep["epoch_time_s"].notna().all():
        return [float(t) for t in ep["epoch_time_s"]]
    wall = row.get("wall_time_s")
    each = float(wall) / max(n, 1) if wall is not None and math.isfinite(wall) else 1.0
    return [each] * n


def write_table(
    exp_dir: str | Path,
    space: Mapping[str, Any],
    curves: Sequence[tuple[Mapping[str, Any], Sequence[float], Sequence[float]]],
    *,
    experiment: str = "synthetic",
) -> Path:
    """Write a recorded-grid folder by hand (tests, ``bench/scale.py``'s synthetic table):
    ``space`` (the space file's mapping) as space.yaml, and per configuration its params,
    per-epoch metric values and epoch seconds as trial and epoch Parquet rows (COMPLETE)."""
    import yaml

    from search import results
    from search.space import parse_space

    exp = Path(exp_dir)
    exp.mkdir(parents=True, exist_ok=True)
    parsed = parse_space(dict(space), str(exp / "space.yaml"))
    parsed.dump(exp / "space.yaml")
    assert yaml.safe_load((exp / "space.yaml").read_text())  # readable back
    for number, (params, values, times) in enumerate(curves):
        tid = f"t{number:05d}"
        ident = {"task": parsed.task, "experiment": experiment, "trial_id": tid, "number": number}
        rows = [
            {"epoch": e + 1, parsed.metric: float(v), "epoch_time_s": float(t)}
            for e, (v, t) in enumerate(zip(values, times, strict=True))
        ]
        results.write_epochs(exp, ident, rows)
        results.write_trial(
            exp,
            {
                **ident,
                "status": "COMPLETE",
                "stop_reason": "completed",
                "metric": parsed.metric,
                "mode": parsed.mode,
                "final_value": float(values[-1]),
                "epochs_run": len(values),
                "wall_time_s": float(sum(times)),
                "params": dict(params),
                **results.config_columns(parsed.config(params)),
            },
        )
    return exp


# ---------------------------------------------------------------------------- simulation
@dataclass
class Settings:
    """The sampler's and ASHA's settings (the space's, unless overridden)."""

    sampler: dict[str, int] = field(default_factory=dict)  # n_startup_trials, n_ei_candidates
    # grace_period or grace_fraction, reduction_factor; unset: search.run's defaults
    scheduler: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trace:
    """One replayed search: every finished trial in completion order, and where it reached."""

    searcher: str
    seed: int
    events: list[dict[str, Any]]  # key, number, status, epochs, end, cum_epochs, incumbent
    reach_epochs: float  # epochs spent when the incumbent entered the top set (inf: never)
    reach_hours: float  # simulated clock then (inf: never)
    regret_at: dict[float, float]  # cost fraction -> regret
    curve: list[tuple[float, float]]  # (cost fraction, regret) after each finished trial


def _sampler(name: str, seed: int, settings: Settings) -> Any:
    from search.study import make_sampler

    if name.startswith("random"):
        return make_sampler(seed, name="random")
    return make_sampler(seed, **settings.sampler)


def _scheduler(table: Table, settings: Settings) -> Any:
    """Ray's ASHAScheduler exactly as ``search.run`` builds it, metric/mode set as Tune does."""
    from search.run import make_scheduler

    spec = SimpleNamespace(early_stopping=True, epochs=table.epochs, scheduler=settings.scheduler)
    sched = make_scheduler(spec, argparse.Namespace(grace_period=None, reduction_factor=None))
    sched.set_search_properties(table.metric, table.mode)
    return sched


@dataclass
class TrialEnd:
    """A replayed trial that has just ended: after ``idx + 1`` epochs, at ``clock`` seconds,
    with ``spent`` epochs trained by all trials so far; ``last``: it ran every epoch."""

    trial: Any  # optuna.Trial
    cfg: Config
    key: str
    idx: int
    last: bool
    clock: float
    spent: int


def trial_ends(
    study: Any, table: Table, asha: Any, concurrency: int, budget: float
) -> Iterator[TrialEnd]:
    """The discrete-event clock both replays share: ``concurrency`` trials asked from
    ``study`` at once, each epoch costs its recorded time, ``asha`` (Ray's ``ASHAScheduler`` or
    None) sees every epoch's result. Yields each trial as it ends; the caller tells ``study``,
    then the freed slot asks the next trial, until ``budget`` epochs are spent."""
    from ray.tune.schedulers import TrialScheduler

    clock, spent = 0.0, 0
    heap: list[tuple[float, int, int]] = []  # (time the next epoch ends, number, epoch index)
    live: dict[int, tuple[Any, Config, str]] = {}

    def launch(now: float) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = study.ask()
            params = table.space.suggest(trial)
        k = key(params)
        cfg = table.configs[k]
        live[trial.number] = (trial, cfg, k)
        if asha is not None:
            asha.on_trial_add(None, SimpleNamespace(trial_id=str(trial.number)))
        heapq.heappush(heap, (now + cfg.times[0], trial.number, 0))

    for _ in range(concurrency):
        launch(clock)
    while heap and spent < budget:
        clock, number, idx = heapq.heappop(heap)
        trial, cfg, k = live[number]
        spent += 1
        last = idx + 1 == len(cfg.values)
        stop = False
        if asha is not None:
            result = {"epoch": idx + 1, table.metric: cfg.values[idx]}
            fake = SimpleNamespace(trial_id=str(number))
            stop = asha.on_trial_result(None, fake, result) == TrialScheduler.STOP
            if stop or last:
                asha.on_trial_complete(None, fake, result)
        if not (stop or last):
            heapq.heappush(heap, (clock + cfg.times[idx + 1], number, idx + 1))
            continue
        del live[number]
        yield TrialEnd(trial, cfg, k, idx, last, clock, spent)
        if spent < budget:
            launch(clock)


def simulate(
    table: Table,
    searcher: str,
    seed: int,
    concurrency: int,
    top: float,
    settings: Settings | None = None,
    order: Sequence[Mapping[str, Any]] = (),
    prior: Sequence[Any] = (),
) -> Trace:
    """Replay one search until it has spent the grid's epochs (see the module docstring).

    ``order``: configurations enqueued first (Optuna ``enqueue_trial``), e.g. a fixed
    proposal order for a test or a warm start's top-k; the sampler proposes the rest.
    ``prior``: a warm start's sampler-side observations (``search.warm.PriorSampler``, as
    ``search.run --warm-start`` uses them; TPE only)."""
    import optuna
    from optuna.trial import TrialState

    from search.study import FAILED_CONSTRAINT, optuna_outcome

    settings = settings or Settings()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from search.warm import wrap

        study = optuna.create_study(
            sampler=wrap(_sampler(searcher, seed, settings), prior),
            direction="maximize" if table.mode == "max" else "minimize",
        )
    for params in order:
        study.enqueue_trial(dict(params))
    asha = _scheduler(table, settings) if searcher.endswith("_asha") else None
    budget = table.grid_epochs
    targets = table.top_set(top)
    sign = table.sign()
    events: list[dict[str, Any]] = []
    incumbent: float | None = None
    reach_epochs = reach_hours = math.inf
    curve: list[tuple[float, float]] = [(0.0, table.regret(None))]
    for end in trial_ends(study, table, asha, concurrency, budget):
        trial, cfg, idx, spent = end.trial, end.cfg, end.idx, end.spent
        value = cfg.values[idx]
        # the trial ends: intermediate values then the verdict, as the Recorder tells them
        for e in range(idx + 1):
            if math.isfinite(cfg.values[e]):
                trial.report(cfg.values[e], e + 1)
        if end.last and not cfg.failed and math.isfinite(value):
            status = "COMPLETE"
            study.tell(trial, value)
            if incumbent is None or sign * value > sign * incumbent:
                incumbent = value
            if end.key in targets and math.isinf(reach_epochs):
                reach_epochs, reach_hours = spent, end.clock / 3600.0
        elif end.last:  # told as the Recorder does: an infeasible COMPLETE (search.study)
            status = "FAIL"
            state, worst, violation = optuna_outcome(status, None, table.mode)
            trial.set_constraint(FAILED_CONSTRAINT, violation)
            study.tell(trial, worst, state=state)
        else:
            status = "PRUNED"
            study.tell(trial, state=TrialState.PRUNED)
        events.append(
            {
                "key": end.key,
                "number": trial.number,
                "status": status,
                "epochs": idx + 1,
                "end": end.clock,
                "cum_epochs": spent,
                "incumbent": incumbent,
            }
        )
        curve.append((spent / budget, table.regret(incumbent)))
    regret_at = {f: _regret_at(curve, f) for f in FRACTIONS}
    return Trace(searcher, seed, events, reach_epochs, reach_hours, regret_at, curve)


def _regret_at(curve: Sequence[tuple[float, float]], frac: float) -> float:
    """Regret of the incumbent held once ``frac`` of the grid's cost is spent."""
    out = curve[0][1]
    for cost, regret in curve:
        if cost <= frac + 1e-12:
            out = regret
    return out


# ------------------------------------------------------------------------------ reporting
def replay(
    table: Table,
    searchers: Sequence[str],
    seeds: int,
    concurrency: int,
    top: float,
    settings: Settings | None = None,
    warm: Any = None,
) -> list[Trace]:
    """Every searcher x seed (seeds 0..seeds-1); ``warm``: a ``search.warm.WarmPlan`` (its
    top-k enqueued first, its prior given to TPE), as :func:`warm_plan` makes it."""
    order, prior = (warm.enqueue, warm.prior) if warm is not None else ((), ())
    return [
        simulate(table, s, seed, concurrency, top, settings, order=order, prior=prior)
        for s in searchers
        for seed in range(seeds)
    ]


def warm_plan(table: Table, source: Table, k: int) -> Any:
    """``search.run --warm-start``'s plan with another recorded table as the source: its
    configurations ranked by their recorded final values, projected onto ``table``'s space."""
    from search import warm

    trials = [
        warm.SourceTrial(dict(c.params), {}, "FAIL" if c.failed else "COMPLETE",
                         c.final if math.isfinite(c.final) else None, len(c.values), i)
        for i, c in enumerate(source.configs.values())
    ]  # fmt: skip
    src = warm.Source(source.path, source.task, source.metric, source.mode, trials)
    return warm.plan(table.space, src, k)


def tables_tau(a: Table, b: Table) -> float:
    """Kendall's tau-b between two tables' rankings of their shared configurations (final
    values; ``analysis.stats.pairwise_kendall``, each table's direction applied)."""
    from analysis.stats import pairwise_kendall

    fa, fb = a.finals(), b.finals()
    shared = sorted(set(fa) & set(fb))
    matrix = pd.DataFrame(
        [[a.sign() * fa[k] for k in shared], [b.sign() * fb[k] for k in shared]],
        index=["a", "b"],
        columns=shared,
    )
    return float(pairwise_kendall(matrix)["tau"].iloc[0])


def runs_frame(table: Table, traces: Sequence[Trace]) -> pd.DataFrame:
    """One row per searcher x seed."""
    grid = table.grid_epochs
    rows = []
    for t in traces:
        row = {
            "task": table.task,
            "experiment": Path(table.path).name,
            "searcher": t.searcher,
            "seed": t.seed,
            "reach_epochs": t.reach_epochs,
            "reach_frac": t.reach_epochs / grid,
            "reach_hours": t.reach_hours,
            "trials": len(t.events),
        }
        row.update({f"regret_at_{f:g}": t.regret_at[f] for f in FRACTIONS})
        rows.append(row)
    return pd.DataFrame(rows)


def _q(values: Sequence[float], q: float) -> float:
    """Percentile where +inf means "never" (a value interpolated towards it is "never" too)."""
    arr = np.asarray(values, dtype=float)
    out = float(np.percentile(np.where(np.isinf(arr), NEVER, arr), q))
    return math.inf if out >= NEVER / 10 else out


def summary_frame(table: Table, runs: pd.DataFrame, top: float, concurrency: int) -> pd.DataFrame:
    """Median and interquartile range over seeds, per searcher."""
    rows = []
    for name, grp in runs.groupby("searcher", sort=False):
        row: dict[str, Any] = {
            "task": table.task,
            "experiment": Path(table.path).name,
            "searcher": name,
            "seeds": len(grp),
            "top": top,
            "concurrency": concurrency,
            "grid_configs": len(table.configs),
            "grid_epochs": table.grid_epochs,
            "grid_hours": table.grid_seconds / 3600.0,
            "reached": int(np.isfinite(grp["reach_frac"]).sum()),
        }
        for col in ["reach_frac", "reach_hours"] + [f"regret_at_{f:g}" for f in FRACTIONS]:
            vals = list(grp[col])
            row[f"{col}_median"] = _q(vals, 50)
            row[f"{col}_q25"] = _q(vals, 25)
            row[f"{col}_q75"] = _q(vals, 75)
        rows.append(row)
    return pd.DataFrame(rows)


def curves_frame(table: Table, traces: Sequence[Trace]) -> pd.DataFrame:
    """Regret vs cost fraction (0..1), median and IQR over seeds, per searcher."""
    xs = np.linspace(0.0, 1.0, CURVE_POINTS)
    rows = []
    by: dict[str, list[Trace]] = {}
    for t in traces:
        by.setdefault(t.searcher, []).append(t)
    for name, group in by.items():
        mat = np.array([[_regret_at(t.curve, x) for x in xs] for t in group])
        med, q25, q75 = (np.percentile(mat, q, axis=0) for q in (50, 25, 75))
        for i, x in enumerate(xs):
            rows.append(
                {
                    "task": table.task,
                    "searcher": name,
                    "cost_frac": float(x),
                    "regret_median": med[i],
                    "regret_q25": q25[i],
                    "regret_q75": q75[i],
                }
            )
    return pd.DataFrame(rows)


def plot_curves(curves: pd.DataFrame, title: str, path: Path) -> None:
    """Regret vs cost (median line, IQR band) per searcher, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, grp in curves.groupby("searcher", sort=False):
        ax.plot(grp["cost_frac"], grp["regret_median"], label=name, drawstyle="steps-post")
        ax.fill_between(
            grp["cost_frac"], grp["regret_q25"], grp["regret_q75"], alpha=0.2, step="post"
        )
    for f in FRACTIONS:
        ax.axvline(f, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("cost (fraction of the grid's epochs)")
    ax.set_ylabel("regret (grid best - incumbent)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt_reach(frac: float) -> str:
    """``0.123``, or ``1.000+`` for a searcher that never reached the top set."""
    return "1.000+" if not math.isfinite(frac) else f"{frac:.3f}"


def last_line(summary: pd.DataFrame, top: float, seeds: int) -> str:
    """The issue's summary line: tpe_asha first (when replayed), then the others in order."""
    med = dict(zip(summary["searcher"], summary["reach_frac_median"], strict=True))
    lead = "tpe_asha" if "tpe_asha" in med else next(iter(med))
    rest = "; ".join(f"{s} {fmt_reach(v)}" for s, v in med.items() if s != lead)
    line = (
        f"replay: {lead} reaches the grid's top {top * 100:g} % at {fmt_reach(med[lead])} of "
        f"the grid's epochs (median of {seeds} seeds)"
    )
    return f"{line}; {rest}" if rest else line


# ------------------------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m search.replay",
        description="Replay a recorded grid as a tabular benchmark: the cost for random search, "
        "TPE and either with ASHA to reach the grid's top configurations.",
    )
    p.add_argument("experiment", help="recorded experiment folder (e.g. bench/curves/sbi)")
    p.add_argument(
        "--searchers",
        default=",".join(SEARCHERS),
        help=f"comma-separated subset of {', '.join(SEARCHERS)} (default: all)",
    )
    p.add_argument("--seeds", type=int, default=20, help="replays per searcher (default: 20)")
    p.add_argument("--concurrency", type=int, default=4, help="trials at once (default: 4)")
    p.add_argument(
        "--top",
        type=float,
        default=0.05,
        help="target: the grid's top fraction by recorded value (default: 0.05)",
    )
    p.add_argument(
        "--space",
        help="take TPE's and ASHA's settings from this space file (e.g. "
        "spaces/demo.yaml; default: the recorded space's, else search.run's)",
    )
    p.add_argument("--n-startup-trials", type=int, help="override TPE's n_startup_trials")
    p.add_argument("--grace-period", type=int, help="override ASHA's grace period")
    p.add_argument("--reduction-factor", type=int, help="override ASHA's reduction factor")
    p.add_argument(
        "--warm-start",
        metavar="OTHER_TABLE",
        help="warm-start every replayed search from another recorded table (its top "
        "--warm-start-k configurations first, its values as TPE's prior), as search.run "
        "--warm-start does",
    )
    p.add_argument(
        "--warm-start-k", type=int, help="configurations enqueued from --warm-start (default: 5)"
    )
    p.add_argument("--out", help="output folder (default: EXPERIMENT/replay)")
    return p


def asha_settings(table: Table, settings: Settings) -> dict[str, int]:
    """The grace period and reduction factor ASHA runs with on this table (search.run's rule)."""
    from search.run import _asha_settings

    spec = SimpleNamespace(epochs=table.epochs, scheduler=settings.scheduler)
    grace, rf = _asha_settings(argparse.Namespace(), spec)
    return {"grace_period": min(grace, table.epochs), "reduction_factor": rf}


def settings_for(exp: Path, args: argparse.Namespace) -> Settings:
    """TPE/ASHA settings: flags > --space > the recorded space > search.run's defaults."""
    from search.space import load_space

    src = load_space(args.space) if args.space else load_space(exp / "space.yaml")
    sampler = {k: v for k, v in src.sampler.items() if k != "name"}
    scheduler = {k: v for k, v in src.scheduler.items() if k != "name"}
    if args.n_startup_trials is not None:
        sampler["n_startup_trials"] = args.n_startup_trials
    if args.grace_period is not None:
        scheduler.pop("grace_fraction", None)
        scheduler["grace_period"] = args.grace_period
    if args.reduction_factor is not None:
        scheduler["reduction_factor"] = args.reduction_factor
    return Settings(sampler, scheduler)


def check_args(args: argparse.Namespace) -> list[str]:
    """The searchers to run; ``ConfigError`` (one sentence) for a bad flag."""
    names = [s.strip() for s in args.searchers.split(",") if s.strip()]
    bad = [s for s in names if s not in SEARCHERS]
    if not names or bad:
        raise ConfigError(
            f"--searchers holds {bad[0] if bad else 'nothing'!r}; allowed: {', '.join(SEARCHERS)}"
        )
    for flag, value, low in (
        ("--seeds", args.seeds, 1),
        ("--concurrency", args.concurrency, 1),
        ("--n-startup-trials", args.n_startup_trials, 1),
        ("--grace-period", args.grace_period, 1),
        ("--reduction-factor", args.reduction_factor, 2),
    ):
        if value is not None and value < low:
            raise ConfigError(f"{flag} is {value}; it must be at least {low}")
    if not (math.isfinite(args.top) and 0 < args.top <= 1):
        raise ConfigError(f"--top is {args.top}; it must be a fraction in (0, 1]")
    from search.warm import check_k

    check_k(getattr(args, "warm_start_k", None), getattr(args, "warm_start", None) is not None)
    return list(dict.fromkeys(names))


def run(args: argparse.Namespace) -> int:
    searchers = check_args(args)
    exp = Path(args.experiment)
    table = load_table(exp)
    settings = settings_for(exp, args)
    warm = None
    if getattr(args, "warm_start", None):
        from search.warm import check_k

        k = check_k(args.warm_start_k, True)
        source = load_table(args.warm_start)
        warm = warm_plan(table, source, k)
        print(
            f"warm start from {args.warm_start}: {len(warm.enqueue)} of its top {k} "
            f"configurations first, {len(warm.prior)} prior observations for TPE; "
            f"Kendall's tau between the tables = {tables_tau(table, source):.3f}",
            flush=True,
        )
    out = Path(args.out) if args.out else exp / ("replay-warm" if warm else "replay")
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"replay {exp}: {len(table.configs)} configurations x {table.epochs} epochs "
        f"({table.grid_epochs} epochs, {table.grid_seconds / 3600:.3f} h recorded), "
        f"{table.metric} ({table.mode}); top {args.top * 100:g} % = "
        f"{len(table.top_set(args.top))} configuration(s); concurrency {args.concurrency}; "
        f"TPE {settings.sampler or 'defaults'}, ASHA {asha_settings(table, settings)}",
        flush=True,
    )
    traces = replay(table, searchers, args.seeds, args.concurrency, args.top, settings, warm)
    runs = runs_frame(table, traces)
    summary = summary_frame(table, runs, args.top, args.concurrency)
    curves = curves_frame(table, traces)
    runs.to_csv(out / "replay_runs.csv", index=False)
    summary.to_csv(out / "replay_summary.csv", index=False)
    curves.to_csv(out / "replay_curves.csv", index=False)
    plot_curves(curves, f"{table.task}: regret vs cost ({args.seeds} seeds)", out / "replay.png")
    for r in summary.to_dict("records"):
        regrets = "  ".join(
            f"regret@{f:g} {r[f'regret_at_{f:g}_median']:.4f} "
            f"[{r[f'regret_at_{f:g}_q25']:.4f}, {r[f'regret_at_{f:g}_q75']:.4f}]"
            for f in FRACTIONS
        )
        print(
            f"  {r['searcher']:<12} reach {fmt_reach(r['reach_frac_median'])} of the grid "
            f"[IQR {fmt_reach(r['reach_frac_q25'])}, {fmt_reach(r['reach_frac_q75'])}], "
            f"{r['reach_hours_median']:.3f} simulated h, reached in {r['reached']}/"
            f"{r['seeds']} seeds; {regrets}",
            flush=True,
        )
    print(f"wrote {out}/replay_summary.csv, replay_runs.csv, replay_curves.csv, replay.png")
    print(last_line(summary, args.top, args.seeds), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())


# ------------------------------------------------------------- a trainable for bench/scale.py
def make_trainable(table: Table, scale: float, every: int = 1, kib: int = 0) -> Any:
    """A Tune function trainable (imports no torch) that plays back the table's curve of the
    configuration it is given, sleeping each recorded epoch time x ``scale``. Each report also
    carries ``replay_start`` / ``replay_report`` (wall clock) and ``replay_sleep_s``, so the
    driver's overhead can be measured from the epoch Parquet (see ``bench/scale.py``).
    ``kib`` > 0: like ``lssat.train.run_trial``, it also hands Tune a checkpoint folder (one
    file of ``kib`` KiB) every ``every`` epochs and at the last, so Tune's checkpoint handling
    and the Recorder's checkpoint clean-up run as in a real search."""
    curves = {k: (list(c.values), [t * scale for t in c.times]) for k, c in table.configs.items()}
    metric, epochs = table.metric, table.epochs
    blob = b"\0" * (kib * 1024)

    def replay_trial(config: dict[str, Any]) -> None:
        import shutil as _shutil
        import tempfile as _tempfile
        import time as _time

        from ray import tune

        from search.searcher import META_KEY
        from search.trainable import placement

        start = _time.time()
        values, times = curves[key(config[META_KEY]["params"])]
        where = placement()
        for epoch, (value, seconds) in enumerate(zip(values, times, strict=True), start=1):
            _time.sleep(seconds)
            metrics = {"epoch": epoch, metric: value, "epoch_time_s": seconds,
                       "replay_start": start, "replay_report": _time.time(),
                       "replay_sleep_s": seconds, **where}  # fmt: skip
            if not blob or not (epoch == epochs or epoch % every == 0):
                tune.report(metrics)
                continue
            ckpt = _tempfile.mkdtemp(prefix="replay-ckpt-")
            try:
                with open(f"{ckpt}/model.bin", "wb") as fh:
                    fh.write(blob)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(ckpt))
            finally:
                _shutil.rmtree(ckpt, ignore_errors=True)

    return replay_trial
