"""The search space as objects: conditions, parameters and :class:`SearchSpace` (what a
space file holds once parsed), with the seeded whole-space draw it samples grid points with."""

from __future__ import annotations

import math
import operator
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

TOP_KEYS = (
    "task",
    "metric",
    "mode",
    "trials",
    "scheduler",
    "sampler",
    "fixed",
    "params",
    "enqueue",
    "description",
    "final",
    "objectives",
    "balance",
)
PARAM_KEYS = ("choices", "low", "high", "log", "step", "when", "grid")
SCHEDULER_KEYS = {"grace_period": int, "grace_fraction": float, "reduction_factor": int}
SAMPLER_KEYS = {"n_startup_trials": int, "n_ei_candidates": int}
FINAL_KEYS = {"top_k": int, "seeds": int}  # the held-out stage run after the search
SAMPLERS = ("tpe", "grid", "random")  # sampler.name; tpe is the default
SCHEDULERS = ("asha", "none")  # scheduler.name (or `scheduler: none`); asha is the default
MAX_GRID = 10_000  # grid points a space may hold
# fields a space may not search (they are the search's own knobs or free-form)
UNSEARCHABLE = ("task", "epochs", "extra")
# fields that define which rows every trial trains and is scored on: fixed, never searched
DATA_FIELDS = ("train_subset", "val_subset")
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
}
DEFAULT_TRIALS = 20
CHECK_DRAWS = 64  # random whole-space draws checked against TrialConfig
CHECK_FORCED = 4  # draws checked per forced value (each choice, each bound)


class SuggestTrial(Protocol):
    """The part of ``optuna.Trial`` a space needs (also implemented by the checker)."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...
    def suggest_float(
        self, name: str, low: float, high: float, *, step: Any = None, log: bool = False
    ) -> float: ...
    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int: ...


@dataclass(frozen=True)
class Condition:
    """``key <op> value``; a parameter is sampled only when all its conditions hold."""

    key: str
    op: str
    value: Any

    def holds(self, values: Mapping[str, Any]) -> bool:
        """False when ``key`` is absent (inactive) or the comparison fails."""
        if self.key not in values:
            return False
        try:
            return bool(OPS[self.op](values[self.key], self.value))
        except TypeError:
            return False

    def to_yaml(self) -> Any:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        if self.op == "eq" or self.op == "in":
            return value
        return {self.op: value}


@dataclass(frozen=True)
class Param:
    """One searched ``TrialConfig`` field."""

    name: str
    kind: str  # categorical | int | float
    choices: tuple[Any, ...] = ()
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    when: tuple[tuple[Condition, ...], ...] = ()  # any alternative, all conditions in it
    grid: tuple[Any, ...] = ()  # a range's values under sampler grid

    def grid_values(self) -> list[Any]:
        """The values this parameter takes in a grid: its choices, or its ``grid:`` list."""
        return list(self.choices) if self.kind == "categorical" else list(self.grid)

    def active(self, values: Mapping[str, Any]) -> bool:
        return not self.when or any(all(c.holds(values) for c in alt) for alt in self.when)

    def suggest(self, trial: SuggestTrial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(
            self.name, float(self.low), float(self.high), step=self.step, log=self.log
        )

    def edge_values(self) -> list[Any]:
        """The values worth checking: every choice, or both bounds."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]

    def to_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = (
            {"choices": list(self.choices)}
            if self.kind == "categorical"
            else {"low": self.low, "high": self.high}
        )
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        if self.grid:
            out["grid"] = list(self.grid)
        if self.when:
            alts = [{c.key: c.to_yaml() for c in alt} for alt in self.when]
            out["when"] = alts[0] if len(alts) == 1 else alts
        return out


