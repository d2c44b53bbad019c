"""``python -m search.replay_mo EXPERIMENT_DIR``: multi-objective searches replayed on a grid.

The multi-objective twin of :mod:`search.replay` (same recorded tables, same discrete-event
simulation at ``--concurrency`` slots, same proposers and Ray's own ``ASHAScheduler`` on the
first objective). Each configuration's objective vector comes from the recording: the first
objective is the replayed metric's final value, ``gflops`` / ``params`` the trial row's
``gflops`` / ``params_count``, another validation metric its ``final_<metric>`` column. The
study is a multi-objective Optuna study told as the Recorder tells one (COMPLETE with every
objective value, PRUNED without intermediate values, see :mod:`search.optimize.study`).

Measure: the hypervolume of the front found among the trials completed within a cost (trained
epochs, a fraction of the grid's epochs), relative to the hypervolume of the grid's true front.
Objectives are scaled to [0, 1] by the grid's range (0 = the grid's best value), the reference
point is 1.1 on each, so 1.0 = the true front found. Outputs (``--out``, default
``EXPERIMENT_DIR/replay``): ``replay_mo_runs.csv`` (one row per searcher x seed),
``replay_mo_summary.csv`` (median and IQR over seeds); the last line is
``replay-mo: at 1/10 of the grid's epochs the found front holds X.XXX of the true front's
hypervolume (tpe_asha, median of N seeds); random ...``. Exit codes: 0 done, 2 bad input.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lssat.errors import ConfigError, DataError
from search.replay.cli import ReplayRequest, settings_for
from search.replay.simulate import Settings
from search.replay.table import Table, key, load_table
from search.results.pareto import as_loss, hypervolume, pareto_mask

FRACTIONS = (0.05, 0.1, 0.25, 0.5)  # hypervolume ratio at these fractions of the grid's cost
HEADLINE = 0.1  # the measure: 1/10 of the grid's cost
REF = 1.1  # reference point on the [0, 1]-scaled objectives


@dataclass
class MOTable:
    """A replay table with one objective vector per configuration (``[n_configs, M]``)."""

    table: Table
    objectives: dict[str, str]
    keys: list[str]
    values: np.ndarray

    def scaled_loss(self, values: np.ndarray) -> np.ndarray:
        """``[N, M]`` values -> losses in [0, 1] by the grid's range (0 = its best)."""
        dirs = list(self.objectives.values())
        loss, grid = as_loss(values, dirs), as_loss(self.values, dirs)
        lo, hi = np.nanmin(grid, axis=0), np.nanmax(grid, axis=0)
        return (loss - lo) / np.where(hi > lo, hi - lo, 1.0)

    def hv(self, values: np.ndarray) -> float:
        ref = np.full(len(self.objectives), REF)
        return hypervolume(self.scaled_loss(values), ref) if len(values) else 0.0

    def true_front(self) -> np.ndarray:
        return self.values[pareto_mask(self.values, list(self.objectives.values()))]


def parse_objectives(text: str | None, table: Table) -> dict[str, str]:
    """``val_auc:max,gflops:min`` -> {name: direction}; default: the table's metric, then
    ``gflops:min``; the first must be the table's metric (ASHA judges trials on it)."""
    from search.optimize.objectives import COMPUTE, DIRECTIONS

    if not text:
        return {table.metric: table.mode, "gflops": "min"}
    out: dict[str, str] = {}
    for item in text.split(","):
        name, _, d = item.strip().partition(":")
        if d not in DIRECTIONS:
            raise ConfigError(f"--objectives holds {item.strip()!r}; write NAME:max or NAME:min")
        if not (name.startswith("val_") or name in COMPUTE):
            raise ConfigError(f"--objectives names {name!r}; allowed: val_* metrics, "
                              f"{', '.join(COMPUTE)}")  # fmt: skip
        out[name] = d
    first = next(iter(out))
    if first != table.metric or out[first] != table.mode or len(out) < 2:
        raise ConfigError(
            f"--objectives is {text!r}; it must start with the table's metric "
            f"{table.metric}:{table.mode} and name at least one more objective"
        )
    return out


def load_mo_table(exp_dir: str | Path, objectives: str | None = None) -> MOTable:
    """A recorded grid (see :func:`search.replay.load_table`) with each configuration's
    objective vector; ``DataError`` naming the folder when an objective was not recorded."""
    from search import results
    from search.optimize.objectives import COMPUTE

    table = load_table(exp_dir)
    objs = parse_objectives(objectives, table)
    rows = results.read_trials(exp_dir)
    by_key = {key(json.loads(r["params"])): r for r in rows.to_dict("records")
              if isinstance(r.get("params"), str)}  # fmt: skip
    keys = list(table.configs)
    vals = np.full((len(keys), len(objs)), np.nan)
    for i, k in enumerate(keys):
        row = by_key.get(k, {})
        for j, name in enumerate(objs):
            if name == table.metric:
                v = table.configs[k].final
            else:
                v = row.get(COMPUTE.get(name) if name in COMPUTE else f"final_{name}")
            vals[i, j] = float(v) if v is not None else math.nan
    for j, name in enumerate(objs):
        done = np.isfinite(vals[:, 0])
        if not np.isfinite(vals[done, j]).all():
            raise DataError(f"experiment folder {exp_dir}: objective {name!r} is not recorded "
                            "for every completed configuration")  # fmt: skip
    return MOTable(table, objs, keys, vals)


