"""A recorded learning-curve table: every configuration's per-epoch values and times, read
from (or written as) an experiment folder of trial and epoch Parquet."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from lssat.errors import DataError


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

    space: Any  # search.optimize.space.SearchSpace with the grid's values as choices
    configs: dict[str, Config]  # key(params) -> Config
    metric: str
    mode: str
    epochs: int
    path: str = ""
    task: str = ""
    spikes: int = 0  # epoch times replaced by their trial's median (:func:`despike`)

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

    def top_count(self, top: float) -> int:
        """Configurations in the target: ``top`` < 1 is a fraction of the completed ones (at
        least one), ``top`` >= 1 a count."""
        n = len(self.finals())
        if top >= 1:
            return min(n, int(top))
        return max(1, math.ceil(top * n - 1e-9))

    def top_set(self, top: float) -> set[str]:
        """Keys in the top ``top`` (a fraction below 1, else a count) by final value (at least
        one; ties included)."""
        finals = self.finals()
        k = self.top_count(top)
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


def load_table(exp_dir: str | Path, repair: bool = True) -> Table:
    """Read a recorded experiment folder (space.yaml, trials/, epochs/) as a replay table.

    ``DataError`` naming the folder unless it holds a complete grid: every combination of the
    recorded parameter values, each run to the space's epoch count (or recorded as failed).
    ``repair``: epoch-time spikes are replaced by their trial's median (:func:`despike`)."""
    from search import results
    from search.optimize.space import Param, load_space

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
    if repair:
        table.spikes = despike(table)
    return table


SPIKE_FACTOR = 5.0


def despike(table: Table, factor: float = SPIKE_FACTOR) -> int:
    """Replace each recorded epoch time above ``factor`` x its trial's median epoch time by that
    median (a recording paused while something else was timed, not a property of the
    configuration); trials of fewer than 3 epochs are left alone. Returns how many were
    replaced. The replay and ``bench/scale.py`` both use this rule."""
    import statistics

    replaced = 0
    for c in table.configs.values():
        if len(c.times) < 3:
            continue
        med = statistics.median(c.times)
        for i, t in enumerate(c.times):
            if med > 0 and t > factor * med:
                c.times[i] = med
                replaced += 1
    return replaced


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
    from search.optimize.space import parse_space

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
