"""Search spaces: ``spaces/<task>.yaml`` -> a validated, define-by-run Optuna space.

A space file holds the task, its metric and mode, the default trial budget, fixed
``TrialConfig`` values and the searched parameters, in the order Optuna samples them::

    task: deepfake
    metric: val_auc            # optional: defaults to lssat.tasks.TASKS[task].metric
    mode: max                  # optional: defaults to the task's mode
    # objectives: {val_auc: max, gflops: min}   # instead: several (search.objectives)
    trials: 30                 # default for --trials
    scheduler: {grace_fraction: 0.33, reduction_factor: 2}  # ASHA, optional; `none`: no stopping
    sampler: {n_startup_trials: 10}                     # TPE, optional; {name: grid|random}
    fixed: {epochs: 10, img_size: 64}
    params:
      backbone: {choices: [vit_tiny_patch16_224, resnet18]}
      lr: {low: 1.0e-4, high: 3.0e-3, log: true}
      aux_weight: {choices: [0.0, 0.5, 0.75]}
      descriptor: {choices: [lbp, ldp], when: {aux_weight: {gt: 0}}}
      desc_P: {choices: [8, 16], when: {descriptor: lbp}}
    enqueue:                   # optional: configs to evaluate first (Optuna enqueue_trial)
      - {backbone: resnet18, lr: 1.0e-3, aux_weight: 0.0}
    final: {top_k: 3, seeds: 3}  # optional: the held-out stage after the search (search.final)

``train_subset`` / ``val_subset`` may be fixed but never searched: every trial is scored on
the same rows.

An enqueued categorical value must be one of the choices; a number may lie outside its range
(Optuna allows it, with a warning); either way the resulting config must pass ``TrialConfig``.

A parameter is ``choices`` (categorical) or ``low``/``high`` (int when both bounds are
integers and the field is an int, else float; ``log`` and ``step`` optional). ``when`` makes it
conditional: ``{key: value}``, ``{key: [values]}`` or ``{key: {gt|ge|lt|le|ne|in|not_in: x}}``
on an earlier parameter or a fixed key; all entries of a mapping must hold, and a list of
mappings means any one of them. An inactive parameter keeps its
fixed or ``TrialConfig`` default value. Every key, value and bound is checked against
``TrialConfig`` before a search starts (``ConfigError`` naming file, key and reason), and so are
seeded random combinations of the parameters, so the sampler can never produce an invalid config.

ASHA (``scheduler``): ``reduction_factor`` (keeps 1 in that many per rung) and either
``grace_period`` (epochs every trial runs before it can be stopped) or ``grace_fraction`` (the
same as a fraction of the trial's epochs, in (0, 1]: grace = ceil(fraction x epochs), so it
follows ``--epochs``); without either, search.run's default: ``grace_fraction`` 0.33 and
reduction factor 2 (tuned on the learning-curve tables, docs/search.md).

Recording mode (learning-curve tables, ``bench/curves/``): ``sampler: {name: grid}`` trains every
point of the grid (Optuna's ``GridSampler``; ``trials`` defaults to the grid size and may not
exceed it), ``sampler: {name: random}`` draws with Optuna's ``RandomSampler``, and
``scheduler: none`` turns early stopping off (every trial runs all its epochs). The grid is the
product of every parameter's ``choices``; a range joins it only with explicit ``grid:`` values
(``lr: {low: 1.0e-4, high: 3.0e-3, log: true, grid: [3.0e-4, 1.0e-3]}``), and ``grid:`` is refused
under any other sampler. A ``when`` condition must hold at every grid point (a parameter inactive
at some points would train the same configuration twice), and every grid point must pass
``TrialConfig``.
"""

from __future__ import annotations

import difflib
import math
import operator
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import yaml

