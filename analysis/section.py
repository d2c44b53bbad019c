"""The report's building blocks: analysis options, one section (text, tables, figures), and
number formatting for prose. Imports nothing of ``analysis`` itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lssat.errors import ConfigError

BLOCKS = ("auto", "task")  # blocks are tasks: trials are never paired across tasks by seed
MATTERS = 0.15  # fANOVA share from which the text says a parameter "matters" in a task


@dataclass
class Options:
    """Knobs of the analysis (CLI flags of ``python -m analysis.report``)."""

    top_k: int = 5
    alpha: float = 0.05
    level: float = 0.95
    n_resamples: int = 2000
    seed: int = 0
    blocks: str = "auto"

    def __post_init__(self) -> None:
        if self.blocks == "task_seed":
            raise ConfigError(
                "blocks 'task_seed' is gone: per-trial seeds do not pair trials across tasks; "
                "use --blocks task"
            )
        if self.blocks not in BLOCKS:
            raise ConfigError(f"blocks {self.blocks!r} is not one of {', '.join(BLOCKS)}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha {self.alpha!r} is not in (0, 1)")
        if not 0 < self.level < 1:
            raise ConfigError(f"level {self.level!r} is not in (0, 1)")
        if self.top_k < 1:
            raise ConfigError(f"top_k {self.top_k!r} must be at least 1")
        if self.n_resamples < 100:
            raise ConfigError(
                f"n_resamples (--n-resamples) {self.n_resamples!r} is too small; use at least 100"
            )
        if self.seed < 0:
            raise ConfigError(f"seed (--seed) {self.seed!r} is negative; use an integer >= 0")


@dataclass
class Section:
    """One report section: paragraphs, named tables and figures, notes on missing inputs."""

    key: str
    title: str
    text: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    headed: dict[str, list[str]] = field(default_factory=dict)  # sub-heading -> paragraphs


def fmt(x: float, digits: int = 4) -> str:
    """A number for prose: 4 significant digits, 'n/a' for NaN."""
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def fmt_ci(lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "(no interval)"
    return f"[{fmt(lo)}, {fmt(hi)}]"
