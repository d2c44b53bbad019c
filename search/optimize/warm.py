"""Warm start: seed a new study from another experiment's results (``--warm-start DIR``).

Two mechanisms, both from a source experiment folder (any search's folder, also a recorded
grid such as ``bench/curves/sbi``; another task or another dataset of this task):

1. **Enqueued top-k.** The source's trials ranked by the value its Optuna was told (COMPLETE
   trials by ``final_value`` in the source's own direction) are projected onto this space: each
   parameter of this space takes the source trial's searched value, else the value of its
   ``cfg_<name>`` column (what the trial trained with), and must lie in this space (a choice,
   or inside the range and on its step) and give a valid ``TrialConfig``. The first
   ``--warm-start-k`` valid, distinct ones are enqueued (``study.enqueue_trial`` with the user
   attribute ``warm_start_from``), so they are the study's first trials; their Parquet rows carry
   ``warm_start_from`` = the source folder. Each invalid one is listed and skipped in one line.
2. **A TPE prior.** Every source trial that projects onto this space becomes an extra
   observation for TPE in a sampler-side view of the study (:class:`PriorSampler`): never added
   to the study, so the trial budget and "one Optuna trial per Parquet row" hold. Values of two
   tasks are not comparable (AUC vs accuracy), so both sides are rank-normalised in that view:
   a source trial's value is its mid-rank quantile among the source's told trials (COMPLETE by
   value, then PRUNED below them by epochs run, as TPE orders its own), the target's COMPLETE
   values are replaced by their mid-rank quantiles among the target's COMPLETE trials (TPE only
   uses the order of values, so this changes nothing else); a FAIL source trial is an
   infeasible observation, like a FAIL row of the target. The source observations are numbered
   before the target's trials, so TPE's default weights (which ramp the oldest observations down
   once a split holds more than 25) fade them as the target's own trials accrue; the source's
   observations also count towards ``n_startup_trials``, so TPE models from the first ask.

Random and grid samplers get no prior (grid searches cannot be warm-started at all: the grid
trains every point once).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from lssat.errors import ConfigError, DataError
from search.optimize.space import SearchSpace
from search.optimize.space.check import _check

ATTR_WARM = "warm_start_from"  # Optuna user attribute and Parquet column
DEFAULT_K = 5
# the prior fades out over this many finished target trials (0: twice TPE's n_startup_trials)
FADE_TRIALS = 0


@dataclass
class SourceTrial:
    """One finished trial of the source: searched params, full config, what Optuna was told."""

    params: dict[str, Any]
    cfg: dict[str, Any]
    status: str  # COMPLETE | PRUNED | FAIL
    value: float | None
    epochs: int = 0
    number: int = 0


@dataclass
class Source:
    """A source experiment: its folder, task, metric, direction and finished trials."""

    path: str
    task: str
    metric: str
    mode: str
    trials: list[SourceTrial]

    @property
    def param_names(self) -> set[str]:
        """Every parameter the source searched (in any trial)."""
        return {k for t in self.trials for k in t.params}

    def told_order(self) -> list[SourceTrial]:
        """Best first, as TPE orders trials: COMPLETE by value (the source's direction), then
        PRUNED by epochs run (more first) and last value; FAIL trials are left out."""
        sign = 1.0 if self.mode == "max" else -1.0
        done = [t for t in self.trials if t.status == "COMPLETE" and _finite(t.value)]
        pruned = [t for t in self.trials if t.status == "PRUNED"]
        done.sort(key=lambda t: (-sign * float(t.value), t.number))
        pruned.sort(key=lambda t: (-t.epochs, -sign * float(t.value) if _finite(t.value) else 0.0))
        return done + pruned


@dataclass
class WarmPlan:
    """What a warm start does to a new study."""

    source: str
    enqueue: list[dict[str, Any]] = field(default_factory=list)  # in order
    skipped: list[str] = field(default_factory=list)  # one line each
    prior: list[FrozenTrial] = field(default_factory=list)  # sampler-side observations
    shared: list[str] = field(default_factory=list)  # parameters both spaces search

    def describe(self, k: int) -> list[str]:
        """The lines ``search.run`` prints."""
        out = [
            f"warm start from {self.source}: shared parameters {', '.join(self.shared)}; "
            f"{len(self.enqueue)} of its top {k} configurations enqueued first, "
            f"{len(self.prior)} of its trials as TPE prior observations (not in this study)"
        ]
        out += [f"  skipped: {line}" for line in self.skipped]
        return out


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


# ------------------------------------------------------------------------- reading a source
def read_source(path: str | Path) -> Source:
    """The source experiment's trials; ``DataError`` (one sentence) unless ``path`` is a
    search's experiment folder with at least one COMPLETE trial."""
    import json

    from search import results

    exp = Path(path).expanduser()
    if not exp.is_dir():
        raise DataError(f"--warm-start {path} is not a folder; give a search's experiment folder")
    if not (exp / "space.yaml").is_file() or not any((exp / results.TRIALS_DIR).glob("*.parquet")):
        raise DataError(
            f"--warm-start {path} is not an experiment folder (it needs space.yaml and "
            f"{results.TRIALS_DIR}/*.parquet, as search.run writes them)"
        )
    try:
        rows = results.read_trials(exp)
    except Exception as exc:  # a corrupt or newer file: one sentence from read_trials
        raise DataError(f"--warm-start {path}: its trial rows cannot be read ({exc})") from None
    trials = []
    for rec in rows.to_dict("records"):
        raw = rec.get("params")
        params = json.loads(raw) if isinstance(raw, str) and raw else {}
        cfg = {
            k[len(results.CFG_PREFIX) :]: _plain(v)
            for k, v in rec.items()
            if k.startswith(results.CFG_PREFIX)
        }
        value = _plain(rec.get("final_value"))
        trials.append(
            SourceTrial(
                params=params,
                cfg={k: v for k, v in cfg.items() if v is not None},
                status=str(rec.get("status")),
                value=float(value) if _finite(value) else None,
                epochs=int(_plain(rec.get("epochs_run")) or 0),
                number=int(_plain(rec.get("number")) or 0),
            )
        )
    first = rows.iloc[0]
    src = Source(
        str(exp.resolve()),
        str(first.get("task")),
        str(first.get("metric")),
        str(first.get("mode") or "max"),
        trials,
    )
    if not any(t.status == "COMPLETE" and _finite(t.value) for t in trials):
        raise DataError(f"--warm-start {path} holds no COMPLETE trial to start from")
    return src


# -------------------------------------------------------------------------- projecting
class _Projector:
    """A stand-in for ``optuna.Trial`` that answers each ``suggest_*`` with the source trial's
    value and records the distribution Optuna would have used (or why the value does not fit)."""

    def __init__(self, trial: SourceTrial):
        self.trial = trial
        self.distributions: dict[str, BaseDistribution] = {}
        self.problem: str | None = None

    def _value(self, name: str, dist: BaseDistribution) -> Any:
        if name in self.trial.params:
            value = self.trial.params[name]
        elif name in self.trial.cfg:
            value = self.trial.cfg[name]
        else:
            self.problem = self.problem or f"it has no value for {name}"
            return _first(dist)
        try:
            ok = dist._contains(dist.to_internal_repr(value))
        except (ValueError, TypeError):
            ok = False
        if isinstance(dist, IntDistribution) and not (_finite(value) and float(value).is_integer()):
            ok = False
        if not ok:
            self.problem = self.problem or f"{name}={value!r} is not in this space ({_show(dist)})"
            return _first(dist)
        self.distributions[name] = dist
        return int(value) if isinstance(dist, IntDistribution) else value

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._value(name, CategoricalDistribution(list(choices)))

    def suggest_float(
        self, name: str, low: float, high: float, *, step: Any = None, log: bool = False
    ) -> float:
        return self._value(name, FloatDistribution(low, high, log=log, step=step))

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        return self._value(name, IntDistribution(low, high, log=log, step=step))


def _first(dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[0]
    return dist.low  # type: ignore[attr-defined]


def _show(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return f"choices {list(dist.choices)}"
    d: Any = dist
    step = f", step {d.step}" if getattr(d, "step", None) not in (None, 1) else ""
    return f"{d.low}..{d.high}{step}"


def project(
    space: SearchSpace, trial: SourceTrial
) -> tuple[dict[str, Any] | None, dict[str, BaseDistribution], str | None]:
    """(this space's params for the source trial, their distributions, None), or
    (None, {}, why it does not fit)."""
    proj = _Projector(trial)
    params = space.suggest(proj)
    if proj.problem:
        return None, {}, proj.problem
    err = _check(space, params)
    if err:
        return None, {}, f"its config is invalid here ({err})"
    return params, proj.distributions, None


def _label(trial: SourceTrial, metric: str) -> str:
    shown = f"{metric} {trial.value:.4g}" if trial.value is not None else trial.status
    return f"source trial #{trial.number} ({shown})"


# ------------------------------------------------------------------------------ the plan
def plan(space: SearchSpace, source: Source, k: int) -> WarmPlan:
    """Top-k enqueued configurations and the TPE prior of ``source`` in ``space``.

    ``ConfigError`` when the two spaces share no searched parameter."""
    mine = [p.name for p in space.params]
    shared = [n for n in mine if n in source.param_names]
    if not shared:
        theirs = ", ".join(sorted(source.param_names)) or "none"
        raise ConfigError(
            f"--warm-start {source.path} holds a {source.task} search whose parameters "
            f"({theirs}) share none with this space's ({', '.join(mine) or 'none'}); "
            "nothing can be carried over"
        )
    out = WarmPlan(source.path, shared=shared)
    order = source.told_order()
    seen: set[str] = set()
    for t in order:
        if len(out.enqueue) >= k or t.status != "COMPLETE":
            break
        params, _, why = project(space, t)
        if params is None:
            out.skipped.append(f"{_label(t, source.metric)}: {why}")
            continue
        sig = repr(sorted(params.items()))
        if sig in seen:
            out.skipped.append(
                f"{_label(t, source.metric)}: same configuration here as a better one"
            )
            continue
        seen.add(sig)
        out.enqueue.append(params)
    out.prior = prior_trials(space, source, order)
    return out


def quantiles(n: int) -> np.ndarray:
    """Mid-rank quantiles of ``n`` items ordered best first: best -> (n - 0.5) / n."""
    return (n - np.arange(n) - 0.5) / max(n, 1)


def prior_trials(
    space: SearchSpace, source: Source, order: Sequence[SourceTrial] | None = None
) -> list[FrozenTrial]:
    """The source's trials that project onto ``space`` as rank-normalised FrozenTrials
    (numbered -N..-1, best-ranked last), for :class:`PriorSampler`; FAIL ones infeasible."""
    order = list(order if order is not None else source.told_order())
    maximize = space.mode == "max"
    q = quantiles(len(order))
    # tied trials (same status, epochs and value: e.g. several at accuracy 1.0) share their mean
    ties = [(t.status, t.epochs if t.status == "PRUNED" else 0, t.value) for t in order]
    start = 0
    for i in range(1, len(order) + 1):
        if i == len(order) or ties[i] != ties[start]:
            q[start:i] = q[start:i].mean()
            start = i
    made: list[FrozenTrial] = []
    for t, qi in zip(order, q, strict=True):
        params, dists, _ = project(space, t)
        if params is not None:
            made.append(_frozen(params, dists, float(qi if maximize else 1 - qi)))
    for t in source.trials:
        if t.status == "FAIL":
            params, dists, _ = project(space, t)
            if params is not None:
                worst = -math.inf if maximize else math.inf
                made.append(_frozen(params, dists, worst, failed=True))
    n = len(made)
    for i, ft in enumerate(reversed(made)):  # the best gets the number closest to the target's
        ft.number = -(n - i)
        ft._trial_id = -(n - i)
    return list(reversed(made))


def _frozen(
    params: Mapping[str, Any],
    dists: Mapping[str, BaseDistribution],
    value: float,
    failed: bool = False,
) -> FrozenTrial:
    from search.optimize.objectives import FAILED_CONSTRAINT

    return optuna.trial.create_trial(
        state=TrialState.COMPLETE,
        value=value,
        params=dict(params),
        distributions=dict(dists),
        user_attrs={"warm_start_prior": True},
        constraints={FAILED_CONSTRAINT: 1.0 if failed else 0.0},
    )


# --------------------------------------------------------------------------- the sampler
class _PriorView:
    """The study as the wrapped sampler sees it: the target's trials (COMPLETE values
    rank-normalised) plus the prior observations still in use (see :func:`fade`). Everything
    else is the real study's."""

    def __init__(self, study: optuna.Study, prior: Sequence[FrozenTrial], horizon: int):
        self._real = study
        self._prior = list(prior)
        self._horizon = horizon

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Any = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        own = self._real._get_trials(deepcopy=False, states=None, use_cache=use_cache)
        done = sum(t.state.is_finished() for t in own)
        if states is not None:
            own = [t for t in own if t.state in states]
        ranked = _normalise(own, self._real.direction)
        kept = fade(self._prior, done, self._horizon)
        extra = [t for t in kept if states is None or t.state in states]
        out = extra + ranked
        return copy.deepcopy(out) if deepcopy else out

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


def fade(prior: Sequence[FrozenTrial], done: int, horizon: int) -> list[FrozenTrial]:
    """The prior observations in use once the target has ``done`` finished trials: all of them
    at first, then an evenly rank-spaced subset of ``1 - done / horizon`` of them (the best
    and the worst kept longest), none from ``horizon`` finished trials on."""
    n = len(prior)
    keep = n if horizon <= 0 else math.ceil(n * max(0.0, 1.0 - done / horizon))
    if keep >= n:
        return list(prior)
    if keep <= 0:
        return []
    idx = sorted({int(round(i)) for i in np.linspace(0, n - 1, keep)})
    return [prior[i] for i in idx]


def _feasible_value(t: FrozenTrial) -> bool:
    from search.optimize.objectives import FAILED_CONSTRAINT

    return (
        t.state == TrialState.COMPLETE
        and t.constraints.get(FAILED_CONSTRAINT, 0.0) <= 0
        and t.values is not None
        and len(t.values) == 1
        and math.isfinite(t.values[0])
    )


def _normalise(trials: list[FrozenTrial], direction: Any) -> list[FrozenTrial]:
    """Copies of the COMPLETE feasible trials with their values replaced by mid-rank
    quantiles (ties share one), oriented like the study; the others as they are."""
    from scipy.stats import rankdata

    idx = [i for i, t in enumerate(trials) if _feasible_value(t)]
    if not idx:
        return trials
    maximize = direction == optuna.study.StudyDirection.MAXIMIZE
    vals = np.array([trials[i].values[0] for i in idx], dtype=float)
    good = vals if maximize else -vals
    q = (rankdata(good, method="average") - 0.5) / len(vals)  # best -> (n - 0.5) / n
    out = list(trials)
    for i, qi in zip(idx, q, strict=True):
        t = copy.copy(trials[i])
        t._values = [float(qi if maximize else 1 - qi)]
        out[i] = t
    return out


class PriorSampler(optuna.samplers.BaseSampler):
    """Wraps a sampler (TPE) so it sees ``prior`` observations next to the study's own trials
    (see the module docstring); the study itself is never changed."""

    def __init__(
        self,
        inner: optuna.samplers.BaseSampler,
        prior: Sequence[FrozenTrial],
        horizon: int | None = None,
    ):
        self.inner = inner
        self.prior = list(prior)
        startup = int(getattr(inner, "_n_startup_trials", 10))
        self.horizon = FADE_TRIALS if horizon is None else horizon
        self.horizon = self.horizon or 2 * startup

    def _view(self, study: optuna.Study) -> Any:
        return _PriorView(study, self.prior, self.horizon)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(self._view(study), trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.inner.sample_relative(self._view(study), trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.inner.sample_independent(
            self._view(study), trial, param_name, param_distribution
        )

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(self._view(study), trial)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any
    ) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


def wrap(sampler: optuna.samplers.BaseSampler, prior: Sequence[FrozenTrial]) -> Any:
    """``sampler`` with the prior (TPE only: other samplers ignore observations)."""
    if prior and isinstance(sampler, optuna.samplers.TPESampler):
        return PriorSampler(sampler, prior)
    return sampler


# ------------------------------------------------------------------------------- the CLI
def check_k(k: int | None, given: bool) -> int:
    """``--warm-start-k``: a positive integer, and only with ``--warm-start``."""
    if k is None:
        return DEFAULT_K
    if not given:
        raise ConfigError("--warm-start-k is given without --warm-start; add the source folder")
    if k < 1:
        raise ConfigError(f"--warm-start-k is {k}; it must be at least 1")
    return k


def summary_lines(exp_dir: Path, trials: Any) -> list[str]:
    """The end-of-search summary's warm-start lines: the source, which trials were enqueued
    from it and how they did, the prior's size (from ``search.json`` and the trial rows)."""
    from search.results.settings import load_settings

    try:
        warm = (load_settings(Path(exp_dir)) or {}).get("warm_start")
    except DataError:
        warm = None
    if not warm:
        return []
    out = [
        f"warm start:  from {warm.get('from')} ({len(warm.get('enqueued') or [])} "
        f"configurations enqueued, {warm.get('prior_trials', 0)} prior observations for TPE)"
    ]
    if trials is None or trials.empty or ATTR_WARM not in trials:
        return out
    mine = trials[trials[ATTR_WARM].notna()].sort_values("number")
    for rec in mine.to_dict("records"):
        value = rec.get("final_value")
        shown = f"{rec['metric']} {value:.4f}" if _finite(value) else "no value"
        out.append(f"  #{int(rec['number'])} enqueued from it: {rec['status']}, {shown}")
    return out
