"""``search.json``: the settings a search started with (data, budget, seed, resources, warm
start, sessions), read on ``--resume`` and by the later stages; written atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lssat.errors import DataError

SETTINGS_KEYS = ("data", "trials", "seed")  # what a resume reads without a default


def load_settings(exp_dir: Path) -> dict[str, Any] | None:
    """The run settings the experiment was started with (``search.json``), if any; a file that
    cannot be read is a ``DataError`` naming it."""
    path = exp_dir / "search.json"
    if not path.is_file():
        return None
    try:
        settings = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"settings file '{path}' cannot be read ({exc})") from exc
    return settings if isinstance(settings, dict) else {}


def check_resumable(exp_dir: Path, settings: Mapping[str, Any]) -> None:
    """``DataError`` naming ``search.json`` unless it holds what a resume reads."""
    missing = [k for k in SETTINGS_KEYS if k not in settings]
    if missing:
        path = exp_dir / "search.json"
        raise DataError(f"settings file '{path}' lacks {', '.join(missing)}; it cannot be resumed")


def save_settings(exp_dir: Path, settings: Mapping[str, Any]) -> None:
    """Write ``search.json`` atomically (written, synced, then renamed over the old one)."""
    tmp = exp_dir / ".search.json.tmp"
    with open(tmp, "w") as fh:
        fh.write(json.dumps(settings, indent=2, sort_keys=True, default=str))
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(exp_dir / "search.json")
