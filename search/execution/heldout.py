"""Held-out scoring: metrics with bootstrap intervals, kept weights, the final stage's hook.

Used by ``python -m search.evaluate FINAL_WEIGHTS --data PREPARED_DIR [--name NAME]`` scores a model
kept by the final stage (``final/<trial_id>-s<seed>.safetensors``) on any prepared set: its
test split, or every row when it has none. Same metrics and intervals as the final stage; a new
cross-dataset test needs no retraining. Bad input: one sentence, exit code 2.

Intervals: 95 % percentile intervals from ``scipy.stats.bootstrap``, resampling units (videos,
images where there are none) within each label (stratified, so a resample holds every class
and an AUC stays defined); frame metrics are recomputed over the frames of the drawn videos.

Reproducible from the weights file alone: it stores the bootstrap seed and resamples of its
final run (``--seed`` / ``--n-resamples`` override them), and held-out scoring always runs the
full pass in float32 (no autocast, whatever the training precision), so the logits are float32
and the same on every device up to rounding. The weights are saved before scoring, so a run
whose logits are non-finite (a one-sentence error) keeps them.
"""

from __future__ import annotations

import json
import os
import re
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lssat.errors import ConfigError, DataError

CI_LEVEL = 0.95
CI_METHOD = "percentile"
N_RESAMPLES = 1000
CI_LOW, CI_HIGH = "_ci_low", "_ci_high"  # as search.results (kept import-light for workers)
# names an extra evaluation set may not take: splits and column prefixes of the result rows
RESERVED_NAMES = ("train", "val", "test", "final", "cfg")
NAME_RE = re.compile(r"^[a-z][a-z0-9]*$")
WEIGHTS_FORMAT = "lssat-final-weights"


@dataclass
class EvalSet:
    """One held-out set: rows of a prepared dataset, scored under column prefix ``name_``."""

    name: str
    path: str
    split: str  # "test", or "all" for a folder without test rows

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "split": self.split}


def check_name(name: str, flag: str = "--eval-data") -> None:
    """ConfigError unless ``name`` can prefix result columns (``celebdf`` -> ``celebdf_auc``)."""
    if name in RESERVED_NAMES:
        raise ConfigError(
            f"{flag} name {name!r} clashes with a split or column prefix "
            f"({', '.join(RESERVED_NAMES)}); pick another name"
        )
    if not NAME_RE.match(name):
        raise ConfigError(
            f"{flag} name {name!r} must be lower-case letters and digits, starting with a letter"
        )


def open_eval_set(
    name: str, path: str | Path, task: str, classes: list[str], split: str | None = None
) -> EvalSet:
    """Check that ``path`` is a prepared dataset of ``task`` with the model's ``classes``."""
    from lssat.data.shards import META_FILE, SPLITS, read_json

    p = Path(path).expanduser()
    if not (p / META_FILE).is_file():
        raise DataError(f"evaluation set {name!r}: {p} is not a prepared dataset (no {META_FILE})")
    meta = read_json(p / META_FILE, "dataset meta file")
    if meta.get("task") != task:
        raise DataError(
            f"evaluation set {name!r}: {p} holds task {meta.get('task')!r}, but the model was "
            f"trained for task {task!r}"
        )
    if list(meta.get("classes") or []) != list(classes):
        raise DataError(
            f"evaluation set {name!r}: {p} has classes {meta.get('classes')}, but the model "
            f"predicts {classes}"
        )
    counts = meta.get("counts", {})
    if split is None:
        split = "test" if counts.get("test", {}).get("rows", 0) else "all"
    elif split != "all" and split not in SPLITS:
        raise ConfigError(f"--split is {split!r}; allowed: all, {', '.join(SPLITS)}")
    if split != "all" and not counts.get(split, {}).get("rows", 0):
        raise DataError(f"evaluation set {name!r}: {p} has no {split} rows")
    return EvalSet(name, str(p.resolve()), split)


