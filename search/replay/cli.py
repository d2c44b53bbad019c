"""``python -m search.replay EXPERIMENT_DIR``: what would the search have cost on a recorded grid?

A recorded grid (``sampler: {name: grid}``, ``scheduler: none``; ``bench/curves/<task>/`` or a
user's own experiment folder) is a tabular benchmark: every configuration's per-epoch metric
values and epoch times are in its Parquet epochs. The replay runs a discrete-event simulation of
an asynchronous search at ``--concurrency`` slots on a simulated clock:

- the proposer is the project's own Optuna sampler (``search.optimize.study.make_sampler``:
  TPE with the space's settings, or RandomSampler), asked and told through Optuna's ask/tell
  over the grid's values (the space's parameters with their recorded values as choices,
  ``when`` kept);
- a proposed configuration is looked up in the table and costs its recorded epoch times; a
  configuration proposed twice is charged twice (the real search would train it again);
- early stopping (``*_asha``) is Ray's own ``ASHAScheduler`` object, built by
  ``search.execution.asha.make_scheduler`` with the space's settings and driven on the simulated
  clock (``on_trial_add`` / ``on_trial_result`` / ``on_trial_complete``, as Tune's controller calls
  them); a stopped trial is told PRUNED after its intermediate values, as the Recorder does;
- the incumbent (best-so-far) is the best final value among trials that ran every epoch.

- random search (``random``, ``random_asha``) draws the grid without replacement, in one seeded
  random order: what a user running a shuffled grid gets;
- epoch-time spikes of the recording (an epoch above 5x its trial's median: the recording was
  paused) are replayed at that median (:func:`search.replay.table.despike`, as
  ``bench/scale.py`` does).

The target is robust to validation noise: any configuration in the grid's top ``--top``
(a fraction below 1, e.g. 0.01 = top 1 %, else a count of configurations; at least one; ties
included) by recorded final value. Cost is counted in trained epochs (all trials, stopped ones
included) as a fraction of the grid's epochs, and in simulated hours (the clock at
``--concurrency``). A seed that does not reach the target within the grid's cost counts as the
whole grid (1.0) in the mean, and the share of seeds that reached it is printed beside it.
Figures are means over ``--seeds`` replays (default 100) with 95 % Student-t intervals. Regret is
the distance of the incumbent's recorded final value from the grid's best (before any trial
completes: the distance of the grid's worst). A replay stops once it reached the target and
spent a quarter of the grid (the last regret figure), else at the grid's cost. Outputs
(``--out``, default ``EXPERIMENT_DIR/replay``): ``replay_runs.csv`` (one row per searcher x
seed), ``replay_summary.csv`` (mean and interval, median and IQR over seeds),
``replay_curves.csv`` (regret vs cost) and ``replay.png``. Exit codes: 0 done, 2 bad input (one
sentence naming it).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from types import SimpleNamespace

from lssat.errors import ConfigError
from search.cli import Parser, run_cli
from search.replay.figures import (
    curves_frame,
    fmt_reach,
    last_line,
    plot_curves,
    runs_frame,
    summary_frame,
    top_label,
)
from search.replay.simulate import FRACTIONS, SEARCHERS, Settings, replay, tables_tau, warm_plan
from search.replay.table import Table, load_table


@dataclass(frozen=True)
class ReplayRequest:
    """A replay, typed: the recorded ``experiment`` folder, the ``searchers`` (comma-separated),
    ``seeds`` replays each at ``concurrency`` slots, the target (``top`` fraction), TPE/ASHA
    overrides, an optional warm start, the output folder and (``search.replay_mo``) the
    ``objectives``."""

    experiment: str
    searchers: str = ",".join(SEARCHERS)
    seeds: int = 100
    concurrency: int = 4
    top: float = 0.01
    space: str | None = None
    n_startup_trials: int | None = None
    grace_period: int | None = None
    reduction_factor: int | None = None
    warm_start: str | None = None
    warm_start_k: int | None = None
    out: str | None = None
    objectives: str | None = None


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
    p.add_argument("--seeds", type=int, default=100, help="replays per searcher (default: 100)")
    p.add_argument("--concurrency", type=int, default=4, help="trials at once (default: 4)")
    p.add_argument(
        "--top",
        type=float,
        default=0.01,
        help="target: the grid's top fraction by recorded value (below 1, default 0.01 = top "
        "1 %%), or a count of configurations (1, 2, ...)",
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
    from search.execution.asha import asha_settings

    spec = SimpleNamespace(epochs=table.epochs, scheduler=settings.scheduler)
    grace, rf = asha_settings(spec)
    return {"grace_period": min(grace, table.epochs), "reduction_factor": rf}


def settings_for(exp: Path, req: ReplayRequest) -> Settings:
    """TPE/ASHA settings: flags > --space > the recorded space > search.run's defaults."""
    from search.optimize.space import load_space

    src = load_space(req.space) if req.space else load_space(exp / "space.yaml")
    sampler = {k: v for k, v in src.sampler.items() if k != "name"}
    scheduler = {k: v for k, v in src.scheduler.items() if k != "name"}
    if req.n_startup_trials is not None:
        sampler["n_startup_trials"] = req.n_startup_trials
    if req.grace_period is not None:
        scheduler.pop("grace_fraction", None)
        scheduler["grace_period"] = req.grace_period
    if req.reduction_factor is not None:
        scheduler["reduction_factor"] = req.reduction_factor
    return Settings(sampler, scheduler)