from lssat.errors import ConfigError

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
    # several objectives {name: max|min} in order (search.objectives); {} = the one metric
    objectives: dict[str, str] = field(default_factory=dict)

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

    def sampler_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`search.study.make_sampler` for this space."""
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
def _field_types() -> dict[str, str]:
    from lssat.config import TrialConfig

    return {
        f.name: f.type if isinstance(f.type, str) else f.type.__name__ for f in fields(TrialConfig)
    }


def _unknown(where: str, key: str, known: list[str] | tuple[str, ...]) -> ConfigError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(known)}"
    return ConfigError(f"{where}: unknown key {key!r}{hint}")


def _coerce(value: Any, kind: str) -> Any:
    """YAML 1.1 reads ``1e-4`` as a string: turn numeric strings into numbers for number fields."""
    if isinstance(value, str) and kind in ("int", "float"):
        try:
            num = float(value)
        except ValueError:
            return value
        return int(num) if kind == "int" and num.is_integer() else num
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _parse_when(where: str, raw: Any, known: set[str]) -> tuple[tuple[Condition, ...], ...]:
    if isinstance(raw, list) and raw:
        return tuple(_parse_all(f"{where}.when[{i}]", r, known)[0] for i, r in enumerate(raw))
    return _parse_all(f"{where}.when", raw, known)


def _parse_all(where: str, raw: Any, known: set[str]) -> tuple[tuple[Condition, ...]]:
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(
            f"{where} must be a mapping like {{descriptor: lbp}} or a list of such mappings"
        )
    conds = []
    for key, spec in raw.items():
        if key not in known:
            raise ConfigError(
                f"{where} refers to {key!r}, which is neither a fixed key nor an earlier parameter"
            )
        if isinstance(spec, Mapping):
            if len(spec) != 1 or next(iter(spec)) not in OPS:
                raise ConfigError(f"{where}.{key} must be one comparison, one of {', '.join(OPS)}")
            op, value = next(iter(spec.items()))
            if op in ("in", "not_in") and not isinstance(value, list):
                raise ConfigError(f"{where}.{key}.{op} needs a list of values")
            conds.append(Condition(key, op, tuple(value) if isinstance(value, list) else value))
        elif isinstance(spec, list):
            conds.append(Condition(key, "in", tuple(spec)))
        else:
            conds.append(Condition(key, "eq", spec))
    return (tuple(conds),)


def _parse_param(where: str, name: str, raw: Any, kind: str, known: set[str]) -> Param:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping with 'choices' or 'low'/'high'")
    for key in raw:
        if key not in PARAM_KEYS:
            raise _unknown(where, key, PARAM_KEYS)
    when = _parse_when(where, raw["when"], known) if "when" in raw else ()
    if "choices" in raw:
        extra = [k for k in ("low", "high", "log", "step", "grid") if k in raw]
        if extra:
            raise ConfigError(f"{where} has both 'choices' and {extra[0]!r}; use one or the other")
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}.choices must be a non-empty list")
        choices = [_coerce(c, kind) for c in choices]
        if len({repr(c) for c in choices}) != len(choices):
            raise ConfigError(f"{where}.choices lists a value twice")
        for c in choices:
            if not (c is None or isinstance(c, bool | int | float | str)):
                raise ConfigError(f"{where}.choices holds {c!r}; only scalars can be choices")
        return Param(name, "categorical", choices=tuple(choices), when=when)
    if "low" not in raw or "high" not in raw:
        raise ConfigError(f"{where} needs 'choices', or both 'low' and 'high'")
    if kind not in ("int", "float"):
        raise ConfigError(f"{where}: field {name!r} is a {kind}; give 'choices', not a range")
    low, high = _coerce(raw["low"], kind), _coerce(raw["high"], kind)
    step = _coerce(raw["step"], kind) if raw.get("step") is not None else None
    for label, v in (("low", low), ("high", high), ("step", step)):
        if v is None and label == "step":
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(f"{where}.{label} is {v!r}; it must be a finite number")
        if kind == "int" and not float(v).is_integer():
            raise ConfigError(f"{where}.{label} is {v!r}; field {name!r} takes integers")
    if not low < high:
        raise ConfigError(f"{where}: low {low!r} must be below high {high!r}")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log is {log!r}; it must be true or false")
    if log and low <= 0:
        raise ConfigError(f"{where}: log scale needs low > 0, got {low!r}")
    if log and step is not None:
        raise ConfigError(f"{where}: 'log' and 'step' cannot be combined")
    if step is not None and step <= 0:
        raise ConfigError(f"{where}.step is {step!r}; it must be positive")
    cast = int if kind == "int" else float
    grid = _parse_grid(where, raw.get("grid"), kind, cast(low), cast(high)) if "grid" in raw else ()
    return Param(
        name,
        kind,
        low=cast(low),
        high=cast(high),
        log=log,
        step=None if step is None else cast(step),
        when=when,
        grid=grid,
    )


def _parse_grid(where: str, raw: Any, kind: str, low: float, high: float) -> tuple[Any, ...]:
    """A range's ``grid:`` values: a non-empty list of distinct numbers within [low, high]."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}.grid must be a non-empty list of values")
    values = [_coerce(v, kind) for v in raw]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(f"{where}.grid holds {v!r}; it must hold finite numbers")
        if kind == "int" and not float(v).is_integer():
            raise ConfigError(f"{where}.grid holds {v!r}; this field takes integers")
        if not low <= v <= high:
            raise ConfigError(f"{where}.grid holds {v!r}, outside low {low!r} .. high {high!r}")
    if len(set(values)) != len(values):
        raise ConfigError(f"{where}.grid lists a value twice")
    return tuple(int(v) if kind == "int" else float(v) for v in values)