# ------------------------------------------------------------------------------ scoring
def _unit_rows(video: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped by unit: (row order ``[n]``, start offset and row count per unit)."""
    from lssat.data.selection import units_of

    units = units_of(video if video is not None else np.full(n, -1, np.int64))
    _, inverse = np.unique(units, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return order, starts, counts


def score(
    task: Any,
    out: Mapping[str, Any],
    meta: Mapping[str, Any],
    prefix: str,
    *,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
    level: float = CI_LEVEL,
) -> dict[str, float]:
    """Task metrics of one held-out set with bootstrap intervals over units.

    ``out``: :func:`lssat.train.predict`'s arrays. Returns ``<prefix><metric>`` with
    ``..._ci_low`` / ``..._ci_high``, ``<prefix>loss``, ``<prefix>rows`` and ``<prefix>units``.
    """
    from scipy.stats import bootstrap

    logits, labels = out["logits"], out["labels"]
    video, groups = out["video"], out["groups"]
    n = len(labels)
    point = task.evaluate(logits, labels, video, groups, meta, prefix=prefix)
    keys = sorted(point)
    order, starts, counts = _unit_rows(video, n)
    has_video = video is not None and bool((video >= 0).any())
    result: dict[str, float] = dict(point)
    result[f"{prefix}loss"] = float(out["loss"])
    result[f"{prefix}rows"] = float(n)
    result[f"{prefix}units"] = float(len(counts))

    def stat(*samples: np.ndarray) -> np.ndarray:
        units = np.concatenate(samples)
        cnt = counts[units]
        offsets = np.repeat(starts[units] - np.cumsum(cnt) + cnt, cnt)
        rows = order[offsets + np.arange(cnt.sum())]
        vids = np.repeat(np.arange(len(units)), cnt) if has_video else None
        if vids is not None:
            vids = np.where(video[rows] >= 0, vids, -1)
        g = None if groups is None else groups[rows]
        m = task.evaluate(logits[rows], labels[rows], vids, g, meta, prefix=prefix)
        return np.array([m.get(k, np.nan) for k in keys], dtype=np.float64)

    strata = _strata(task, labels, order, starts)
    if len(counts) >= 2 and keys:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            ci = bootstrap(
                strata, stat, n_resamples=n_resamples, confidence_level=level,
                method=CI_METHOD, vectorized=False, paired=False,
                rng=np.random.default_rng([seed, 0xB007]),
            ).confidence_interval  # fmt: skip
        lows, highs = np.atleast_1d(ci.low), np.atleast_1d(ci.high)
    else:
        lows = highs = np.full(len(keys), np.nan)
    for k, lo, hi in zip(keys, lows, highs, strict=True):
        result[f"{k}{CI_LOW}"] = float(lo)
        result[f"{k}{CI_HIGH}"] = float(hi)
    return result


def _strata(
    task: Any, labels: np.ndarray, order: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Unit indices per label (binary / multi-class; one stratum for multi-label data or when
    a label has a single unit)."""
    units = np.arange(len(starts))
    if task.label_kind == "multilabel":
        return (units,)
    first = labels.reshape(len(labels), -1)[order[starts], 0]
    strata = tuple(units[first == c] for c in np.unique(first))
    return strata if all(len(s) >= 2 for s in strata) else (units,)


def evaluate_model(
    model: Any,
    config: Any,
    es: EvalSet,
    device: Any,
    dtype: Any,
    *,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
    items: list[dict[str, Any]] | None = None,
) -> dict[str, float]:
    """Score ``model`` on one held-out set under column prefix ``<es.name>_``. The full pass
    runs in float32 whatever ``dtype`` (the training's autocast type) is; non-finite logits
    raise :class:`~lssat.errors.NonFiniteLogitsError`. With ``items`` (a list), also append
    the set's per-item outputs (:func:`item_columns`) to it."""
    from lssat.data import open_dataset
    from lssat.data.loader import ShardDataset, trial_meta
    from lssat.tasks import get_task
    from lssat.train import check_finite, eval_loader, predict

    data = open_dataset(es.path)
    rows = np.arange(len(data)) if es.split == "all" else data.indices(es.split)
    ds = ShardDataset(data, rows, config.img_size, None)
    out = predict(model, eval_loader(ds, config, device), device, None)  # float32, not `dtype`
    check_finite(out, es.name, int(config.epochs))
    task = get_task(config.task)
    if items is not None:
        items.append(item_columns(task, out, rows, es.name))
    return score(task, out, trial_meta(data), f"{es.name}_", seed=seed, n_resamples=n_resamples)


def item_columns(task: Any, out: Mapping[str, Any], rows: np.ndarray, name: str) -> dict:
    """Per-item outputs of one set (``search.results.ITEM_COLUMNS`` but the run's identity):
    what the analysis needs to recompute the task metrics on resampled videos."""
    logits, labels = np.asarray(out["logits"]), np.asarray(out["labels"])
    n = len(labels)
    video = out.get("video")
    unit = np.asarray(video, dtype=np.int64) if video is not None else np.full(n, -1)
    correct = task.correct(logits, labels)
    if task.label_kind == "binary":
        score_ = logits.reshape(-1).astype(np.float64)
        label = labels.reshape(-1).astype(np.int64)
        pred = (score_ >= 0).astype(np.int64)
    elif task.label_kind == "multiclass":
        score_ = np.full(n, np.nan)
        label = labels.reshape(-1).astype(np.int64)
        pred = logits.argmax(axis=1).astype(np.int64)
    else:
        score_, label, pred = np.full(n, np.nan), np.full(n, -1), np.full(n, -1)
    return {"set": [name] * n, "row": np.asarray(rows, dtype=np.int64), "unit": unit,
            "label": label, "pred": pred, "score": score_, "correct": correct}  # fmt: skip


def write_run_items(path: str | Path, info: Mapping[str, Any], parts: list[dict]) -> Path:
    """Write a final run's per-item outputs of every set (``final/items/<run_id>.parquet``)."""
    from search.results import write_items

    cols = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
    ident = {"task": info["task"], "experiment": info["experiment"], "run_id": info["run_id"]}
    return write_items(path, ident, cols)


# ------------------------------------------------------------------------------ weights
def save_weights(path: str | Path, model: Any, config: Any, info: Mapping[str, Any]) -> Path:
    """Write the model's weights with its config (safetensors metadata), atomically."""
    from safetensors.torch import save_model

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": WEIGHTS_FORMAT, "config": json.dumps(config.to_dict(), sort_keys=True)}
    meta.update({k: json.dumps(v, sort_keys=True, default=str) for k, v in info.items()})
    tmp = path.parent / f".{path.stem}.{uuid.uuid4().hex}.tmp"
    try:
        save_model(model, str(tmp), metadata=meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_weights(path: str | Path) -> tuple[Any, Any, dict[str, Any]]:
    """(model on the CPU in eval mode, its TrialConfig, its info) from :func:`save_weights`."""
    from safetensors import safe_open
    from safetensors.torch import load_model

    from lssat.config import TrialConfig
    from lssat.model import build
    from lssat.tasks import get_task

    p = Path(path)
    if not p.is_file():
        raise DataError(f"weights file {p} does not exist")
    try:
        with safe_open(str(p), "pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        raise DataError(f"weights file {p} is not a safetensors file ({exc})") from None
    if meta.get("format") != WEIGHTS_FORMAT:
        raise DataError(f"weights file {p} was not written by the final stage (no config in it)")
    info = {k: json.loads(v) for k, v in meta.items() if k not in ("format", "config")}
    values = json.loads(meta["config"])
    if "pretrained" in values:
        values["pretrained"] = False  # the file holds every weight: nothing to download
    config = TrialConfig.from_dict(values)
    classes = info.get("classes") or []
    model = build(config, get_task(config.task).num_outputs({"classes": classes}))
    try:
        load_model(model, str(p), strict=True)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"weights file {p} does not fit its own config ({exc})") from None
    return model.eval(), config, info


# ------------------------------------------------------------------- final-stage hook
def heldout_trial(
    trial_fn: Callable[..., Any], spec: Mapping[str, Any], config: Any, data: Any, report: Any,
    **kw: Any,
) -> Any:  # fmt: skip
    """``trial_fn`` (``run_trial``) with the final stage's evaluation after its last epoch.

    ``spec``: ``sets`` (EvalSet fields; ``test`` first), ``weights`` (file to keep the model
    in), ``info`` (stored with the weights), ``seed``, ``n_resamples``.
    """
    sets = [EvalSet(**s) for s in spec["sets"]]

    def final_eval(model: Any, device: Any, dtype: Any) -> dict[str, Any]:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0:
            info = {**spec["info"], "bootstrap_seed": int(spec["seed"]),
                    "n_resamples": int(spec["n_resamples"]), "scoring": "float32"}  # fmt: skip
            save_weights(spec["weights"], model, config, info)  # first: scoring may fail
        metrics: dict[str, Any] = {}
        items: list[dict[str, Any]] = []
        for es in sets:
            metrics.update(evaluate_model(model, config, es, device, dtype,
                                          seed=int(spec["seed"]),
                                          n_resamples=int(spec["n_resamples"]),
                                          items=items))  # fmt: skip
        if items and spec.get("items") and (
            not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
        ):
            write_run_items(spec["items"], spec["info"], items)
        return metrics

    return trial_fn(config, data, report, final_eval=final_eval, **kw)


def bootstrap_settings(
    info: Mapping[str, Any], seed: int | None, n_resamples: int | None
) -> tuple[int, int]:
    """(seed, resamples) of the bootstrap: the given ones, else the final run's from the
    weights file's ``info`` (older files: its run ``seed``), else 0 and :data:`N_RESAMPLES`."""
    if seed is None:
        seed = int(info.get("bootstrap_seed", info.get("seed", 0)))
    if n_resamples is None:
        n_resamples = int(info.get("n_resamples", N_RESAMPLES))
    return seed, n_resamples
