"""The Ray Tune function trainable: one ``lssat.train.run_trial`` call per Tune trial.

It runs in a Ray worker. ``config["trial"]`` is the flat ``TrialConfig`` dict and
``config["lssat"]`` the search's bookkeeping (see :mod:`search.searcher`): data path,
TensorBoard run folder, threads, and the checkpoint to resume from. Each epoch's metrics go to
``ray.tune.report`` with the epoch's checkpoint (Ray persists it into the experiment folder).
Errors propagate, so Tune marks the trial ERROR and the Recorder records it as FAIL.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Mapping
from typing import Any

from search.searcher import CONFIG_KEY, META_KEY


class TrialFailed(RuntimeError):
    """A trial's exception that could not cross processes as itself (it does not pickle).

    ``kind`` is the original class name, kept so the driver classifies it (e.g.
    ``NonFiniteLossError``) and shows ``kind: message``.
    """

    def __init__(self, kind: str, message: str):
        super().__init__(kind, message)
        self.kind, self.message = kind, message

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling (Ray sends it to the driver), else a TrialFailed."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return TrialFailed(type(exc).__name__, str(exc))
    return exc


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers, strings and booleans only (Tune results must not hold tensors)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()
        if isinstance(value, bool | int | float | str):
            out[key] = value
    return out


def train_trial(config: dict[str, Any]) -> None:
    """Tune entry point: build the TrialConfig, resume if asked, run it, report every epoch."""
    import torch
    from ray import tune

    from lssat.config import TrialConfig
    from lssat.train import run_trial

    meta = config[META_KEY]
    cfg = TrialConfig.from_dict(dict(config[CONFIG_KEY]))
    threads = int(meta.get("threads") or 0)
    if threads > 0:
        torch.set_num_threads(threads)

    def report(metrics: Mapping[str, Any], checkpoint_dir: str | None = None) -> None:
        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report(scalar_metrics(metrics), checkpoint=ckpt)

    restored = tune.get_checkpoint()  # set when Tune itself restarts the trial
    try:
        if restored is not None:
            with restored.as_directory() as resume_dir:
                run_trial(
                    cfg, meta["data"], report, checkpoint_dir=resume_dir, tb_dir=meta.get("tb_dir")
                )
        else:
            run_trial(
                cfg,
                meta["data"],
                report,
                checkpoint_dir=meta.get("resume_from"),
                tb_dir=meta.get("tb_dir"),
            )
    except Exception as exc:
        portable = _portable(exc)
        if portable is exc:
            raise
        raise portable from None
    finally:
        # the actor may be reused for the next trial: leave no model or cache behind
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def threads_for(cpus: float) -> int:
    """Torch threads for a trial holding ``cpus`` CPUs (at least one)."""
    return max(1, int(math.floor(cpus + 1e-9)))
