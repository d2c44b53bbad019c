"""The simulated search on a recorded table: TPE (or a shuffled grid) proposes, Ray's ASHA stops,
every epoch costs its recorded time; :mod:`search.replay.cli` describes the rules and outputs."""

from __future__ import annotations

import heapq
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pandas as pd

from search.replay.table import Config, Table, key

SEARCHERS = ("random", "random_asha", "tpe", "tpe_asha")
FRACTIONS = (0.05, 0.1, 0.25)  # regret at 1/20, 1/10, 1/4 of the grid's cost
NEVER = 1e300  # stands for +inf inside percentiles


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


class _Drawn:
    """A trial whose values are fixed in advance (one grid configuration), with the parts of
    ``optuna.Trial`` the replay calls."""

    def __init__(self, params: Mapping[str, Any], number: int):
        self.params, self.number = dict(params), number

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.params[name]

    def report(self, value: float, step: int) -> None:
        pass

    def set_constraint(self, key: str, value: Sequence[float]) -> None:
        pass


class Shuffled:
    """Random search without replacement: the grid's configurations in one seeded random
    order (what a user running a shuffled grid gets); enqueued configurations go first. Has the
    ``ask`` / ``tell`` / ``enqueue_trial`` a replay calls on an Optuna study."""

    def __init__(self, table: Table, seed: int):
        import numpy as np

        keys = list(table.configs)
        order = np.random.default_rng(seed).permutation(len(keys))
        self._queue = [table.configs[keys[i]].params for i in order]
        self._first: list[dict[str, Any]] = []
        self._asked = 0

    def enqueue_trial(self, params: Mapping[str, Any], **_: Any) -> None:
        self._first.append(dict(params))
        wanted = key(params)
        self._queue = [p for p in self._queue if key(p) != wanted]

    @property
    def exhausted(self) -> bool:
        """Every configuration was asked once (a shuffled grid then ends)."""
        return not (self._first or self._queue)

    def ask(self) -> _Drawn:
        params = self._first.pop(0) if self._first else self._queue.pop(0)
        self._asked += 1
        return _Drawn(params, self._asked - 1)

    def tell(self, *args: Any, **kwargs: Any) -> None:
        pass


def _sampler(name: str, seed: int, settings: Settings) -> Any:
    from search.optimize.study import make_sampler

    if name.startswith("random"):
        return make_sampler(seed, name="random")
    return make_sampler(seed, **settings.sampler)


def _scheduler(table: Table, settings: Settings) -> Any:
    """Ray's ASHAScheduler exactly as ``search.run`` builds it, metric/mode set as Tune does."""
    from search.execution.asha import make_scheduler

    spec = SimpleNamespace(early_stopping=True, epochs=table.epochs, scheduler=settings.scheduler)
    sched = make_scheduler(spec)
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
        if getattr(study, "exhausted", False):  # a shuffled grid asked every configuration
            return
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
    full: bool = False,
) -> Trace:
    """Replay one search (see the module docstring) until it has spent the grid's epochs, or,
    unless ``full``, until it has reached the target and spent ``max(FRACTIONS)`` of them.

    ``random`` and ``random_asha`` draw the grid without replacement (:class:`Shuffled`).
    ``order``: configurations enqueued first (Optuna ``enqueue_trial``), e.g. a fixed
    proposal order for a test or a warm start's top-k; the sampler proposes the rest.
    ``prior``: a warm start's sampler-side observations (``search.optimize.warm.PriorSampler``, as
    ``search.run --warm-start`` uses them; TPE only)."""
    import optuna
    from optuna.trial import TrialState

    from search.optimize.study import FAILED_CONSTRAINT, optuna_outcome

    settings = settings or Settings()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if searcher.startswith("random"):
        study: Any = Shuffled(table, seed)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from search.optimize.warm import wrap

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
        elif end.last:  # told as the Recorder does: an infeasible COMPLETE (search.optimize.study)
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
        if not full and math.isfinite(reach_epochs) and spent >= max(FRACTIONS) * budget:
            break
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
    full: bool = False,
) -> list[Trace]:
    """Every searcher x seed (seeds 0..seeds-1); ``warm``: a ``search.optimize.warm.WarmPlan`` (its
    top-k enqueued first, its prior given to TPE), as :func:`warm_plan` makes it."""
    order, prior = (warm.enqueue, warm.prior) if warm is not None else ((), ())
    return [
        simulate(table, s, seed, concurrency, top, settings, order=order, prior=prior, full=full)
        for s in searchers
        for seed in range(seeds)
    ]


def warm_plan(table: Table, source: Table, k: int) -> Any:
    """``search.run --warm-start``'s plan with another recorded table as the source: its
    configurations ranked by their recorded final values, projected onto ``table``'s space."""
    from search.optimize import warm

    trials = [
        warm.SourceTrial(dict(c.params), {}, "FAIL" if c.failed else "COMPLETE",
                         c.final if math.isfinite(c.final) else None, len(c.values), i)
        for i, c in enumerate(source.configs.values())
    ]  # fmt: skip
    src = warm.Source(source.path, source.task, source.metric, source.mode, trials)
    return warm.plan(table.space, src, k)


def tables_tau(a: Table, b: Table) -> float:
    """Kendall's tau-b between two tables' rankings of their shared configurations (final
    values; ``search.results.agreement.pairwise_kendall``, each table's direction applied)."""
    from search.results.agreement import pairwise_kendall

    fa, fb = a.finals(), b.finals()
    shared = sorted(set(fa) & set(fb))
    matrix = pd.DataFrame(
        [[a.sign() * fa[k] for k in shared], [b.sign() * fb[k] for k in shared]],
        index=["a", "b"],
        columns=shared,
    )
    return float(pairwise_kendall(matrix)["tau"].iloc[0])