def _int_section(where: str, raw: Any, allowed: dict[str, type]) -> dict[str, Any]:
    """Positive integer settings; a ``float`` key is a fraction in (0, 1]."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    out = {}
    for key, value in raw.items():
        if key not in allowed:
            raise _unknown(where, key, list(allowed))
        if allowed[key] is float:
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise ConfigError(f"{where}.{key} is {value!r}; it must be a fraction in (0, 1]")
            out[key] = float(value)
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}.{key} is {value!r}; it must be a positive integer")
        out[key] = value
    return out


def _named_section(
    where: str, raw: Any, allowed: dict[str, type], names: tuple[str, ...]
) -> dict[str, Any]:
    """A scheduler/sampler mapping: its integer settings plus an optional ``name``."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        raw = {"name": raw}  # `scheduler: none`
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping (or one of: {', '.join(names)})")
    name = raw.get("name", names[0])
    if name not in names:
        raise ConfigError(f"{where}.name is {name!r}; allowed: {', '.join(names)}")
    out: dict[str, Any] = _int_section(
        where, {k: v for k, v in raw.items() if k != "name"}, allowed
    )
    if out and name != names[0]:
        raise ConfigError(f"{where}.{next(iter(out))} only applies to {names[0]}, not {name!r}")
    if "grace_period" in out and "grace_fraction" in out:
        raise ConfigError(f"{where} sets both grace_period and grace_fraction; keep one")
    if "name" in raw:
        out = {"name": name, **out}
    return out


def _check_grid(space: SearchSpace, raw: Mapping[str, Any]) -> None:
    """Grid sampling: explicit values for ranges, no duplicate points, a matching trial count."""
    path = space.path
    for p in space.params:
        if p.grid and space.sampler_name != "grid":
            raise ConfigError(
                f"{path}: key 'params.{p.name}.grid' is only used by sampler grid, but the "
                f"sampler is {space.sampler_name!r}"
            )
    if space.sampler_name != "grid":
        return
    if not space.params:
        raise ConfigError(f"{path}: key 'sampler' is grid, but 'params' is empty")
    if space.enqueue:
        raise ConfigError(
            f"{path}: key 'enqueue' cannot be combined with sampler grid (the grid already "
            "trains every configuration once)"
        )
    size = 1
    for p in space.params:
        if p.kind != "categorical" and not p.grid:
            raise ConfigError(
                f"{path}: key 'params.{p.name}' is a range; sampler grid needs its values as "
                "'grid: [...]'"
            )
        size *= len(p.grid_values())
    if size > MAX_GRID:
        raise ConfigError(
            f"{path}: key 'sampler' is grid, but the grid has {size} points (at most {MAX_GRID})"
        )
    points = space.grid_points()
    if len(points) != size:
        cond = next(p.name for p in space.params if p.when)
        raise ConfigError(
            f"{path}: key 'params.{cond}' is conditional, so the grid's {size} points hold only "
            f"{len(points)} distinct configurations; fix the condition's parameter to values "
            "where it holds"
        )
    if "trials" not in raw:
        space.trials = size
    elif space.trials > size:
        raise ConfigError(
            f"{path}: key 'trials' is {space.trials}, but the grid has only {size} points; "
            "drop 'trials' or lower it"
        )
    for params in points:
        err = _check(space, params)
        if err:
            raise ConfigError(f"{path}: the grid point {_show(params)} is invalid: {err}")


