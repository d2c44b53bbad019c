"""The result format: the one module that writes and reads trial/epoch Parquet.

Importable without Ray. An experiment folder ``results/<task>/<name>/`` holds

- ``trials/<trial_id>.parquet``: one row per finished trial (COMPLETE / PRUNED / FAIL);
- ``epochs/<trial_id>.parquet``: one row per reported epoch of that trial.

Each file is written atomically (temporary file + rename), so a crash never leaves half a row,
and rewriting a trial replaces its file, so a resume never duplicates a row.
Columns are named here and nowhere else (see ``TRIAL_COLUMNS``, ``EPOCH_COLUMNS``); the config
of a trial is spread over ``cfg_<field>`` columns and its last-epoch metrics over
``final_<metric>`` columns.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lssat.errors import DataError

SCHEMA_VERSION = 1
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
    "attempts": "int: runs it took to finish the trial (1 + retries after node failures)",
    "weights_source": "str|null: where the pretrained backbone weights came from (a local "
    ".safetensors file, or timm's download location); null = trained from scratch",
    "weights_sha256": "str|null: sha256 of that local weights file (null for a download or "
    "from scratch)",
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
}
# every other epoch column is a metric run_trial reported (train_loss*, lr, samples_per_s,
# epoch_time_s, params_count, gflops, val_* ...), named as reported


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


def write_trial(exp_dir: str | Path, row: Mapping[str, Any]) -> Path:
    """Write one trial row to ``trials/<trial_id>.parquet`` atomically; returns the path."""
    missing = [c for c in ("task", "experiment", "trial_id", "status") if c not in row]
    if missing:
        raise ValueError(f"trial row lacks required column {missing[0]!r}")
    if row["status"] not in STATUSES:
        raise ValueError(f"trial status {row['status']!r} is not one of {', '.join(STATUSES)}")
    data = {"schema_version": SCHEMA_VERSION, **{k: _jsonable(v) for k, v in row.items()}}
    table = pa.Table.from_pylist([data])
    return _atomic_write(table, Path(exp_dir) / TRIALS_DIR / f"{row['trial_id']}.parquet")


def write_epochs(
    exp_dir: str | Path, ident: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]
) -> Path:
    """Write every epoch row of one trial to ``epochs/<trial_id>.parquet`` atomically.

    ``ident`` gives task, experiment, trial_id and number; each row gives ``epoch`` and metrics.
    """
    base = {"schema_version": SCHEMA_VERSION, **ident}
    data = [{**base, **{k: _jsonable(v) for k, v in r.items()}} for r in rows]
    table = pa.Table.from_pylist(data) if data else pa.table({k: [] for k in base})
    return _atomic_write(table, Path(exp_dir) / EPOCHS_DIR / f"{ident['trial_id']}.parquet")


def _files(paths: Iterable[str | Path], kind: str) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise DataError(f"results path {str(p)!r} does not exist")
        if p.is_file():
            found.append(p)
            continue
        for d in sorted([p] if p.name == kind else p.rglob(kind)):
            if d.is_dir():
                found.extend(sorted(f for f in d.glob("*.parquet") if not f.name.startswith(".")))
    return found


def _read(paths: Iterable[str | Path], kind: str) -> pd.DataFrame:
    tables = []
    for f in _files(paths, kind):
        try:
            tables.append(pq.read_table(f))
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"result file {str(f)!r} is corrupt or unreadable ({exc})") from exc
    if not tables:
        return pd.DataFrame()
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def read_trials(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """All trial rows under the given results roots / task / experiment folders or files."""
    return _read([paths] if isinstance(paths, str | Path) else paths, TRIALS_DIR)


def read_epochs(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """All epoch rows under the given results roots / task / experiment folders or files."""
    return _read([paths] if isinstance(paths, str | Path) else paths, EPOCHS_DIR)
