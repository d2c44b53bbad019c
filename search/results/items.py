"""Per-item held-out outputs of the final runs (``final/items/<run_id>.parquet``): written by
the final stage's workers, read by the analysis to resample the same test items for every
configuration and seed. The columns are declared in :mod:`search.results.schema`
(``ITEM_COLUMNS``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lssat.errors import DataError
from search.results.schema import (
    FINAL_DIR,
    ITEM_COLUMNS,
    ITEMS_DIR,
    _atomic_write,
    _coerce,
    column_type,
)

__all__ = ["items_path", "write_items", "read_items"]


def items_path(exp_dir: str | Path, run_id: str) -> Path:
    """``final/items/<run_id>.parquet`` of an experiment folder."""
    return Path(exp_dir) / FINAL_DIR / ITEMS_DIR / f"{run_id}.parquet"


def write_items(path: str | Path, ident: Mapping[str, Any], columns: Mapping[str, Any]) -> Path:
    """Write one run's per-item outputs atomically: ``ident`` gives task, experiment and run_id,
    ``columns`` the arrays of the other ``ITEM_COLUMNS`` (one entry per item)."""
    n = len(columns["row"])
    data = {k: [ident[k]] * n for k in ("task", "experiment", "run_id")}
    data.update({k: list(columns[k]) for k in ITEM_COLUMNS if k not in data})
    schema = pa.schema([pa.field(k, column_type(v)) for k, v in ITEM_COLUMNS.items()])
    table = pa.Table.from_pydict(
        {f.name: [_coerce(v, f.type) for v in data[f.name]] for f in schema}, schema=schema
    )
    return _atomic_write(table, Path(path))


def read_items(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """Every per-item row of the final runs under the given folders (empty when none)."""
    plist = [paths] if isinstance(paths, str | Path) else list(paths)
    files: dict[Path, None] = {}
    for p in plist:
        p = Path(p)
        if not p.exists():
            raise DataError(f"results path {str(p)!r} does not exist")
        dirs = [p] if p.name == ITEMS_DIR else [d for d in p.rglob(ITEMS_DIR)
                                                 if d.parent.name == FINAL_DIR]  # fmt: skip
        for d in sorted(dirs):
            for f in sorted(d.glob("*.parquet")):
                if not f.name.startswith("."):
                    files.setdefault(f.resolve())
    tables = []
    for f in files:
        try:
            tables.append(pq.read_table(f))
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"result file {str(f)!r} is corrupt or unreadable ({exc})") from exc
    if not tables:
        return pd.DataFrame(columns=list(ITEM_COLUMNS))
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()