def simulate_mo(
    mt: MOTable,
    searcher: str,
    seed: int,
    concurrency: int,
    settings: Settings | None = None,
    until: float = max(FRACTIONS),
) -> dict[str, Any]:
    """One replayed multi-objective search up to ``until`` of the grid's epochs: the
    hypervolume ratio at each of ``FRACTIONS`` and the trials it ran."""
    import optuna
    from optuna.trial import TrialState

    from search.optimize.objectives import worst
    from search.optimize.study import FAILED_CONSTRAINT
    from search.replay.simulate import _sampler, _scheduler, trial_ends

    table, settings = mt.table, settings or Settings()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dirs = list(mt.objectives.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(
            sampler=_sampler(searcher, seed, settings),
            directions=["maximize" if d == "max" else "minimize" for d in dirs],
        )
    asha = _scheduler(table, settings) if searcher.endswith("_asha") else None
    index = {k: i for i, k in enumerate(mt.keys)}
    done: list[tuple[int, str]] = []  # (epochs spent when it completed, config key)
    n_trials = 0
    for end in trial_ends(study, table, asha, concurrency, until * table.grid_epochs):
        trial, vec = end.trial, mt.values[index[end.key]]
        if end.last and not end.cfg.failed and np.isfinite(vec).all():
            trial.set_constraint(FAILED_CONSTRAINT, 0.0)
            study.tell(trial, [float(v) for v in vec])
            done.append((end.spent, end.key))
        elif end.last:  # an infeasible COMPLETE with the worst values, as the Recorder tells it
            trial.set_constraint(FAILED_CONSTRAINT, 1.0)
            study.tell(trial, worst(dirs))
        else:  # PRUNED without intermediate values (search.optimize.study.StudyRef.report)
            trial.set_constraint(FAILED_CONSTRAINT, 0.0)
            study.tell(trial, state=TrialState.PRUNED)
        n_trials += 1
    true_hv = mt.hv(mt.true_front())
    out: dict[str, Any] = {"searcher": searcher, "seed": seed, "trials": n_trials}
    for f in FRACTIONS:
        found = [index[k] for s, k in done if s <= f * table.grid_epochs]
        out[f"hv_at_{f:g}"] = mt.hv(mt.values[found]) / true_hv if true_hv > 0 else math.nan
    return out


def summary_frame(mt: MOTable, runs: pd.DataFrame) -> pd.DataFrame:
    """Median and IQR of the hypervolume ratio over seeds, per searcher."""
    rows = []
    for name, grp in runs.groupby("searcher", sort=False):
        row: dict[str, Any] = {
            "task": mt.table.task, "experiment": Path(mt.table.path).name, "searcher": name,
            "seeds": len(grp), "objectives": json.dumps(mt.objectives),
            "grid_configs": len(mt.keys), "true_front": len(mt.true_front()),
        }  # fmt: skip
        for f in FRACTIONS:
            vals = grp[f"hv_at_{f:g}"].to_numpy(dtype=float)
            for q, label in ((50, "median"), (25, "q25"), (75, "q75")):
                row[f"hv_at_{f:g}_{label}"] = float(np.percentile(vals, q))
        rows.append(row)
    return pd.DataFrame(rows)


def last_line(summary: pd.DataFrame, seeds: int) -> str:
    med = dict(zip(summary["searcher"], summary[f"hv_at_{HEADLINE:g}_median"], strict=True))
    lead = "tpe_asha" if "tpe_asha" in med else next(iter(med))
    rest = "; ".join(f"{s} {v:.3f}" for s, v in med.items() if s != lead)
    line = (
        f"replay-mo: at 1/10 of the grid's epochs the found front holds {med[lead]:.3f} of the "
        f"true front's hypervolume ({lead}, median of {seeds} seeds)"
    )
    return f"{line}; {rest}" if rest else line


def run_mo(req: ReplayRequest) -> int:
    """Replay multi-objective searches on the request's table; returns the exit code."""
    from search.replay.cli import check_request

    searchers = check_request(req)  # --top keeps its default: this replay has none
    exp = Path(req.experiment)
    objectives = req.objectives
    if objectives is None and req.space:  # a multi-objective space's own objectives
        from search.optimize.space import load_space

        given = load_space(req.space).objectives
        objectives = ",".join(f"{k}:{v}" for k, v in given.items()) or None
    mt = load_mo_table(exp, objectives)
    settings = settings_for(exp, req)
    out = Path(req.out) if req.out else exp / "replay"
    out.mkdir(parents=True, exist_ok=True)
    shown = ", ".join(f"{k} {v}" for k, v in mt.objectives.items())
    print(f"replay-mo {exp}: {len(mt.keys)} configurations, objectives {shown}; true front "
          f"{len(mt.true_front())} configurations; concurrency {req.concurrency}; TPE "
          f"{settings.sampler or 'defaults'}, ASHA {settings.scheduler}", flush=True)  # fmt: skip
    runs = pd.DataFrame([simulate_mo(mt, s, seed, req.concurrency, settings)
                         for s in searchers for seed in range(req.seeds)])  # fmt: skip
    runs.insert(0, "task", mt.table.task)
    summary = summary_frame(mt, runs)
    runs.to_csv(out / "replay_mo_runs.csv", index=False)
    summary.to_csv(out / "replay_mo_summary.csv", index=False)
    for r in summary.to_dict("records"):
        parts = "  ".join(f"hv@{f:g} {r[f'hv_at_{f:g}_median']:.3f} "
                          f"[{r[f'hv_at_{f:g}_q25']:.3f}, {r[f'hv_at_{f:g}_q75']:.3f}]"
                          for f in FRACTIONS)  # fmt: skip
        print(f"  {r['searcher']:<12} {parts}", flush=True)
    print(f"wrote {out}/replay_mo_summary.csv, replay_mo_runs.csv")
    print(last_line(summary, req.seeds), flush=True)
    return 0
