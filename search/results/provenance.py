"""Where a result came from: package versions and the git commit of the code that ran."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("lssat-search", "torch", "timm", "ray", "optuna", "numpy", "pyarrow")


def versions() -> dict[str, str]:
    """Python and the key package versions (``"missing"`` when one is not installed)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def git_commit(root: str | Path | None = None) -> str:
    """``HEAD``'s hash (``+dirty`` when tracked files changed), or ``"unknown"`` outside git."""
    cwd = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = head.stdout.strip()
    return commit + ("+dirty" if dirty.stdout.strip() else "")
