"""Load trial/epoch Parquet (through ``search.results``) and add the columns analysis ranks on.

Derived trial columns (added here, named here only):

- ``task_key``: the unit of analysis, ``task/dataset`` (e.g. ``deepfake/sbi``; the task name
  alone where rows record no dataset), ``task/dataset [metric]`` when one was searched under
  several metrics;
- ``value``: the trial's metric: ``final_value`` (the value told to Optuna, the one selection
  rule; default) or ``best_value`` (``VALUE_CHOICES``, descriptive only);
- ``score``: ``value`` signed so that higher is better (``-value`` for ``mode == "min"``);
- ``backbone``, ``family`` (``vit`` / ``cnn``), ``descriptor`` (the one the trial actually used,
  ``none`` otherwise), ``modality`` (``M{mask}/R{reconstruct}/C{classify}``), ``mask_ratio``,
  ``aux_weight``, ``seed_key``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lssat.errors import DataError
from search.results import CFG_PREFIX, FINAL_PREFIX, STATUSES, read_epochs, read_trials

VALUE_CHOICES = {"best": "best_value", "final": "final_value"}
RANKED_STATUSES = ("COMPLETE",)
BASELINE = "baseline"  # modality label of aux_weight = 0 trials (no masked pass)
NO_DESCRIPTOR = "none"
UNKNOWN = "unknown"  # a config column the results do not record
# timm name fragments of transformer backbones; everything else counts as a CNN
_VIT_PATTERN = re.compile(r"vit|deit|beit|eva|swin|cait|xcit|levit|tnt|twins|volo|hiera|dino")


def cfg(name: str) -> str:
    """Trial column of config field ``name`` (e.g. ``cfg_backbone``)."""
    return f"{CFG_PREFIX}{name}"


def final(metric: str) -> str:
    """Trial column of last-epoch metric ``metric`` (e.g. ``final_val_auc``)."""
    return f"{FINAL_PREFIX}{metric}"


def backbone_family(name: str) -> str:
    """``vit`` for transformer backbones (timm names with vit, deit, swin, ...), else ``cnn``."""
    return "vit" if _VIT_PATTERN.search(str(name).lower()) else "cnn"


def _modality_token(modality: str, descriptor: str) -> str:
    return "RGB" if modality == "rgb" else str(descriptor).upper()


def modality_label(
    mask_input: str, reconstruct: str, classify_input: str, descriptor: str, aux_weight: float
) -> str:
    """The paper's configuration name, e.g. ``MRGB/RLDP/CRGB``; ``baseline/CRGB`` when
    ``aux_weight == 0`` (no masked pass, so nothing is masked or reconstructed)."""
    c = f"C{_modality_token(classify_input, descriptor)}"
    if aux_weight is not None and not _isnan(aux_weight) and float(aux_weight) == 0.0:
        return f"{BASELINE}/{c}"
    m = _modality_token(mask_input, descriptor)
    r = _modality_token(reconstruct, descriptor)
    return f"M{m}/R{r}/{c}"


def descriptor_used(
    descriptor: str, mask_input: str, reconstruct: str, classify_input: str, aux_weight: float
) -> str:
    """The descriptor a trial really computed, or ``none`` when every modality it used is RGB."""
    aux = aux_weight is None or _isnan(aux_weight) or float(aux_weight) > 0
    uses = classify_input == "descriptor" or (
        aux and (mask_input == "descriptor" or reconstruct == "descriptor")
    )
    return str(descriptor) if uses else NO_DESCRIPTOR


def _isnan(x: object) -> bool:
    return isinstance(x, float) and math.isnan(x)


@dataclass
class Results:
    """Trials and epochs of one or many experiments, with the derived columns above.

    ``trials`` holds every row (all statuses); ``ranked`` the rows that count for rankings
    (COMPLETE, plus PRUNED when ``include_pruned``) with a finite value.
    """

    trials: pd.DataFrame
    epochs: pd.DataFrame
    value: str = "final"
    include_pruned: bool = False
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def statuses(self) -> tuple[str, ...]:
        return RANKED_STATUSES + (("PRUNED",) if self.include_pruned else ())

    @property
    def ranked(self) -> pd.DataFrame:
        t = self.trials
        return t[t["status"].isin(self.statuses) & np.isfinite(t["score"])]

    @property
    def tasks(self) -> list[str]:
        return sorted(self.ranked["task_key"].unique())

    def task(self, key: str) -> pd.DataFrame:
        """Ranked trials of one task, best first (ties: the lower Optuna number, as the
        selection rule)."""
        r = self.ranked
        r = r[r["task_key"] == key]
        if "number" in r:
            return r.sort_values(["score", "number"], ascending=[False, True], kind="stable")
        return r.sort_values("score", ascending=False, kind="stable")

    def metric(self, key: str) -> tuple[str, str]:
        """(metric name, mode) of a task."""
        row = self.trials[self.trials["task_key"] == key].iloc[0]
        return str(row["metric"]), str(row["mode"])


def _col(df: pd.DataFrame, name: str, default: object) -> pd.Series:
    if name in df.columns:
        return df[name]
    return pd.Series([default] * len(df), index=df.index, dtype=object)


def prepare(trials: pd.DataFrame, value: str = "final") -> tuple[pd.DataFrame, list[str]]:
    """Add the derived columns to raw trial rows; returns (frame, notes about missing columns)."""
    if value not in VALUE_CHOICES:
        raise DataError(f"value {value!r} is not one of {', '.join(VALUE_CHOICES)}")
    notes: list[str] = []
    t = trials.copy().reset_index(drop=True)
    for name in ("task", "trial_id", "status"):
        if name not in t.columns:
            raise DataError(f"trial rows lack the required column {name!r}")
    bad = sorted(set(t["status"].dropna()) - set(STATUSES))
    if bad:
        raise DataError(f"trial status {bad[0]!r} is not one of {', '.join(STATUSES)}")
    if "metric" not in t.columns:
        notes.append("Trial rows have no 'metric' column; the metric is called 'value'.")
    if "mode" not in t.columns:
        notes.append("Trial rows have no 'mode' column; higher values are taken as better.")
    t["metric"] = _col(t, "metric", "value").fillna("value").astype(str)
    t["mode"] = _col(t, "mode", "max").fillna("max").astype(str)
    bad_mode = sorted(set(t["mode"]) - {"max", "min"})
    if bad_mode:
        raise DataError(f"trial mode {bad_mode[0]!r} is not one of max, min")
    source = VALUE_CHOICES[value]
    if source not in t.columns:
        other = "final_value" if source == "best_value" else "best_value"
        if other not in t.columns:
            raise DataError("trial rows have neither 'best_value' nor 'final_value'")
        notes.append(f"Trial rows have no {source!r}; ranking on {other!r} instead.")
        source = other
    t["value"] = pd.to_numeric(t[source], errors="coerce").astype(float)
    sign = np.where(t["mode"] == "min", -1.0, 1.0)
    t["score"] = t["value"] * sign
    # one analysis unit per (task, dataset, metric): two deepfake sets are two tasks
    t["task_key"] = [
        f"{task}/{ds}" if isinstance(ds, str) and ds else str(task)
        for task, ds in zip(t["task"], _col(t, "dataset", None), strict=True)
    ]
    n_metrics = t.groupby("task_key")["metric"].nunique()
    multi = set(n_metrics[n_metrics > 1].index)
    t["task_key"] = [
        f"{key} [{metric}]" if key in multi else key
        for key, metric in zip(t["task_key"], t["metric"], strict=True)
    ]
    for task in sorted(multi):
        notes.append(f"Task {task!r} was searched under several metrics; each is its own unit.")
    if cfg("backbone") not in t.columns:
        notes.append("Trial rows have no backbone column; every trial counts as 'unknown'.")
    t["backbone"] = _col(t, cfg("backbone"), UNKNOWN).fillna(UNKNOWN).astype(str)
    t["family"] = t["backbone"].map(backbone_family)
    desc = _col(t, cfg("descriptor"), "ldp").fillna("ldp").astype(str)
    mask_in = _col(t, cfg("mask_input"), "rgb").fillna("rgb").astype(str)
    recon = _col(t, cfg("reconstruct"), "descriptor").fillna("descriptor").astype(str)
    cls_in = _col(t, cfg("classify_input"), "rgb").fillna("rgb").astype(str)
    aux = pd.to_numeric(_col(t, cfg("aux_weight"), np.nan), errors="coerce").astype(float)
    t["aux_weight"] = aux
    t["mask_ratio"] = pd.to_numeric(_col(t, cfg("mask_ratio"), np.nan), errors="coerce")
    t["descriptor"] = [
        descriptor_used(*a) for a in zip(desc, mask_in, recon, cls_in, aux, strict=True)
    ]
    t["modality"] = [
        modality_label(m, r, c, d, a)
        for m, r, c, d, a in zip(mask_in, recon, cls_in, desc, aux, strict=True)
    ]
    # columns a results writer did not record stay unknown rather than defaulted
    if cfg("descriptor") not in t.columns:
        t["descriptor"] = UNKNOWN
    if any(cfg(c) not in t.columns for c in ("mask_input", "reconstruct", "classify_input")):
        t["modality"] = UNKNOWN
    seed = _col(t, cfg("seed"), np.nan)
    if "seed" in t.columns:
        seed = seed.where(seed.notna(), t["seed"])
    t["seed_key"] = seed.astype(object).where(seed.notna(), "?").astype(str)
    return t, notes


def load_results(
    paths: str | Path | Iterable[str | Path], value: str = "final", include_pruned: bool = False
) -> Results:
    """Read every trial and epoch under ``paths`` (results roots, task or experiment folders).

    Raises ``DataError`` when a path is missing, a file is corrupt, or no trial is found.
    """
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if not paths:
        raise DataError("no results path given")
    for p in paths:
        if not Path(p).exists():
            raise DataError(f"results path {str(p)!r} does not exist")
    raw = read_trials(paths)
    if raw.empty:
        shown = ", ".join(repr(str(p)) for p in paths)
        raise DataError(f"no trial Parquet files (trials/*.parquet) found under {shown}")
    trials, notes = prepare(raw, value)

    trials, fp_notes = split_by_fingerprint(trials)  # one validation set per task is ranked
    notes += fp_notes
    epochs = read_epochs(paths)
    if epochs.empty:
        notes.append("No epoch rows were found; learning curves are left out.")
    else:
        keys = trials.drop_duplicates("trial_id").set_index("trial_id")["task_key"]
        epochs = epochs.assign(task_key=epochs["trial_id"].map(keys))
    res = Results(trials, epochs, value, include_pruned, [str(p) for p in paths], notes)
    n_nan = int((trials["status"].isin(res.statuses) & ~np.isfinite(trials["score"])).sum())
    if n_nan:
        res.notes.append(f"{n_nan} finished trial(s) have no finite metric value and are left out.")
    if res.ranked.empty:
        res.notes.append(
            "No trial counts for rankings (none is " + " or ".join(res.statuses) + "); "
            "most sections are empty."
        )
    return res


def split_by_fingerprint(trials: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(the trials to rank, notes listing the others): per task the largest ``val_set`` group.

    Rows without a ``val_set`` (a trial that failed before its first epoch, or results
    written before the column existed) are kept: nothing tells them apart.
    """
    if "val_set" not in trials or trials.empty:
        return trials, []
    fp = trials["val_set"]
    keep = pd.Series(True, index=trials.index)
    notes = []
    for task, idx in trials[fp.notna()].groupby("task_key").groups.items():
        sizes = fp[idx].astype(str).value_counts()
        if len(sizes) < 2:
            continue
        main = sizes.index[0]
        out = [i for i in idx if fp[i] != main]
        keep[out] = False
        listed = ", ".join(
            f"#{_num(trials.at[i, 'number'])} ({trials.at[i, 'experiment']}, val_set "
            f"{str(fp[i])[:12]})"
            for i in out[:20]
        )
        more = f" and {len(out) - 20} more" if len(out) > 20 else ""
        notes.append(
            f"Task {task}: {len(out)} trial(s) were scored on another validation set than the "
            f"{sizes.iloc[0]} ranked ones (val_set {main[:12]}) and are left out of the "
            f"rankings: {listed}{more}."
        )
    return trials[keep], notes


def _num(x: object) -> str:
    try:
        return str(int(x)) if math.isfinite(float(x)) else "?"
    except (TypeError, ValueError):
        return "?"