def parse_space(raw: Any, path: str, task: str | None = None) -> SearchSpace:
    """Build and validate a space from its parsed YAML; ``task`` (from the CLI) must match."""
    from lssat.tasks import TASKS

    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: a space file must be a YAML mapping with 'fixed'/'params'")
    for key in raw:
        if key not in TOP_KEYS:
            raise _unknown(path, key, TOP_KEYS)
    space_task = raw.get("task", task)
    if space_task is None:
        raise ConfigError(f"{path}: key 'task' is missing; allowed: {', '.join(sorted(TASKS))}")
    if space_task not in TASKS:
        raise ConfigError(
            f"{path}: key 'task' is {space_task!r}; allowed: {', '.join(sorted(TASKS))}"
        )
    if task is not None and space_task != task:
        raise ConfigError(f"{path}: key 'task' is {space_task!r}, but --task is {task!r}")
    spec = TASKS[space_task]
    objectives = _objectives(raw, path, space_task, spec)
    if objectives:
        raw = {**raw, "metric": next(iter(objectives)), "mode": next(iter(objectives.values()))}
    metric = raw.get("metric", spec.metric)
    if not isinstance(metric, str) or not metric.startswith("val_"):
        raise ConfigError(
            f"{path}: key 'metric' is {metric!r}; it must be a validation metric such as "
            f"{spec.metric!r}"
        )
    mode = raw.get("mode", spec.mode if metric == spec.metric else "max")
    if mode not in ("max", "min"):
        raise ConfigError(f"{path}: key 'mode' is {mode!r}; allowed: max, min")
    trials = raw.get("trials", DEFAULT_TRIALS)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"{path}: key 'trials' is {trials!r}; it must be a positive integer")

    types = _field_types()
    fixed_raw = raw.get("fixed") or {}
    if not isinstance(fixed_raw, Mapping):
        raise ConfigError(f"{path}: key 'fixed' must be a mapping of TrialConfig fields")
    fixed: dict[str, Any] = {}
    for key, value in fixed_raw.items():
        if key not in types:
            raise _unknown(f"{path}: key 'fixed'", key, sorted(types))
        if key == "task":
            raise ConfigError(f"{path}: key 'fixed.task' is not allowed; use the top-level 'task'")
        fixed[key] = _coerce(value, types[key])

    params_raw = raw.get("params") or {}
    if not isinstance(params_raw, Mapping):
        raise ConfigError(f"{path}: key 'params' must be a mapping of TrialConfig fields")
    params: list[Param] = []
    known = set(fixed)
    for name, spec_raw in params_raw.items():
        where = f"{path}: key 'params.{name}'"
        if name not in types:
            raise _unknown(f"{path}: key 'params'", name, sorted(types))
        if name in UNSEARCHABLE:
            raise ConfigError(f"{where} cannot be searched (set it in 'fixed' or on the CLI)")
        if name in DATA_FIELDS:
            raise ConfigError(
                f"{where} cannot be searched: every trial must be scored on the same rows, so "
                "set it in 'fixed'"
            )
        if name in fixed:
            raise ConfigError(f"{where} is also in 'fixed'; a key is either fixed or searched")
        params.append(_parse_param(where, name, spec_raw, types[name], known))
        known.add(name)

    enqueue_raw = raw.get("enqueue") or []
    if not isinstance(enqueue_raw, list):
        raise ConfigError(f"{path}: key 'enqueue' must be a list of parameter mappings")
    names = [p.name for p in params]
    enqueue = []
    for i, entry in enumerate(enqueue_raw):
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{path}: key 'enqueue[{i}]' must be a mapping of parameters")
        for key in entry:
            if key not in names:
                raise _unknown(f"{path}: key 'enqueue[{i}]'", key, names)
        enqueue.append({k: _coerce(v, types[k]) for k, v in entry.items()})

    space = SearchSpace(
        path=path,
        task=space_task,
        metric=metric,
        mode=mode,
        trials=trials,
        fixed=fixed,
        params=params,
        enqueue=enqueue,
        scheduler=_named_section(
            f"{path}: key 'scheduler'", raw.get("scheduler"), SCHEDULER_KEYS, SCHEDULERS
        ),
        sampler=_named_section(
            f"{path}: key 'sampler'", raw.get("sampler"), SAMPLER_KEYS, SAMPLERS
        ),
        description=str(raw.get("description", "")),
        final=_int_section(f"{path}: key 'final'", raw.get("final"), FINAL_KEYS),
        objectives=objectives if len(objectives) > 1 else {},
    )
    _check_grid(space, raw)
    check_space(space)
    return space


def _objectives(raw: Mapping[str, Any], path: str, task: str, spec: Any) -> dict[str, str]:
    """The space's ``objectives`` (search.objectives); ``metric``/``mode`` given next to them
    must be the first objective's."""
    if "objectives" not in raw:
        return {}
    from search.objectives import parse_objectives

    objectives = parse_objectives(path, raw["objectives"], task, spec.metric_keys())
    first, direction = next(iter(objectives.items()))
    for key, value in (("metric", first), ("mode", direction)):
        if key in raw and raw[key] != value:
            raise ConfigError(
                f"{path}: key {key!r} is {raw[key]!r}, but the first objective says {value!r}; "
                f"drop {key!r} (the first objective is the metric)"
            )
    return objectives


