"""The result format: the one module that writes and reads trial/epoch Parquet.

Importable without Ray. An experiment folder ``results/<task>/<name>/`` holds

- ``trials/<trial_id>.parquet``: one row per finished trial (COMPLETE / PRUNED / FAIL);
- ``epochs/<trial_id>.parquet``: one row per reported epoch of that trial;
- ``final/<trial_id>-s<seed>.parquet``: one row per run of the held-out stage
  (:mod:`search.final`), next to its weights ``final/<trial_id>-s<seed>.safetensors``.

Each file is written atomically (temporary file + rename), so a crash never leaves half a row,
and rewriting a trial replaces its file, so a resume never duplicates a row.
Columns are named here and nowhere else (see ``TRIAL_COLUMNS``, ``EPOCH_COLUMNS``); the config
of a trial is spread over ``cfg_<field>`` columns and its last-epoch metrics over
``final_<metric>`` columns.

Every file of one task has the same explicit schema (:func:`trial_schema`, :func:`epoch_schema`):
the documented columns typed by the prefix of their description (``int:``, ``float|null:``, ...),
``cfg_<field>`` typed like the ``TrialConfig`` field, and the metrics the task declares up front
(:func:`declared_metrics`), the per-group accuracies of the experiment's dataset included
(:func:`experiment_metrics`: the Recorder passes them to every write), even when a row lacks
them (a FAIL row's are null). So a folder of COMPLETE, PRUNED and FAIL rows reads as one table
in pandas, ``pyarrow.dataset`` and DuckDB, whichever file sorts first. A column nobody declared
is added per file (numbers as float64, a metric that is None everywhere too); reading unifies
such columns across files, and a value that cannot be cast is one sentence naming the file,
the column and the value.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import uuid
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lssat.errors import DataError

__all__ = [
    "CI_LOW",
    "CI_HIGH",
    "SCHEMA_VERSION",
    "TRIALS_DIR",
    "EPOCHS_DIR",
    "CFG_PREFIX",
    "FINAL_PREFIX",
    "STATUSES",
    "TRIAL_COLUMNS",
    "EPOCH_COLUMNS",
    "FINAL_DIR",
    "FINAL_COLUMNS",
    "final_stem",
    "write_final",
    "read_final",
    "ITEMS_DIR",
    "ITEM_COLUMNS",
    "FINAL_MODES",
    "TRAIN_METRICS",
    "column_type",
    "config_fields",
    "declared_metrics",
    "experiment_metrics",
    "trial_schema",
    "epoch_schema",
    "config_columns",
    "final_columns",
    "write_trial",
    "write_epochs",
    "read_trials",
    "read_epochs",
]

SCHEMA_VERSION = 2  # 2: explicit column types; dataset, val_set, weights, attempts, ...
TRIALS_DIR = "trials"
EPOCHS_DIR = "epochs"
CFG_PREFIX = "cfg_"
FINAL_PREFIX = "final_"
STATUSES = ("COMPLETE", "PRUNED", "FAIL")

# fixed trial columns (plus cfg_* and final_* columns) with their meaning
TRIAL_COLUMNS: dict[str, str] = {
    "schema_version": "int: version of this schema",
    "task": "str: task name (deepfake, attributes, emotion, classify, ...)",
    "experiment": "str: experiment name (folder results/<task>/<name>)",
    "trial_id": "str: unique trial id (Ray Tune's id of its first run, kept when --resume runs "
    "it again), file name of the row",
    "number": "int: Optuna trial number",
    "status": "str: COMPLETE | PRUNED | FAIL",
    "stop_reason": "str: completed | early_stopped | error | non_finite_loss | out_of_memory",
    "error": "str|null: error text of a failed trial",
    "metric": "str: the task metric the search optimised (e.g. val_auc)",
    "mode": "str: max | min",
    "final_value": "float: metric at the last epoch run",
    "best_value": "float: best metric over the epochs run",
    "best_epoch": "int: epoch (1-based) of best_value",
    "epochs_run": "int: epochs completed",
    "wall_time_s": "float: trial wall time (in the session that finished it)",
    "samples_per_s": "float: mean training throughput",
    "params_count": "int: model parameters",
    "gflops": "float|null: forward GFLOPs per image of the full pass, when measured",
    "cpus": "float: CPUs per trial",
    "gpus": "float: GPUs per trial (fractional allowed)",
    "workers": "int: Ray Train workers (1 = plain trial)",
    "node": "str: host name that ran the trial (the Tune trial process)",
    "node_ip": "str|null: IP address of that node, as Ray reports it",
    "node_id": "str|null: Ray node id (hex) of the process that trained the last epoch (rank 0 "
    "for multi-worker trials); tells simulated nodes on one host apart, and a restarted "
    "trial's new node",
    "gpu_ids": "str|null: comma-separated Ray GPU ids assigned to that process ('' = none); "
    "trials with fractional --gpus-per-trial on one node share an id",
    "seed": "int: trial seed",
    "versions": "str: JSON of package versions",
    "git_commit": "str: commit of the code that ran",
    "started_at": "str: ISO-8601 UTC start",
    "ended_at": "str: ISO-8601 UTC end",
    "params": "str: JSON of the parameters Optuna sampled (the searched subset of cfg_*)",
    "session": "int: search session that finished the trial (0 = first run, +1 per --resume)",
    "param_distributions": "str: JSON {param: Optuna distribution JSON} of the active (sampled) "
    "parameters, so analysis needs no search space",
    "dataset": "str: dataset name the trial trained on",
    "dataset_hash": "str: fingerprint of the prepared dataset (meta.json + shards)",
    "val_set": "str: sha256 fingerprint of the fixed validation rows",
    "val_is_test": "bool: the validation rows are the dataset's test split (no separate val)",
    "weights_source": "str|null: where the pretrained backbone weights came from (a local "
    ".safetensors file, or timm's download location); null = trained from scratch",
    "weights_sha256": "str|null: sha256 of that local weights file (null for a download or "
    "from scratch)",
    "attempts": "int: runs it took to finish the trial (1 + retries after node failures)",
    "warm_start_from": "str|null: the experiment folder this trial's configuration was "
    "enqueued from (--warm-start: one of its top-k), else null",
    "objectives": "str|null: JSON {name: max|min} of the study's objectives in order (the "
    "first is `metric`); null in rows written before multi-objective searches",
    "objective_values": "str|null: JSON list of the trial's objective values at its last epoch, "
    "in `objectives` order (what a COMPLETE trial told Optuna; null for a FAIL)",
}
EPOCH_COLUMNS: dict[str, str] = {
    "schema_version": "int: version of this schema",
    "task": "str: task name",
    "experiment": "str: experiment name",
    "trial_id": "str: trial id",
    "number": "int: Optuna trial number",
    "epoch": "int: 1-based epoch",
    "checkpoint": "str|null: checkpoint folder saved at this epoch (deleted once the trial "
    "ends, unless --keep-checkpoints)",
    "node_id": "str|null: Ray node id of the process that trained this epoch",
    "gpu_ids": "str|null: Ray GPU ids of that process ('' = none)",
}
FINAL_DIR = "final"
CI_LOW, CI_HIGH = "_ci_low", "_ci_high"  # suffixes of a metric's bootstrap interval columns
# fixed columns of a final-stage row (plus cfg_* and the metric columns below)
FINAL_COLUMNS: dict[str, str] = {
    "schema_version": "int: version of this schema",
    "task": "str: task name",
    "experiment": "str: experiment name",
    "run_id": "str: <trial_id>-s<seed>, file name of the row and of its weights",
    "trial_id": "str: the search trial whose configuration was retrained",
    "number": "int: that trial's Optuna number",
    "rank": "int: 1 = the configuration chosen on validation (best selection_value)",
    "selection_value": "float: the value the search optimised for that trial (what Optuna "
    "was told)",
    "metric": "str: the search's metric (val_...); its test twin is test_<...>",
    "mode": "str: max | min",
    "seed": "int: the retrained run's seed (derived from the search seed)",
    "status": "str: COMPLETE | FAIL",
    "error": "str|null: error text of a failed run",
    "epochs_run": "int: epochs trained (the full budget when COMPLETE)",
    "dataset": "str: prepared dataset the run trained on",
    "dataset_hash": "str: its content identity (sha256)",
    "val_set": "str: sha256 fingerprint of the validation rows",
    "val_is_test": "bool: validation was the test split (search run with "
    "--allow-test-selection): test numbers are then selection numbers too",
    "eval_sets": "str: JSON {name: {path, dataset, dataset_hash, split, rows, units}} of "
    "every held-out set (test and each --eval-data)",
    "ci_level": "float: confidence level of the bootstrap intervals (0.95)",
    "ci_method": "str: scipy.stats.bootstrap method, resampling units = videos (images "
    "where there are none), stratified by label",
    "n_resamples": "int: bootstrap resamples",
    "weights": "str|null: weights file, relative to the experiment folder",
    "wall_time_s": "float: run wall time",
    "node": "str|null: host that ran it",
    "git_commit": "str: commit of the code that ran",
    "versions": "str: JSON of package versions",
    "started_at": "str: ISO-8601 UTC start",
    "ended_at": "str: ISO-8601 UTC end",
    "final_mode": "str|null: top_k | front | per (each level's best: the confirmation stage)",
    "group_param": "str|null: the parameter a per stage compares (e.g. backbone)",
    "group": "str|null: this run's level of `group_param` (e.g. test_resnet)",
    "items": "str|null: its per-item outputs (ITEM_COLUMNS), final/items/<run_id>.parquet",
}
FINAL_MODES = ("top_k", "front", "per")
ITEMS_DIR = "items"  # per-item outputs of a final run (search.results.items): paired intervals
ITEM_COLUMNS: dict[str, str] = {
    "task": "str: task name",
    "experiment": "str: experiment name",
    "run_id": "str: the final run (<trial_id>-s<seed>)",
    "set": "str: held-out set (test, or an --eval-data name)",
    "row": "int: the item's row in the prepared dataset",
    "unit": "int: its bootstrap unit (video id; -1 = none, the image is its own unit)",
    "label": "int: its class (-1 for multi-label data)",
    "pred": "int: the predicted class (binary: 1 when the logit >= 0; -1 for multi-label)",
    "score": "float|null: the logit that ranks items (binary tasks only; AUC, video AUC)",
    "correct": "float: correctness in [0, 1] (multi-label: the share of attributes right)",
}
# metric columns of a final row: val_<metric> (the run's last-epoch validation), and for every
# held-out set S (test, then each --eval-data name) S_<metric>, S_<metric>_ci_low,
# S_<metric>_ci_high, S_loss, S_rows and S_units (videos, or images where there are none)


def final_stem(trial_id: str, seed: int) -> str:
    """``<trial_id>-s<seed>``: the file name (without suffix) of one final run."""
    return f"{trial_id}-s{int(seed)}"


def write_final(exp_dir: str | Path, row: Mapping[str, Any]) -> Path:
    """Write one final-stage row to ``final/<run_id>.parquet`` atomically; returns the path."""
    missing = [c for c in ("task", "experiment", "run_id", "trial_id", "status") if c not in row]
    if missing:
        raise ValueError(f"final row lacks required column {missing[0]!r}")
    data = {"schema_version": SCHEMA_VERSION, **{k: _jsonable(v) for k, v in row.items()}}
    table = pa.Table.from_pylist([data])
    return _atomic_write(table, Path(exp_dir) / FINAL_DIR / f"{row['run_id']}.parquet")


def read_final(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """All final-stage rows under the given results roots / task / experiment folders."""
    return _read([paths] if isinstance(paths, str | Path) else paths, FINAL_DIR)


# every other epoch column is a metric run_trial reported (train_loss*, lr, samples_per_s,
# epoch_time_s, params_count, gflops, val_* ...), named as reported

# what lssat.train.run_trial reports every epoch besides the task's val_* metrics
TRAIN_METRICS: dict[str, str] = {
    "step": "int",
    "train_loss": "float",
    "train_loss_primary": "float",
    "train_loss_aux": "float",
    "lr": "float",
    "samples_per_s": "float",
    "epoch_time_s": "float",
    "params_count": "int",
    "gflops": "float",
}
_ARROW = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bool": pa.bool_()}


def column_type(description: str) -> pa.DataType:
    """The Arrow type of a documented column from its prefix (``int:``, ``str|null:`` ...)."""
    kind = description.split(":", 1)[0].split("|", 1)[0].strip()
    if kind not in _ARROW:
        raise ValueError(f"column description {description!r} does not start with a type")
    return _ARROW[kind]


def _field_type(annotation: Any) -> pa.DataType:
    """Arrow type of a ``TrialConfig`` field annotation (dicts and lists are stored as JSON)."""
    text = str(annotation).split("|", 1)[0].strip()
    return _ARROW.get(text, pa.string())


@cache
def config_fields() -> tuple[pa.Field, ...]:
    """One ``cfg_<field>`` Arrow field per ``TrialConfig`` field, typed like the field."""
    from lssat.config import TrialConfig

    return tuple(
        pa.field(f"{CFG_PREFIX}{f.name}", _field_type(f.type))
        for f in dataclasses.fields(TrialConfig)
    )


@cache
def declared_metrics(task: str | None) -> tuple[str, ...]:
    """The epoch metrics every trial of ``task`` can report: the engine's training metrics
    and the task's ``val_*`` metrics (an unknown task: the training metrics only)."""
    names = list(TRAIN_METRICS)
    if task:
        try:
            from lssat.tasks import TASKS

            spec = TASKS.get(str(task))
            names += spec.metric_keys() if spec is not None else []
        except ImportError:  # the reading side needs no torch: metric columns then come as found
            pass
    return tuple(names)