@dataclass
class SearchSpace:
    """A loaded, validated search space (see the module docstring for the file format)."""

    path: str
    task: str
    metric: str
    mode: str
    trials: int = DEFAULT_TRIALS
    fixed: dict[str, Any] = field(default_factory=dict)
    params: list[Param] = field(default_factory=list)
    enqueue: list[dict[str, Any]] = field(default_factory=list)
    scheduler: dict[str, Any] = field(default_factory=dict)  # ASHA settings, or {name: none}
    sampler: dict[str, Any] = field(default_factory=dict)  # TPE settings and/or {name: ...}
    description: str = ""
    final: dict[str, int] = field(default_factory=dict)  # {top_k, seeds}: held-out stage
    # several objectives {name: max|min} in order (search.optimize.objectives); {} = the one metric
    objectives: dict[str, str] = field(default_factory=dict)
    # a categorical parameter whose levels get equal trial counts, round-robin ("" = none)
    balance: str = ""

    @property
    def multi_objective(self) -> bool:
        """True when the space gives two or more objectives."""
        return len(self.objectives) > 1

    @property
    def sampler_name(self) -> str:
        """tpe (default) | grid | random."""
        return str(self.sampler.get("name", "tpe"))

    @property
    def early_stopping(self) -> bool:
        """False under ``scheduler: none`` (recording mode: every trial runs all epochs)."""
        return self.scheduler.get("name", "asha") != "none"

    def grid(self) -> dict[str, list[Any]]:
        """Each parameter's grid values (``GridSampler``'s search space), in file order."""
        return {p.name: p.grid_values() for p in self.params}

    def grid_points(self) -> list[dict[str, Any]]:
        """The distinct active configurations of the grid, in product order."""
        import itertools

        names = [p.name for p in self.params]
        seen: dict[str, dict[str, Any]] = {}
        for combo in itertools.product(*(p.grid_values() for p in self.params)):
            params = self.suggest(
                _DrawTrial(random.Random(0), dict(zip(names, combo, strict=True)))
            )
            seen.setdefault(repr(sorted(params.items())), params)
        return list(seen.values())

    def balance_levels(self) -> tuple[str, tuple[Any, ...]] | None:
        """(parameter, its levels) of ``balance:``, or None."""
        if not self.balance:
            return None
        param = next(p for p in self.params if p.name == self.balance)
        return param.name, tuple(param.choices)

    def sampler_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`search.optimize.study.make_sampler` for this space."""
        out: dict[str, Any] = dict(self.sampler)
        if self.sampler_name == "grid":
            out["grid"] = self.grid()
        return out

    @property
    def epochs(self) -> int:
        """Epochs per trial (the fixed value, else ``TrialConfig``'s default)."""
        from lssat.config import TrialConfig

        return int(self.fixed.get("epochs", TrialConfig.epochs))

    def suggest(self, trial: SuggestTrial) -> dict[str, Any]:
        """Sample the active parameters, in file order (define-by-run)."""
        values: dict[str, Any] = dict(self.fixed)
        sampled: dict[str, Any] = {}
        for p in self.params:
            if p.active(values):
                sampled[p.name] = values[p.name] = p.suggest(trial)
        return sampled

    def config(self, params: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
        """The flat config dict of one trial: task, fixed values, sampled params, overrides.

        ``epochs`` is always there (the Recorder tells COMPLETE from early-stopped by it), also
        where the file leaves it at ``TrialConfig``'s default."""
        return {"task": self.task, "epochs": self.epochs, **self.fixed, **params, **overrides}

    def to_dict(self) -> dict[str, Any]:
        """The resolved space, in the file format (what the experiment folder keeps)."""
        out: dict[str, Any] = {
            "task": self.task,
            "metric": self.metric,
            "mode": self.mode,
            "trials": self.trials,
        }
        if self.description:
            out["description"] = self.description
        if self.objectives:
            out["objectives"] = dict(self.objectives)
        if self.scheduler:
            out["scheduler"] = "none" if not self.early_stopping else dict(self.scheduler)
        if self.sampler:
            out["sampler"] = dict(self.sampler)
        if self.balance:
            out["balance"] = self.balance
        out["fixed"] = dict(self.fixed)
        out["params"] = {p.name: p.to_yaml() for p in self.params}
        if self.enqueue:
            out["enqueue"] = [dict(e) for e in self.enqueue]
        if self.final:
            out["final"] = dict(self.final)
        return out

    def dump(self, path: str | Path) -> None:
        """Write the resolved space as YAML."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


# ---------------------------------------------------------------------------- loading


class _DrawTrial:
    """A seeded random stand-in for ``optuna.Trial`` with some values forced."""

    def __init__(self, rng: random.Random, forced: Mapping[str, Any] | None = None):
        self.rng = rng
        self.forced = dict(forced or {})

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.forced[name] if name in self.forced else self.rng.choice(list(choices))

    def suggest_float(
        self, name: str, low: float, high: float, *, step: Any = None, log: bool = False
    ) -> float:
        if name in self.forced:
            return self.forced[name]
        if log:
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        if step:
            return low + step * self.rng.randint(0, int((high - low) // step))
        return self.rng.uniform(low, high)

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        if name in self.forced:
            return self.forced[name]
        return low + step * self.rng.randint(0, (high - low) // step)
