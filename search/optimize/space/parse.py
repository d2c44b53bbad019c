"""Space files read and checked key by key: ``parse_space`` / ``load_space`` turn YAML into a
:class:`~search.optimize.space.model.SearchSpace`, one sentence naming the file and key for any
mistake."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from lssat.errors import ConfigError
from search.optimize.space.check import _check, _show, check_space
from search.optimize.space.model import (
    DATA_FIELDS,
    DEFAULT_TRIALS,
    FINAL_KEYS,
    MAX_GRID,
    OPS,
    PARAM_KEYS,
    SAMPLER_KEYS,
    SAMPLERS,
    SCHEDULER_KEYS,
    SCHEDULERS,
    TOP_KEYS,
    UNSEARCHABLE,
    Condition,
    Param,
    SearchSpace,
)


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
        balance=_balance(raw.get("balance"), path, params, raw.get("sampler")),
    )
    _check_grid(space, raw)
    check_space(space)
    return space


def _balance(raw: Any, path: str, params: list[Param], sampler: Any) -> str:
    """``balance: PARAM``: a categorical parameter sampled in every trial (no ``when``), whose
    levels then get equal trial counts; "" when absent."""
    if raw is None:
        return ""
    where = f"{path}: key 'balance'"
    if not isinstance(raw, str):
        raise ConfigError(f"{where} is {raw!r}; name one categorical parameter, e.g. backbone")
    param = next((p for p in params if p.name == raw), None)
    if param is None:
        names = ", ".join(p.name for p in params if p.kind == "categorical") or "none"
        raise ConfigError(f"{where} names {raw!r}, which is not a parameter of 'params'; "
                          f"categorical parameters: {names}")  # fmt: skip
    if param.kind != "categorical":
        raise ConfigError(f"{where} names {raw!r}, a range; balance needs a categorical "
                          "parameter (choices: [...])")  # fmt: skip
    if param.when:
        raise ConfigError(f"{where} names {raw!r}, which is sampled only under a 'when'; "
                          "balance needs a parameter of every trial")  # fmt: skip
    if isinstance(sampler, Mapping) and sampler.get("name") == "grid":
        raise ConfigError(f"{where} cannot be combined with sampler grid (a grid already "
                          "trains every level equally often)")  # fmt: skip
    return raw


def _objectives(raw: Mapping[str, Any], path: str, task: str, spec: Any) -> dict[str, str]:
    """The space's ``objectives`` (search.optimize.objectives); ``metric``/``mode`` given next to
    them must be the first objective's."""
    if "objectives" not in raw:
        return {}
    from search.optimize.objectives import parse_objectives

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
