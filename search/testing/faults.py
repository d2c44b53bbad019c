"""TEST-ONLY stand-ins for ``lssat.train.run_trial`` that misbehave on purpose.

The search driver reads ``LSSAT_TRIAL_FN=module:function`` and ``LSSAT_TRIAL_FN_ARGS`` (a JSON
object of keyword arguments) from its environment and every trial then calls that function
instead of ``run_trial`` (see :func:`search.execution.trainable.load_trial_fn`). Never set them
for a real search. Each function appends one line per attempt to ``<log_dir>/attempts.txt``:
``<number> <node_id> <resumed_from_epoch|0>``, so a test counts retries exactly.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Report = Callable[..., None]


def _checkpoint_epoch(checkpoint_dir: Any) -> int:
    """Epoch stored in a run_trial checkpoint folder (0 when none / unknown)."""
    if not checkpoint_dir:
        return 0
    from lssat.checkpoint import load_checkpoint

    try:
        return int(load_checkpoint(Path(checkpoint_dir)).get("epoch", 0))
    except Exception:
        return -1


def _log_attempt(log_dir: str, config: Any, checkpoint_dir: Any) -> None:
    import ray

    node = ray.get_runtime_context().get_node_id()
    line = f"{config.seed} {node} {_checkpoint_epoch(checkpoint_dir)}\n"
    with open(Path(log_dir) / "attempts.txt", "a") as fh:
        fh.write(line)


def kill_after_epoch(
    config: Any,
    data: Any,
    report: Report,
    *,
    log_dir: str,
    epoch: int = 1,
    checkpoint_dir: Any = None,
    **hooks: Any,
) -> Any:
    """``run_trial`` that SIGKILLs its own process right after reporting epoch >= ``epoch``
    (i.e. during the next epoch, after that epoch's checkpoint reached Tune)."""
    from lssat.train import run_trial

    _log_attempt(log_dir, config, checkpoint_dir)

    def killing_report(metrics: Mapping[str, Any], ckpt: str | None = None) -> None:
        report(metrics, ckpt)
        if int(metrics.get("epoch", 0)) >= epoch:
            os.kill(os.getpid(), signal.SIGKILL)

    return run_trial(config, data, killing_report, checkpoint_dir=checkpoint_dir, **hooks)


def slow_epochs(
    config: Any,
    data: Any,
    report: Report,
    *,
    log_dir: str,
    seconds: float = 5.0,
    checkpoint_dir: Any = None,
    **hooks: Any,
) -> Any:
    """``run_trial`` that sleeps ``seconds`` after each report of its first attempt (a window
    to remove its node); a resumed attempt runs at full speed."""
    from lssat.train import run_trial

    _log_attempt(log_dir, config, checkpoint_dir)
    first = not checkpoint_dir

    def slow_report(metrics: Mapping[str, Any], ckpt: str | None = None) -> None:
        report(metrics, ckpt)
        if first:
            time.sleep(seconds)

    return run_trial(config, data, slow_report, checkpoint_dir=checkpoint_dir, **hooks)


def read_attempts(log_dir: str | Path) -> list[tuple[int, str, int]]:
    """``(seed, node_id, resumed_from_epoch)`` of every attempt, in order."""
    path = Path(log_dir) / "attempts.txt"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        seed, node, ep = line.split()
        out.append((int(seed), node, int(ep)))
    return out


def env(function: str, **kwargs: Any) -> dict[str, str]:
    """The environment variables that make a search call ``search.testing.faults.<function>``."""
    return {
        "LSSAT_TRIAL_FN": f"search.testing.faults:{function}",
        "LSSAT_TRIAL_FN_ARGS": json.dumps(kwargs),
    }
