"""``check_space``: seeded whole-space draws (and each choice and bound forced) checked
against ``TrialConfig`` before a search starts."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from lssat.errors import ConfigError
from search.optimize.space.model import (
    CHECK_DRAWS,
    CHECK_FORCED,
    SearchSpace,
    _DrawTrial,
)


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