def experiment_metrics(task: str | None, meta: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Every epoch metric a trial of ``task`` can report on a dataset with ``meta`` (its
    ``meta.json``): :func:`declared_metrics` plus the per-group accuracies of its groups
    (``val_acc_group_<column>_<value>``) and the classes of a multi-label task."""
    if not meta:
        return declared_metrics(task)
    try:
        from lssat.tasks import TASKS
    except ImportError:  # the reading side needs no torch
        return declared_metrics(task)
    spec = TASKS.get(str(task)) if task else None
    keys = spec.metric_keys(meta) if spec is not None else []
    return tuple(dict.fromkeys([*declared_metrics(task), *keys]))


def _metric_type(name: str) -> pa.DataType:
    return _ARROW[TRAIN_METRICS.get(name, "float")]


def trial_schema(
    task: str | None = None,
    row: Mapping[str, Any] | None = None,
    metrics: Iterable[str] | None = None,
) -> pa.Schema:
    """The schema of a trial file of ``task``: documented columns, ``cfg_*``, ``final_*`` of
    the declared metrics (``metrics``, default :func:`declared_metrics`; all float64), then
    any other column of ``row`` (inferred)."""
    names = declared_metrics(task) if metrics is None else tuple(metrics)
    fields = [pa.field(k, column_type(v)) for k, v in TRIAL_COLUMNS.items()]
    fields += config_fields()
    fields += [pa.field(f"{FINAL_PREFIX}{m}", pa.float64()) for m in names]
    return _with_extra(fields, row or {}, metrics=False)


def epoch_schema(
    task: str | None = None,
    rows: Iterable[Mapping[str, Any]] = (),
    metrics: Iterable[str] | None = None,
) -> pa.Schema:
    """The schema of an epoch file of ``task``: documented columns, the declared metrics
    (``metrics``, default :func:`declared_metrics`), then any other column of ``rows``
    (numbers, and values that are None in every row, as float64)."""
    names = declared_metrics(task) if metrics is None else tuple(metrics)
    fields = [pa.field(k, column_type(v)) for k, v in EPOCH_COLUMNS.items()]
    fields += [pa.field(m, _metric_type(m)) for m in names]
    extra: dict[str, Any] = {}
    for r in rows:
        for k, v in r.items():
            if extra.get(k) is None:
                extra[k] = v
    return _with_extra(fields, extra, metrics=True)


def _with_extra(fields: list[pa.Field], row: Mapping[str, Any], metrics: bool) -> pa.Schema:
    """``fields`` plus the undeclared columns of ``row``: metrics (``final_*``, or every epoch
    column when ``metrics``) as float64, others typed by their value."""
    known = {f.name for f in fields}
    for key in sorted(k for k in row if k not in known):
        as_float = metrics or key.startswith(FINAL_PREFIX)
        if as_float and row[key] is None:  # a metric with no value yet is still a number
            fields.append(pa.field(key, pa.float64()))
            continue
        fields.append(pa.field(key, _infer(row[key], number_as_float=as_float)))
    return pa.schema(fields)


def _infer(value: Any, number_as_float: bool) -> pa.DataType:
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int) and not number_as_float:
        return pa.int64()
    if isinstance(value, int | float):
        return pa.float64()
    return pa.string()


def _coerce(value: Any, type_: pa.DataType) -> Any:
    """``value`` as a Python value of Arrow type ``type_``; one that does not fit (an invalid
    config of a FAIL row) becomes null for numbers and its text for strings."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        value = value.item()
    if pa.types.is_string(type_):
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if pa.types.is_boolean(type_):
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if pa.types.is_integer(type_):
        return int(value) if math.isfinite(value) and float(value).is_integer() else None
    return float(value)


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    columns = {f.name: [_coerce(r.get(f.name), f.type) for r in rows] for f in schema}
    return pa.Table.from_pydict(columns, schema=schema)


def _atomic_write(table: pa.Table, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def config_columns(config: Mapping[str, Any]) -> dict[str, Any]:
    """Spread a flat config dict over ``cfg_<field>`` columns (dicts/lists as JSON)."""
    return {f"{CFG_PREFIX}{k}": _jsonable(v) for k, v in config.items()}


def final_columns(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Spread last-epoch metrics over ``final_<metric>`` columns (numbers only)."""
    return {
        f"{FINAL_PREFIX}{k}": float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def write_trial(
    exp_dir: str | Path, row: Mapping[str, Any], metrics: Iterable[str] | None = None
) -> Path:
    """Write one trial row to ``trials/<trial_id>.parquet`` atomically; returns the path.

    Columns the row lacks are written as nulls (:func:`trial_schema` of its task, with the
    experiment's declared ``metrics``: :func:`experiment_metrics`)."""
    missing = [c for c in ("task", "experiment", "trial_id", "status") if c not in row]
    if missing:
        raise ValueError(f"trial row lacks required column {missing[0]!r}")
    if row["status"] not in STATUSES:
        raise ValueError(f"trial status {row['status']!r} is not one of {', '.join(STATUSES)}")
    data = {**{k: _jsonable(v) for k, v in row.items()}, "schema_version": SCHEMA_VERSION}
    table = _table([data], trial_schema(str(row["task"]), data, metrics))
    return _atomic_write(table, Path(exp_dir) / TRIALS_DIR / f"{row['trial_id']}.parquet")


def write_epochs(
    exp_dir: str | Path,
    ident: Mapping[str, Any],
    rows: Iterable[Mapping[str, Any]],
    metrics: Iterable[str] | None = None,
) -> Path:
    """Write every epoch row of one trial to ``epochs/<trial_id>.parquet`` atomically.

    ``ident`` gives task, experiment, trial_id and number; each row gives ``epoch`` and metrics
    (the experiment's declared ``metrics`` are columns even when no row has them).
    """
    base = {**ident, "schema_version": SCHEMA_VERSION}
    data = [{**{k: _jsonable(v) for k, v in r.items()}, **base} for r in rows]
    table = _table(data, epoch_schema(str(ident.get("task") or ""), data, metrics))
    return _atomic_write(table, Path(exp_dir) / EPOCHS_DIR / f"{ident['trial_id']}.parquet")


def _files(paths: Iterable[str | Path], kind: str) -> list[Path]:
    """Every result file of ``kind`` under ``paths``, each once (overlapping paths such as
    ``results/`` and ``results/deepfake/x`` name the same files)."""
    found: dict[Path, None] = {}
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise DataError(f"results path {str(p)!r} does not exist")
        if p.is_file():
            found.setdefault(p.resolve())
            continue
        for d in sorted([p] if p.name == kind else p.rglob(kind)):
            if d.is_dir():
                for f in sorted(d.glob("*.parquet")):
                    if not f.name.startswith("."):
                        found.setdefault(f.resolve())
    return list(found)


def _base_schema(kind: str) -> pa.Schema:
    """The columns every file of ``kind`` has in this version (metric columns come as found)."""
    if kind == TRIALS_DIR:
        return pa.schema(
            [pa.field(k, column_type(v)) for k, v in TRIAL_COLUMNS.items()] + list(config_fields())
        )
    if kind == FINAL_DIR:
        return pa.schema(
            [pa.field(k, column_type(v)) for k, v in FINAL_COLUMNS.items()] + list(config_fields())
        )
    return pa.schema([pa.field(k, column_type(v)) for k, v in EPOCH_COLUMNS.items()])


def _conform(table: pa.Table, base: pa.Schema, path: Path) -> pa.Table:
    """``table`` with every column of ``base`` (missing ones null, older types cast)."""
    version = (
        table.column("schema_version").to_pylist() if "schema_version" in table.schema.names else []
    )
    newest = max((v for v in version if v is not None), default=1)
    if newest > SCHEMA_VERSION:
        raise DataError(
            f"result file {str(path)!r} has schema version {newest}, newer than the "
            f"{SCHEMA_VERSION} this code reads; update lssat-search to read it"
        )
    for f in base:
        if f.name not in table.schema.names:
            table = table.append_column(f, pa.nulls(len(table), f.type))
        elif table.schema.field(f.name).type != f.type:
            table = _cast(table, f.name, f.type, path)
    return table


def _cast(table: pa.Table, name: str, type_: pa.DataType, path: Path) -> pa.Table:
    """``table`` with column ``name`` cast to ``type_``; a value that does not fit is a
    ``DataError`` naming the file, the column and the value."""
    i = table.schema.get_field_index(name)
    try:
        return table.set_column(i, pa.field(name, type_), table.column(i).cast(type_))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    bad = None
    for value in table.column(i).to_pylist():
        try:
            pa.array([value]).cast(type_)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            bad = value
            break
    raise DataError(
        f"result file {str(path)!r}: column {name!r} holds {bad!r}, which is not "
        f"{_type_name(type_)} as in the other files; fix or remove that file"
    )


def _type_name(type_: pa.DataType) -> str:
    return {"int64": "an integer", "double": "a number", "string": "text", "bool": "a boolean"}.get(
        str(type_), str(type_)
    )


def _unify(tables: list[pa.Table], paths: list[Path]) -> list[pa.Table]:
    """The columns no schema declares (metrics of older files, extras) given one type across
    files: numbers of different kinds as float64, text that holds numbers as float64."""
    seen: dict[str, set[pa.DataType]] = {}
    for t in tables:
        for f in t.schema:
            if not pa.types.is_null(f.type):
                seen.setdefault(f.name, set()).add(f.type)
    target: dict[str, pa.DataType] = {}
    for name, types in seen.items():
        if len(types) < 2:
            continue
        numeric = all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in types)
        textual = any(pa.types.is_string(t) or pa.types.is_large_string(t) for t in types)
        if numeric or textual and any(pa.types.is_floating(t) for t in types):
            target[name] = pa.float64()
        elif textual:
            target[name] = pa.string()
    out = []
    for t, path in zip(tables, paths, strict=True):
        for name, type_ in target.items():
            if name in t.schema.names and t.schema.field(name).type != type_:
                t = _cast(t, name, type_, path)
        out.append(t)
    return out


def _read(paths: Iterable[str | Path], kind: str) -> pd.DataFrame:
    tables = []
    base = _base_schema(kind)
    files = _files(paths, kind)
    for f in files:
        try:
            table = pq.read_table(f)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"result file {str(f)!r} is corrupt or unreadable ({exc})") from exc
        tables.append(_conform(table, base, f))
    if not tables:
        return pd.DataFrame()
    tables = _unify(tables, files)
    try:
        df = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        where = ", ".join(repr(str(f)) for f in files[:3]) + (" ..." if len(files) > 3 else "")
        raise DataError(f"result files {where} cannot be read as one table ({exc})") from None
    key = ["task", "experiment", "run_id" if kind == FINAL_DIR else "trial_id"]
    key += ["epoch"] if kind == EPOCHS_DIR else []
    return df.drop_duplicates(subset=key, keep="last").reset_index(drop=True)


def read_trials(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """All trial rows under the given results roots / task / experiment folders or files
    (version-1 files read with the newer columns null; each trial once)."""
    return _read([paths] if isinstance(paths, str | Path) else paths, TRIALS_DIR)


def read_epochs(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """All epoch rows under the given results roots / task / experiment folders or files."""
    return _read([paths] if isinstance(paths, str | Path) else paths, EPOCHS_DIR)
