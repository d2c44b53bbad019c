"""What one trial holds (CPUs, GPUs, Ray Train workers) and how many trials run at once."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any

from lssat.errors import ConfigError


@dataclass(frozen=True)
class TrialResources:
    """One trial's share of the cluster (like Ray's ``ScalingConfig``) and the concurrency
    cap: ``workers`` data-parallel Ray Train workers, each with ``cpus`` and ``gpus``;
    ``max_concurrent`` None = what the cluster holds at its largest; ``max_failures`` restarts
    of a trial whose process died (-1 = no limit)."""

    cpus: float = 1.0
    gpus: float = 0.0
    workers: int = 1
    max_concurrent: int | None = None
    max_failures: int = 0

    def bundles(self) -> list[dict[str, float]]:
        from search.execution.capacity import trial_bundles

        return trial_bundles(self.cpus, self.gpus, self.workers)

    def tune_resources(self) -> dict[str, float]:
        """Tune resources of one trial: its CPUs/GPUs, or a token CPU share when Ray Train
        workers (each with their own resources) do the work."""
        if self.workers > 1:
            return {"cpu": 0.01}
        return {"cpu": self.cpus, "gpu": self.gpus}


def concurrency(shape: Any, res: TrialResources, local: bool) -> int:
    """Trials at once: what the cluster can hold at its largest (``shape``, see
    :mod:`search.execution.capacity`), or ``res.max_concurrent``; never today's free resources.

    A trial holds ``workers`` x (``cpus``, ``gpus``), plus a 0.01-CPU coordinator when it has
    several workers. A trial no node (type) can ever hold is refused with one sentence, except
    on a joined cluster whose autoscaler is unknown to the driver and where ``max_concurrent``
    is given (nodes may still join).
    """
    from search.execution.capacity import describe, trials_that_fit

    bundles = res.bundles()
    fits = trials_that_fit(shape.nodes, bundles)
    if fits < 1 and (local or shape.autoscaling or res.max_concurrent is None):
        where = (
            "no node type of the autoscaler can ever hold it"
            if shape.autoscaling
            else "this machine cannot hold it"
            if local
            else "no node of this cluster can hold it (if it autoscales, run the search on "
            "its head node, where the autoscaler runs, or give --max-concurrent)"
        )
        raise ConfigError(
            f"a trial asks for {describe(bundles)}, but {where}: {shape.largest()}"
            f"{_fit_hint(shape, res)}"
        )
    fits = max(fits, 1)
    if res.max_concurrent is None:
        return fits
    if res.max_concurrent > fits and local:
        print(
            f"note: --max-concurrent {res.max_concurrent} lowered to {fits}: more would wait "
            "for resources",
            flush=True,
        )
        return fits
    return res.max_concurrent


def _fit_hint(shape: Any, res: TrialResources) -> str:
    """'; use --cpus-per-trial 0.99 or less' when only the coordinator's share is missing."""
    from search.execution.capacity import COORDINATOR_CPU, trial_bundles, trials_that_fit

    n = res.workers
    if n < 2:
        return ""
    lower = math.floor((res.cpus * n - COORDINATOR_CPU) / n * 100) / 100
    if lower <= 0 or lower >= res.cpus:
        return ""
    if trials_that_fit(shape.nodes, trial_bundles(lower, res.gpus, n)) < 1:
        return ""
    return (
        f"; its {n} workers fill the CPUs and the coordinator needs {COORDINATOR_CPU:g} more: "
        f"use --cpus-per-trial {lower:g} or less"
    )


def why(shape: Any, res: TrialResources) -> str:
    """' (--max-concurrent)' or ' (what the autoscaler's node types hold at their largest)'."""
    if res.max_concurrent is not None:
        return " (--max-concurrent)"
    if shape.autoscaling:
        return " (what the autoscaler's node types hold at their max_workers)"
    return ""


def cluster(ray: Any, address: str | None) -> Any:
    """The cluster's shape at its largest (:func:`search.execution.capacity.cluster_shape`)."""
    from search.execution.capacity import cluster_shape

    return cluster_shape(ray, joined=address is not None)


def trial_fn_meta() -> dict[str, Any]:
    """TEST-ONLY hook: ``LSSAT_TRIAL_FN=module:function`` (+ ``LSSAT_TRIAL_FN_ARGS`` JSON)
    replaces ``lssat.train.run_trial`` in every trial (see :mod:`search.testing.faults`)."""
    spec = os.environ.get("LSSAT_TRIAL_FN", "").strip()
    if not spec:
        return {}
    if not re.match(r"^[\w.]+:\w+$", spec):
        raise ConfigError(f"LSSAT_TRIAL_FN is {spec!r}; it must be module:function")
    raw = os.environ.get("LSSAT_TRIAL_FN_ARGS", "").strip() or "{}"
    try:
        kwargs = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"LSSAT_TRIAL_FN_ARGS is not a JSON object ({exc})") from None
    if not isinstance(kwargs, dict):
        raise ConfigError(f"LSSAT_TRIAL_FN_ARGS is {raw!r}; it must be a JSON object")
    print(f"note: test hook LSSAT_TRIAL_FN={spec} replaces run_trial", flush=True)
    return {"trial_fn": spec, "trial_fn_args": kwargs}
