"""The driver-side Tune callback of the final stage: one Parquet row per (configuration, seed).

A run that trained every epoch and reported its held-out metrics is written COMPLETE; one
that raised is written FAIL with its error; one that was interrupted (Ctrl-C, lost driver) is
not written, and ``--resume`` runs it again from its last checkpoint (``final/.progress``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ray.tune import Callback

from search import results
from search.execution.errors import ERROR_KEY, error_text
from search.optimize.searcher import CONFIG_KEY, META_KEY

PROGRESS_DIR = ".progress"
IDENTITY = ("dataset", "dataset_hash", "val_set", "val_is_test")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def progress_path(exp_dir: Path, run_id: str) -> Path:
    """Where the driver notes a run's latest checkpoint (for ``--resume``)."""
    return exp_dir / results.FINAL_DIR / PROGRESS_DIR / f"{run_id}.json"


def last_checkpoint(exp_dir: Path, run_id: str) -> tuple[str | None, int]:
    """The run's latest checkpoint that still exists, and its epoch (None, 0 when none)."""
    path = progress_path(exp_dir, run_id)
    try:
        note = json.loads(path.read_text())
    except (OSError, ValueError):
        return None, 0
    ckpt = note.get("checkpoint")
    if ckpt and Path(ckpt).is_dir():
        return str(ckpt), int(note.get("epoch") or 0)
    return None, 0


def _relative(path: str | None, exp_dir: Path) -> str | None:
    """``path`` relative to the experiment folder when the file exists, else None."""
    if not path or not Path(path).is_file():
        return None
    return str(Path(path).relative_to(exp_dir))


class FinalRecorder(Callback):
    """Writes each final run's row, tells progress, keeps resume notes (driver only)."""

    def __init__(self, exp_dir: Path, base: Mapping[str, Any], total: int):
        self.exp_dir = Path(exp_dir)
        self.base = dict(base)  # task, experiment, metric, mode, provenance, ci settings
        self.total = total
        self.done = 0
        self.last: dict[str, dict[str, Any]] = {}
        self.started: dict[str, tuple[float, str]] = {}
        self.errors: dict[str, str] = {}  # a run's own exception (FAIL, never retried)
        self.t0 = time.time()

    def _say(self, text: str) -> None:
        s = int(time.time() - self.t0)
        print(f"[{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}] final {text}", flush=True)

    @staticmethod
    def _run(trial: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        run = trial.config["run"]
        return run[META_KEY], run[CONFIG_KEY]

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        meta, _ = self._run(trial)
        self.started.setdefault(trial.trial_id, (time.time(), _now()))
        again = " (resumed)" if meta.get("resume_from") else ""
        self._say(f"{meta['run_id']} started{again}: rank {meta['rank']}, seed {meta['seed']}")

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        meta, config = self._run(trial)
        if result.get(ERROR_KEY):  # search.execution.trainable: the run's own code raised
            self.errors[trial.trial_id] = str(result[ERROR_KEY])
            return
        self.last[trial.trial_id] = dict(result)
        epoch = int(result.get("epoch", 0))
        ckpt = result.get("checkpoint_dir_name")
        if ckpt and trial.path:
            path = progress_path(self.exp_dir, meta["run_id"])
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps({"checkpoint": str(Path(trial.path) / ckpt), "epoch": epoch}))
            os.replace(tmp, path)
        value = result.get(self.base["metric"])
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        metric = self.base["metric"]
        self._say(f"{meta['run_id']} epoch {epoch}/{config['epochs']} {metric} {shown}")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        meta, config = self._run(trial)
        last = self.last.get(trial.trial_id, {})
        test_key = "test_" + self.base["metric"][len("val_") :]
        if trial.trial_id in self.errors:
            self._write(trial, "FAIL", self.errors[trial.trial_id])
        elif int(last.get("epoch", 0)) >= int(config["epochs"]) and test_key in last:
            self._write(trial, "COMPLETE", None)
        else:
            self._say(f"{meta['run_id']} interrupted; --resume runs it again")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write(trial, "FAIL", error_text(trial)[0])

    def _write(self, trial: Any, status: str, error: str | None) -> None:
        meta, config = self._run(trial)
        last = self.last.get(trial.trial_id, {})
        names = [s["name"] for s in meta["final"]["sets"]]
        prefixes = tuple(f"{n}_" for n in ["val", *names])
        metrics = {
            k: v
            for k, v in last.items()
            if k.startswith(prefixes) and isinstance(v, int | float) and not isinstance(v, bool)
        }
        for k in [k for k in metrics if k.endswith(("_rows", "_units"))]:
            metrics[k] = int(metrics[k])
        t_start, started_at = self.started.get(trial.trial_id, (time.time(), _now()))
        weights = Path(meta["final"]["weights"])
        row = {
            "task": self.base["task"],
            "experiment": self.base["experiment"],
            "run_id": meta["run_id"],
            "trial_id": meta["source_trial_id"],
            "number": int(meta["source_number"]),
            "rank": int(meta["rank"]),
            "selection_value": float(meta["selection_value"]),
            "metric": self.base["metric"],
            "mode": self.base["mode"],
            "seed": int(meta["seed"]),
            "status": status,
            "error": error,
            "epochs_run": int(last.get("epoch", 0)),
            **{k: last.get(k) for k in IDENTITY},
            "eval_sets": meta["final"]["describe"],
            "ci_level": self.base["ci_level"],
            "ci_method": self.base["ci_method"],
            "n_resamples": int(meta["final"]["n_resamples"]),
            "weights": str(weights.relative_to(self.exp_dir)) if weights.is_file() else None,
            "final_mode": meta.get("final_mode"),
            "group_param": meta.get("group_param"),
            "group": meta.get("group"),
            "items": _relative(meta["final"].get("items"), self.exp_dir),
            "wall_time_s": time.time() - t_start,
            "node": last.get("hostname") or socket.gethostname(),
            "git_commit": self.base.get("git_commit", "unknown"),
            "versions": self.base.get("versions", {}),
            "started_at": started_at,
            "ended_at": _now(),
            **metrics,
            **results.config_columns(config),
        }
        results.write_final(self.exp_dir, row)
        if trial.path:  # the row is safe: the run's checkpoints and resume note can go
            for ckpt in Path(trial.path).glob("checkpoint_*"):
                shutil.rmtree(ckpt, ignore_errors=True)
        progress_path(self.exp_dir, meta["run_id"]).unlink(missing_ok=True)
        self.done += 1
        test_key = "test_" + self.base["metric"][len("val_") :]
        value = metrics.get(test_key, math.nan)
        what = f"{test_key} {value:.4f}" if status == "COMPLETE" else f"FAIL: {error}"
        self._say(f"{meta['run_id']} {what} [{self.done}/{self.total} done]")
        sys.stdout.flush()