def load_space(path: str | Path, task: str | None = None) -> SearchSpace:
    """Read and validate a space file; every problem is a one-sentence ``ConfigError``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"space file {str(p)!r} does not exist")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}: not valid YAML{at} ({getattr(exc, 'problem', exc)})") from exc
    return parse_space(raw, str(p), task)


def default_space_path(task: str, root: str | Path | None = None) -> Path:
    """``spaces/<task>.yaml`` under the working directory, else next to the package."""
    if root is not None:
        return Path(root) / f"{task}.yaml"
    here = Path("spaces") / f"{task}.yaml"
    if here.is_file():
        return here
    return Path(__file__).resolve().parents[1] / "spaces" / f"{task}.yaml"


# --------------------------------------------------------------------------- checking
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


def _force_conditions(
    space: SearchSpace, name: str, rng: random.Random, pick: bool = True
) -> dict[str, Any]:
    """Values for the ``eq``/``in`` conditions that make ``name`` active (recursively); with
    ``pick=False`` the first alternative and first listed value, else random ones."""
    by_name = {p.name: p for p in space.params}
    forced: dict[str, Any] = {}
    todo = [name]
    while todo:
        p = by_name.get(todo.pop())
        alt = (rng.choice(p.when) if pick else p.when[0]) if p and p.when else ()
        for c in alt:
            if c.key in by_name and c.key not in forced:
                if c.op == "eq":
                    forced[c.key] = c.value
                elif c.op == "in":
                    forced[c.key] = rng.choice(list(c.value)) if pick else c.value[0]
                else:
                    continue
                todo.append(c.key)
    return forced


def _check(space: SearchSpace, params: Mapping[str, Any]) -> str | None:
    from lssat.config import TrialConfig

    try:
        TrialConfig.from_dict(space.config(params))
    except ConfigError as exc:
        return str(exc)
    return None


def _show(params: Mapping[str, Any], skip: str | None = None) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items() if k != skip)


def check_space(space: SearchSpace, seed: int = 0) -> None:
    """Check fixed values, every choice and bound, enqueued configs and random combinations."""
    from lssat.config import TrialConfig

    try:
        TrialConfig.from_dict(space.config({}))
    except ConfigError as exc:
        raise ConfigError(f"{space.path}: key 'fixed' is invalid: {exc}") from None
    rng = random.Random(seed)
    draws: list[tuple[str, Any, dict[str, Any]]] = []  # (param, value, a draw with it)
    for p in space.params:
        for value in p.edge_values():
            alone = {**_force_conditions(space, p.name, rng, pick=False), p.name: value}
            err = _check(space, alone)
            mine = []
            for _ in range(CHECK_FORCED * 8):
                forced = {**_force_conditions(space, p.name, rng), p.name: value}
                params = space.suggest(_DrawTrial(rng, forced))
                if params.get(p.name) == value:  # else the draw left it inactive
                    mine.append(params)
                if len(mine) >= CHECK_FORCED:
                    break
            if err and not any(_check(space, d) is None for d in mine):
                raise ConfigError(
                    f"{space.path}: key 'params.{p.name}' value {value!r} is invalid: {err}"
                )
            draws.extend((p.name, value, d) for d in mine)
    # every value is fine somewhere; now no combination the sampler can draw may be invalid
    for _, _, params in draws:
        err = _check(space, params)
        if err:
            raise ConfigError(
                f"{space.path}: the parameter combination {_show(params)} is invalid: {err}"
            )
    by_name = {p.name: p for p in space.params}
    for i, entry in enumerate(space.enqueue):
        for key, value in entry.items():
            p = by_name[key]
            if p.kind == "categorical" and value not in p.choices:
                raise ConfigError(
                    f"{space.path}: key 'enqueue[{i}].{key}' is {value!r}, not one of "
                    f"params.{key} choices {list(p.choices)}"
                )
            if p.kind != "categorical" and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ConfigError(
                    f"{space.path}: key 'enqueue[{i}].{key}' is {value!r}, not a number"
                )
        params = space.suggest(_DrawTrial(rng, entry))
        err = _check(space, params)
        if err:
            raise ConfigError(f"{space.path}: key 'enqueue[{i}]' is invalid: {err}")
    for _ in range(CHECK_DRAWS):
        params = space.suggest(_DrawTrial(rng))
        err = _check(space, params)
        if err:
            raise ConfigError(
                f"{space.path}: the parameter combination {_show(params)} is invalid: {err}"
            )
