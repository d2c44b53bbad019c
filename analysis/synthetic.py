"""Hand-built results with planted answers, written through ``search.results``.

For tests, the notebook check and trying the report without a search: each task gets trials
whose value is ``base[backbone] + sum(effect * feature) + noise``, so the best backbone, the
important parameter and the effect sizes are known.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from lssat.config import TrialConfig
from search.results import config_columns, final_columns, write_epochs, write_trial

DEFAULT_TASKS: dict[str, dict[str, float]] = {
    "deepfake": {"vit_base_patch16_224": 0.90, "vit_small_patch16_224": 0.86,
                 "resnet50": 0.84, "convnext_tiny": 0.80},
    "attributes": {"vit_base_patch16_224": 0.84, "vit_small_patch16_224": 0.88,
                   "resnet50": 0.82, "convnext_tiny": 0.80},
    "emotion": {"vit_base_patch16_224": 0.80, "vit_small_patch16_224": 0.74,
                "resnet50": 0.83, "convnext_tiny": 0.72},
}
METRICS = {"deepfake": "val_auc", "attributes": "val_acc", "emotion": "val_acc"}


def _space(backbones: list[str]) -> dict[str, object]:
    """The Optuna distributions the synthetic "search" sampled from (conditional ones are only
    active when aux_weight > 0)."""
    return {
        "backbone": CategoricalDistribution(backbones),
        "lr": FloatDistribution(1e-4, 1e-2, log=True),
        "aux_weight": FloatDistribution(0.0, 0.9),
        "mask_ratio": FloatDistribution(0.4, 0.9),
        "descriptor": CategoricalDistribution(["ldp", "lbp"]),
        "reconstruct": CategoricalDistribution(["descriptor", "rgb"]),
        "decoder_dim": IntDistribution(32, 256, log=True),
    }


CONDITIONAL = ("mask_ratio", "descriptor", "reconstruct", "decoder_dim")  # when aux_weight > 0


def features(cfg: Mapping[str, float]) -> dict[str, float]:
    """The numeric features an effect can act on, each scaled to about [0, 1]."""
    return {
        "lr": (math.log10(cfg["lr"]) + 4.0) / 2.0,  # 1e-4 -> 0, 1e-2 -> 1
        "mask_ratio": (cfg["mask_ratio"] - 0.4) / 0.5,  # 0.4 -> 0, 0.9 -> 1
        "aux_weight": cfg["aux_weight"],
        "lssat": float(cfg["aux_weight"] > 0),
    }


def write_synthetic(
    root: str | Path,
    tasks: Mapping[str, Mapping[str, float]] | None = None,
    trials_per_backbone: int = 8,
    seeds: tuple[int, ...] = (0, 1),
    noise: float = 0.01,
    effects: Mapping[str, Mapping[str, float]] | None = None,
    baseline_share: float = 0.25,
    n_pruned: int = 1,
    n_failed: int = 1,
    groups: bool = True,
    epochs: int = 3,
    rng_seed: int = 0,
    mode: str = "max",
) -> list[Path]:
    """Write ``root/<task>/synthetic/{trials,epochs}/*.parquet``; returns the experiment folders.

    ``tasks``: task -> {backbone: base value}; ``effects``: task -> {feature: coefficient}
    with features from ``features``. The i-th trial of a backbone uses seed
    ``seeds[i % len(seeds)]``. ``mode="min"`` stores ``1 - value`` as a loss-like metric.
    """
    tasks = DEFAULT_TASKS if tasks is None else tasks
    effects = effects or {}
    rng = np.random.default_rng(rng_seed)
    defaults = TrialConfig().to_dict()  # the search records the full config
    out = []
    for task, bases in tasks.items():
        exp = Path(root) / task / "synthetic"
        metric = METRICS.get(task, "val_acc") if mode == "max" else "val_loss"
        number = 0
        for backbone, base in bases.items():
            for i in range(trials_per_backbone):
                cfg = {
                    "task": task, "backbone": backbone,
                    "descriptor": str(rng.choice(["ldp", "lbp"])), "encoding": "hist",
                    "mask_input": "rgb", "reconstruct": str(rng.choice(["descriptor", "rgb"])),
                    "classify_input": "rgb",
                    "mask_ratio": float(rng.uniform(0.4, 0.9)),
                    "aux_weight": 0.0 if rng.random() < baseline_share else
                    float(rng.uniform(0.1, 0.9)),
                    "lr": float(10 ** rng.uniform(-4, -2)), "seed": seeds[i % len(seeds)],
                    "decoder_dim": int(rng.choice([32, 64, 256])),
                }
                space = _space(list(bases))
                active = [k for k in space if cfg["aux_weight"] > 0 or k not in CONDITIONAL]
                f = features(cfg)
                value = base + sum(c * f[k] for k, c in effects.get(task, {}).items())
                value += float(rng.normal(0, noise))
                stored = value if mode == "max" else 1.0 - value
                status = "COMPLETE"
                if number < n_pruned:
                    status = "PRUNED"
                elif number < n_pruned + n_failed:
                    status = "FAIL"
                per_epoch = [stored - (epochs - e) * 0.02 * (1 if mode == "max" else -1)
                             for e in range(1, epochs + 1)]
                last = {metric: per_epoch[-1]}
                if groups:
                    last["val_worst_group_acc"] = value - 0.05 - 0.02 * rng.random()
                    last["val_group_gap"] = 0.03 + 0.04 * rng.random()
                trial_id = f"{task}_{number:04d}"
                params = 5e6 * (1 + list(bases).index(backbone)) * (1 + 0.1 * rng.random())
                row = {
                    "task": task, "experiment": "synthetic", "trial_id": trial_id,
                    "number": number, "status": status,
                    "stop_reason": {"COMPLETE": "completed", "PRUNED": "early_stopped",
                                    "FAIL": "error"}[status],
                    "error": "boom" if status == "FAIL" else None,
                    "metric": metric, "mode": mode,
                    "final_value": float("nan") if status == "FAIL" else per_epoch[-1],
                    "best_value": float("nan") if status == "FAIL" else
                    (max(per_epoch) if mode == "max" else min(per_epoch)),
                    "best_epoch": epochs, "epochs_run": epochs,
                    "samples_per_s": 2e9 / params, "params_count": int(params),
                    "gflops": params / 2e6, "seed": cfg["seed"],
                    "params": {k: cfg[k] for k in active},
                    "param_distributions": {
                        k: json.loads(distribution_to_json(space[k])) for k in active},
                    **config_columns({**defaults, **cfg}), **final_columns(last),
                }
                write_trial(exp, row)
                ident = {"task": task, "experiment": "synthetic", "trial_id": trial_id,
                         "number": number}
                write_epochs(exp, ident, [{"epoch": e + 1, metric: v}
                                          for e, v in enumerate(per_epoch)])
                number += 1
        out.append(exp)
    return out
