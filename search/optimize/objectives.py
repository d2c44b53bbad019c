"""Multi-objective searches: the space's ``objectives`` key, and each trial's objective values.

A space file may give several objectives instead of one ``metric``::

    objectives: {val_auc: max, gflops: min}          # accuracy against compute
    objectives: {val_mean_acc: max, val_group_gap: min}   # accuracy against fairness

in order; the first must be a validation metric: early stopping (ASHA) judges trials on it
alone (``scheduler: none`` turns early stopping off), it is the row's ``metric``/``final_value``
and what ``search.final --top-k`` ranks by. The Optuna study then has one direction per
objective (``optuna.load_study(...).best_trials`` is the Pareto front). Objectives are

- a validation metric of the task (``val_auc``, ``val_group_gap``, ``val_worst_group_acc``,
  ... : :meth:`lssat.tasks.TaskSpec.metric_keys`), taken from the trial's last epoch;
- a compute objective, measured once per trial: ``gflops`` (forward GFLOPs per image of the
  full pass, column ``gflops``), ``params`` (inference parameters, column ``params_count``),
  ``latency_ms`` (inference latency of one image, column ``final_latency_ms``; GPU only:
  on two busy CPU cores it is noise, so a search without GPUs refuses it).

A single objective (``objectives: {val_auc: max}``) is the same as ``metric``/``mode``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lssat.errors import ConfigError

FAILED_CONSTRAINT = "failed"  # the Optuna constraint a FAIL trial violates (> 0)

DIRECTIONS = ("max", "min")
# compute objective -> the trial row column that holds it (measured once per trial)
COMPUTE: dict[str, str] = {"gflops": "gflops", "params": "params_count", "latency_ms": "latency_ms"}
GPU_ONLY = ("latency_ms",)


def parse_objectives(path: str, raw: Any, task: str, metric_keys: list[str]) -> dict[str, str]:
    """``{name: direction}`` in file order from the space's ``objectives`` mapping; a
    one-sentence ``ConfigError`` names the file, the key and what is wrong."""
    where = f"{path}: key 'objectives'"
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{where} must be a mapping such as {{val_auc: max, gflops: min}}")
    allowed = [*metric_keys, *COMPUTE]
    out: dict[str, str] = {}
    for name, direction in raw.items():
        if name not in allowed:
            raise ConfigError(
                f"{where} names {name!r}, which is not an objective of task {task!r}; "
                f"allowed: {', '.join(allowed)}"
            )
        if direction not in DIRECTIONS:
            raise ConfigError(f"{where}.{name} is {direction!r}; a direction is max or min")
        out[str(name)] = str(direction)
    first = next(iter(out))
    if not first.startswith("val_"):
        raise ConfigError(
            f"{where} starts with {first!r}; the first objective must be a validation metric "
            f"(early stopping judges trials on it), e.g. {{val_auc: max, {first}: min}}"
        )
    return out


def column(name: str) -> str:
    """The trial row column of objective ``name`` (``final_<name>`` for a validation metric)."""
    if name in COMPUTE:
        return COMPUTE[name] if name != "latency_ms" else "final_latency_ms"
    return f"final_{name}"


def values_from_epoch(objectives: Mapping[str, str], last: Mapping[str, Any]) -> list[float]:
    """Each objective's value from a trial's last epoch row (NaN where missing)."""
    out = []
    for name in objectives:
        v = last.get(COMPUTE.get(name, name))
        ok = isinstance(v, int | float) and not isinstance(v, bool)
        out.append(float(v) if ok else math.nan)
    return out


def worst(directions: list[str] | tuple[str, ...]) -> list[float]:
    """The worst possible value of each objective (-inf for max, +inf for min)."""
    return [-math.inf if d == "max" else math.inf for d in directions]


def check_device(space: Any, gpus_per_trial: float, path: str) -> None:
    """Refuse a GPU-only objective (``latency_ms``) in a search whose trials get no GPU."""
    for name in GPU_ONLY:
        if name in space.objectives and not gpus_per_trial > 0:
            raise ConfigError(
                f"{path}: objective {name!r} is only measured on a GPU (on CPU cores shared "
                "with other trials it is noise); give --gpus-per-trial or drop it"
            )
