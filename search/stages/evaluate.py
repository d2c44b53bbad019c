"""``search.evaluate``'s stage: score a model kept by the final stage on a prepared set."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lssat.errors import ConfigError
from search.execution.heldout import (
    CI_HIGH,
    CI_LOW,
    bootstrap_settings,
    check_name,
    evaluate_model,
    load_weights,
    open_eval_set,
)


@dataclass(frozen=True)
class EvaluateRequest:
    """What to score: ``weights`` (a final/*.safetensors file) on ``data``'s ``split``."""

    weights: str
    data: str
    name: str = "eval"
    split: str | None = None
    device: str = "auto"
    n_resamples: int | None = None  # None: the final run's (weights file), else N_RESAMPLES
    seed: int | None = None  # None: the final run's bootstrap seed (weights file), else 0
    out: str | None = None


def evaluate_weights(req: EvaluateRequest) -> dict[str, Any]:
    """Score the weights (the final run's bootstrap seed and resamples unless given);
    returns the metrics (also printed)."""
    from lssat.train import autocast_dtype, resolve_device

    check_name(req.name, "--name")
    if req.n_resamples is not None and req.n_resamples < 1:
        raise ConfigError(f"--n-resamples is {req.n_resamples}; it must be at least 1")
    model, config, info = load_weights(req.weights)
    seed, n_resamples = bootstrap_settings(info, req.seed, req.n_resamples)
    es = open_eval_set(req.name, req.data, config.task, list(info.get("classes") or []),
                       req.split)  # fmt: skip
    config = config.replace(device=req.device)
    device = resolve_device(config)
    model = model.to(device)
    metrics = evaluate_model(model, config, es, device, autocast_dtype(config, device),
                             seed=seed, n_resamples=n_resamples)  # fmt: skip
    head = f"{req.weights} on {es.path} ({es.split} rows)"
    print(f"{head}: {int(metrics[f'{es.name}_rows'])} rows, {int(metrics[f'{es.name}_units'])} "
          f"units; 95% bootstrap intervals over units")  # fmt: skip
    for key in sorted(k for k in metrics if f"{k}{CI_LOW}" in metrics):
        lo, hi = metrics[f"{key}{CI_LOW}"], metrics[f"{key}{CI_HIGH}"]
        print(f"  {key:<28} {metrics[key]:.4f}  [{lo:.4f}, {hi:.4f}]")
    if req.out:
        Path(req.out).write_text(json.dumps({"weights": str(req.weights), "data": es.path,
                                              "split": es.split, **metrics}, indent=1))  # fmt: skip
    return metrics