def check_request(req: ReplayRequest) -> list[str]:
    """The searchers to run; ``ConfigError`` (one sentence) for a bad flag."""
    names = [s.strip() for s in req.searchers.split(",") if s.strip()]
    bad = [s for s in names if s not in SEARCHERS]
    if not names or bad:
        raise ConfigError(
            f"--searchers holds {bad[0] if bad else 'nothing'!r}; allowed: {', '.join(SEARCHERS)}"
        )
    for flag, value, low in (
        ("--seeds", req.seeds, 1),
        ("--concurrency", req.concurrency, 1),
        ("--n-startup-trials", req.n_startup_trials, 1),
        ("--grace-period", req.grace_period, 1),
        ("--reduction-factor", req.reduction_factor, 2),
    ):
        if value is not None and value < low:
            raise ConfigError(f"{flag} is {value}; it must be at least {low}")
    if not (math.isfinite(req.top) and (0 < req.top < 1 or (req.top >= 1 and req.top % 1 == 0))):
        raise ConfigError(
            f"--top is {req.top:g}; give a fraction in (0, 1) or a whole count of configurations"
        )
    from search.optimize.warm import check_k

    check_k(req.warm_start_k, req.warm_start is not None)
    return list(dict.fromkeys(names))


def run_replay(req: ReplayRequest) -> int:
    """Replay the request's table; returns the exit code."""
    searchers = check_request(req)
    exp = Path(req.experiment)
    table = load_table(exp)
    settings = settings_for(exp, req)
    warm = None
    if req.warm_start:
        from search.optimize.warm import check_k

        k = check_k(req.warm_start_k, True)
        source = load_table(req.warm_start)
        warm = warm_plan(table, source, k)
        print(
            f"warm start from {req.warm_start}: {len(warm.enqueue)} of its top {k} "
            f"configurations first, {len(warm.prior)} prior observations for TPE; "
            f"Kendall's tau between the tables = {tables_tau(table, source):.3f}",
            flush=True,
        )
    out = Path(req.out) if req.out else exp / ("replay-warm" if warm else "replay")
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"replay {exp}: {len(table.configs)} configurations x {table.epochs} epochs "
        f"({table.grid_epochs} epochs, {table.grid_seconds / 3600:.3f} h recorded), "
        f"{table.metric} ({table.mode}); {top_label(table, req.top)} = "
        f"{len(table.top_set(req.top))} configuration(s); concurrency {req.concurrency}; "
        f"TPE {settings.sampler or 'defaults'}, ASHA {asha_settings(table, settings)}"
        + (f"; {table.spikes} epoch-time spike(s) replayed at their trial's median"
           if table.spikes else ""),
        flush=True,
    )
    traces = replay(table, searchers, req.seeds, req.concurrency, req.top, settings, warm)
    runs = runs_frame(table, traces)
    summary = summary_frame(table, runs, req.top, req.concurrency)
    curves = curves_frame(table, traces)
    runs.to_csv(out / "replay_runs.csv", index=False)
    summary.to_csv(out / "replay_summary.csv", index=False)
    curves.to_csv(out / "replay_curves.csv", index=False)
    plot_curves(curves, f"{table.task}: regret vs cost ({req.seeds} seeds)", out / "replay.png")
    for r in summary.to_dict("records"):
        regrets = "  ".join(
            f"regret@{f:g} {r[f'regret_at_{f:g}_median']:.4f} "
            f"[{r[f'regret_at_{f:g}_q25']:.4f}, {r[f'regret_at_{f:g}_q75']:.4f}]"
            for f in FRACTIONS
        )
        print(
            f"  {r['searcher']:<12} cost {r['cost_frac_mean']:.3f} [{r['cost_frac_low']:.3f}, "
            f"{r['cost_frac_high']:.3f}] of the grid (mean, 95 % CI), median "
            f"{fmt_reach(r['reach_frac_median'])}, reached in {r['reached']}/{r['seeds']} "
            f"seeds; {regrets}",
            flush=True,
        )
    print(f"wrote {out}/replay_summary.csv, replay_runs.csv, replay_curves.csv, replay.png")
    print(last_line(summary, top_label(table, req.top), req.seeds), flush=True)
    return 0


def request_from_args(args: argparse.Namespace) -> ReplayRequest:
    """The command line (of ``search.replay`` or ``search.replay_mo``) as a typed request."""
    given = {f.name: getattr(args, f.name) for f in fields(ReplayRequest) if hasattr(args, f.name)}
    return ReplayRequest(**given)


def run(args: argparse.Namespace) -> int:
    return run_replay(request_from_args(args))


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
