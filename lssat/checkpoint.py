"""Full training state to and from a directory (``state.pt``, loadable with ``weights_only``)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lssat.errors import DataError, ResultsWriteError
from lssat.scratch import (  # noqa: F401  (re-exported: where checkpoints wait for Ray)
    SCRATCH_PREFIX,
    release_scratch,
    scratch_dir,
    sweep_scratch,
)

STATE_FILE = "state.pt"


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states as tensors and plain values."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "py_version": py_version,
        "py_state": torch.tensor(py_state, dtype=torch.int64),
        "py_gauss": py_gauss,
        "np_name": str(np_name),
        "np_keys": torch.from_numpy(np_keys.astype(np.int64)),
        "np_pos": int(np_pos),
        "np_has_gauss": int(np_has_gauss),
        "np_gauss": float(np_gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    random.setstate((state["py_version"], tuple(state["py_state"].tolist()), state["py_gauss"]))
    np.random.set_state(
        (
            state["np_name"],
            state["np_keys"].numpy().astype(np.uint32),
            state["np_pos"],
            state["np_has_gauss"],
            state["np_gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (model, optimiser, scheduler, epoch, ...) plus RNG states."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STATE_FILE
    try:
        torch.save({**state, "rng": rng_state()}, path)
    except OSError:
        raise  # a full or read-only disk: classified as such by the search
    except Exception as exc:  # noqa: BLE001 - torch's writer raises RuntimeError, pickle errors
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ResultsWriteError(
            f"checkpoint {str(directory)!r} could not be written ({type(exc).__name__}: {first})"
        ) from None
    return path


def load_checkpoint(directory: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a :func:`save_checkpoint` directory with ``torch.load(..., weights_only=True)``."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise DataError(f"checkpoint directory {str(directory)!r} has no {STATE_FILE}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user problem
        raise DataError(f"checkpoint file {str(path)!r} cannot be read ({err})") from err


def config_json(config: Any) -> str:
    """The trial config as JSON text, stored with the checkpoint for reference."""
    return json.dumps(config.to_dict(), sort_keys=True, default=str)
