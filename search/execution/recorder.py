"""The driver-side Tune callback: Parquet rows, Optuna's verdict, TensorBoard HParams, progress.

After every epoch it rewrites ``epochs/<trial_id>.parquet`` (all epochs so far) on a background
thread (:mod:`search.results.epochs`: the reporting trial waits on the driver, so the driver does
not wait on the disk); a trial's epochs are on disk before its trial row. When a trial
ends it decides the truth, writes the trial row, then gives Optuna the epochs' metric values as
intermediate values and the verdict:

- COMPLETE: every epoch ran; Optuna gets the final value;
- PRUNED: the scheduler (ASHA) stopped it early; Optuna gets PRUNED (its last intermediate value);
- FAIL: it raised (exception, non-finite loss, out of memory) or never produced a finite metric;
  Optuna gets FAIL with the error text as the ``error`` user attribute;
- interrupted (the search itself stopped): nothing is written; ``--resume`` runs it again.

The row is written first and Optuna told second (see :mod:`search.optimize.study` for the repair).

A write that fails (full disk, quota, read-only folder), here or in a trial, is not a trial's
fault: the recorder writes nothing more, records no FAIL, sets ``stopped`` and
:class:`StopOnWriteError` ends the experiment; ``search.run`` then exits with one sentence.
Every file already written stays (Parquet files are replaced atomically).
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ray.tune import Callback, Stopper
from ray.tune.result import AUTO_RESULT_KEYS, DEBUG_METRICS

from search import results
from search.execution.errors import (  # noqa: F401  (classify_error, error_text: re-exported)
    DISK_ERRNOS,
    DISK_TEXTS,
    ERROR_KEY,
    REASON_KEY,
    classify_error,
    disk_error,
    error_text,
)
from search.optimize.objectives import values_from_epoch
from search.optimize.pretrained import row_columns
from search.optimize.searcher import CONFIG_KEY, META_KEY
from search.optimize.study import StudyRef, outcome_attrs
from search.results.epochs import EpochWriter
from search.results.tensorboard import write_trial_hparams

RAY_KEYS = (
    frozenset(AUTO_RESULT_KEYS)
    | frozenset(DEBUG_METRICS)
    | {
        "done",
        "should_checkpoint",
        "experiment_tag",
        "trial_id",
        "__duplicate__",
    }
)
NOT_METRICS = ("epoch", "checkpoint")


def _guarded(hook: Callable[..., None]) -> Callable[..., None]:
    """A Tune hook that does nothing once the search is stopping and turns a failed write
    into ``Recorder.stopped`` instead of an exception inside Tune."""

    @functools.wraps(hook)
    def run(self: Recorder, *args: Any, **kwargs: Any) -> None:
        if self.stopped:
            return
        try:
            hook(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any failed write: one sentence, never Tune's
            self.stop(f"writing results to {self.exp_dir} failed ({write_error(exc)})")

    return run


def write_error(exc: BaseException) -> str:
    """The reason of a failed write in a few words: ``strerror`` of an ``OSError``, else
    ``Kind: first line``."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}" if not isinstance(exc, OSError) else first


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class _Live:
    """What the driver knows of one running trial."""

    meta: dict[str, Any]
    config: dict[str, Any]
    started: float = field(default_factory=time.time)
    started_at: str = field(default_factory=_now)
    rows: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    node: str | None = None
    node_ip: str | None = None
    attempts: int = 0  # runs of this trial in this session (restarts included)
    fresh: bool = True  # no result yet from the current run
    error: tuple[str, str] | None = None  # (text, reason) the trial's own code raised

    @property
    def number(self) -> int:
        return int(self.meta["number"])

    @property
    def trial_id(self) -> str:
        return str(self.meta["trial_id"])

    @property
    def epochs_run(self) -> int:
        return max((int(r["epoch"]) for r in self.rows), default=0)


class Recorder(Callback):
    """Writes each trial's epochs and outcome, tells Optuna, prints progress (driver only)."""

    def __init__(
        self,
        exp_dir: str | Path,
        *,
        task: str,
        experiment: str,
        metric: str,
        mode: str,
        ref: StudyRef,
        budget: int,
        finished_before: int,
        provenance: Mapping[str, Any],
        keep_checkpoints: bool = False,
        objectives: Mapping[str, str] | None = None,
    ):
        self.exp_dir = Path(exp_dir)
        self.task, self.experiment = task, experiment
        self.metric, self.mode = metric, mode
        # {name: max|min}, the first is metric/mode (search.optimize.objectives)
        self.objectives = dict(objectives or {metric: mode})
        self.ref = ref
        self.budget = budget
        self.finished = finished_before
        self.provenance = dict(provenance)
        self.keep_checkpoints = keep_checkpoints
        self.live: dict[str, _Live] = {}
        self.best: tuple[float, int] | None = None
        self.t0 = time.time()
        self.stopped: str | None = None  # why the search must stop (a write failed)
        self.epochs = EpochWriter(self.exp_dir)  # epochs/*.parquet, off the event loop
        # every metric column of this experiment's files (the dataset's groups included), known
        # from the first trial's data (:func:`declared_metrics`)
        self.metrics: tuple[str, ...] | None = None

    # ------------------------------------------------------------------ helpers
    def close(self) -> None:
        """Wait for the pending epoch writes (call once the experiment ends); a failed one
        stops the search."""
        try:
            self.epochs.close()
        except Exception as exc:  # noqa: BLE001 - any failed write: one sentence
            self.stop(f"writing results to {self.exp_dir} failed ({write_error(exc)})")

    def stop(self, why: str) -> None:
        """Stop the search (see :class:`StopOnWriteError`); nothing more is written."""
        if self.stopped is None:
            self.stopped = why
            self._say(f"stopping the search: {why}")

    def _trial_disk_error(self, trial: Any, text: str) -> bool:
        """True (and the search stops) when ``trial`` died of a refused write (``text``: its
        error, from :func:`error_text`)."""
        why = disk_error(None, text)
        if why is None:
            return False
        live = self.live.pop(trial.trial_id, None)
        who = f"trial #{live.number}" if live else "a trial"
        self.stop(f"{who} could not write its checkpoint or logs ({why})")
        return True

    def _say(self, text: str) -> None:
        elapsed = int(time.time() - self.t0)
        line = f"[{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}] {text}"
        print(line, file=sys.stdout, flush=True)

    def _ident(self, live: _Live) -> dict[str, Any]:
        return {
            "task": self.task,
            "experiment": self.experiment,
            "trial_id": live.trial_id,
            "number": live.number,
        }

    def declared(self, meta: Mapping[str, Any]) -> tuple[str, ...]:
        """The metric columns every file of this experiment has (``meta``: a trial's)."""
        if self.metrics is None:
            self.metrics = declared_metrics(self.task, meta.get("data"))
            self.epochs.metrics = self.metrics
        return self.metrics

    def _get_live(self, trial: Any) -> _Live:
        live = self.live.get(trial.trial_id)
        if live is None:
            meta = dict(trial.config[META_KEY])
            self.declared(meta)
            live = _Live(meta=meta, config=dict(trial.config[CONFIG_KEY]))
            resume_epoch = int(meta.get("resume_epoch") or 0)
            old = self.exp_dir / results.EPOCHS_DIR / f"{live.trial_id}.parquet"
            if old.is_file():  # a re-run of an interrupted trial: keep epochs up to its checkpoint
                prev = results.read_epochs(old)
                if int(meta.get("workers", 1)) > 1:
                    # Ray Train restores from its own latest checkpoint, which may be newer
                    # than the last row's: keep every row; the run's first result replaces
                    # the rows from its epoch on (on_trial_result)
                    resume_epoch = max(resume_epoch, int(prev["epoch"].max()) if len(prev) else 0)
                if not prev.empty and resume_epoch > 0:
                    keep = prev[prev["epoch"] <= resume_epoch]
                    base = set(self._ident(live)) | {"schema_version"}
                    live.rows = [
                        {k: v for k, v in r.items() if k not in base and _present(v)}
                        for r in keep.to_dict("records")
                    ]
                self.epochs.submit(self._ident(live), live.rows)
            self.live[trial.trial_id] = live
        return live

    def _value(self, row: Mapping[str, Any]) -> float:
        v = row.get(self.metric)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.mode == "max" else a < b

    # -------------------------------------------------------------------- hooks
    @_guarded
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        live = self._get_live(trial)
        live.attempts += 1
        live.fresh = True
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in live.meta.get("params", {}).items())
        again = " (resumed)" if live.meta.get("resume_from") else ""
        if live.attempts > 1:
            again = f" (attempt {live.attempts}, from its last checkpoint)"
        self._say(f"#{live.number} started{again}: {shown or 'fixed config'}")

    @_guarded
    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        live = self._get_live(trial)
        if result.get(ERROR_KEY):  # the trial's own code raised: FAIL once it ends, no retry
            live.error = (str(result[ERROR_KEY]), str(result.get(REASON_KEY) or "error"))
            return
        resume_epoch = int(live.meta.get("resume_epoch") or 0)
        epoch = int(result.get("epoch", resume_epoch + int(result.get("training_iteration", 1))))
        row: dict[str, Any] = {
            k: v
            for k, v in result.items()
            if k not in RAY_KEYS and isinstance(v, bool | int | float | str)
        }
        row["epoch"] = epoch
        ckpt_name = result.get("checkpoint_dir_name")
        row["checkpoint"] = str(Path(trial.path) / ckpt_name) if ckpt_name and trial.path else None
        if row["checkpoint"] is None and isinstance(result.get("checkpoint_path"), str):
            row["checkpoint"] = result["checkpoint_path"]  # a Ray Train run's checkpoint
        if live.fresh:  # a (re)started run redoes the epochs from here on
            live.rows = [r for r in live.rows if int(r["epoch"]) < epoch]
            live.fresh = False
        live.rows = [r for r in live.rows if int(r["epoch"]) != epoch] + [row]
        live.rows.sort(key=lambda r: int(r["epoch"]))
        live.node = result.get("hostname", live.node)
        live.node_ip = result.get("node_ip", live.node_ip)
        # the previous checkpoint stays until Tune has registered this one (on_trial_save)
        self.epochs.submit(self._ident(live), live.rows)
        value = self._value(row)
        epochs = int(live.config["epochs"])
        if result.get("done") and epoch < epochs:
            live.stopped_early = True  # the scheduler's STOP decision, before the last epoch
        loss = row.get("train_loss")
        speed = row.get("samples_per_s")
        parts = [f"#{live.number} epoch {epoch}/{epochs}", f"{self.metric} {_fmt(value)}"]
        if loss is not None:
            parts.append(f"train_loss {_fmt(loss)}")
        if speed is not None:
            parts.append(f"{speed:.1f} samples/s")
        self._say("  ".join(parts))

    @_guarded
    def on_trial_save(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Tune has registered the trial's newest checkpoint (what a retry restores from):
        only now do the older ones go, once the rows naming the newest are on disk (one
        checkpoint per running trial; see search.driver.tune: no num_to_keep)."""
        live = self.live.get(trial.trial_id)
        registered = getattr(trial, "checkpoint", None)
        if live is None or registered is None or int(live.meta.get("workers", 1)) > 1:
            return
        name = Path(str(registered.path)).name
        newest = [int(r["epoch"]) for r in live.rows
                  if r.get("checkpoint") and Path(r["checkpoint"]).name == name]  # fmt: skip
        if not newest:
            return
        older = [r["checkpoint"] for r in live.rows
                 if r.get("checkpoint") and int(r["epoch"]) < newest[-1]]  # fmt: skip
        self.epochs.discard(live.trial_id, older)

    @_guarded
    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        live = self.live.get(trial.trial_id)
        if live is not None and live.error is not None:
            text, reason = live.error
            if not self._trial_disk_error(trial, text):
                self._finish(trial, live, "FAIL", reason, text)
            return
        if live is None or not live.rows:
            return  # stopped before its first epoch: the search was interrupted
        epochs = int(live.config["epochs"])
        if live.epochs_run >= epochs:
            self._finish(trial, live, "COMPLETE", "completed", None)
        elif live.stopped_early:
            self._finish(trial, live, "PRUNED", "early_stopped", None)
        else:
            self._say(
                f"#{live.number} interrupted after {live.epochs_run}/{epochs} epochs; "
                "--resume runs it again"
            )
            self.live.pop(trial.trial_id, None)

    @_guarded
    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._trial_disk_error(trial, error_text(trial)[0])  # Tune retries crashes, not this

    @_guarded
    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        text, reason = error_text(trial)
        if self._trial_disk_error(trial, text):
            return  # interrupted, not failed: --resume runs it again
        self._finish(trial, self._get_live(trial), "FAIL", reason, text)

    # ------------------------------------------------------------------ outcome
    def _finish(self, trial: Any, live: _Live, status: str, reason: str, error: str | None) -> None:
        values = [(self._value(r), int(r["epoch"])) for r in live.rows]
        finite = [(v, e) for v, e in values if math.isfinite(v)]
        final = values[-1][0] if values else math.nan
        best = None
        for v, e in finite:
            if best is None or self._better(v, best[0]):
                best = (v, e)
        if status == "COMPLETE" and not math.isfinite(final):
            status, reason = "FAIL", "error"
            reported = sorted(
                k for k in (live.rows[-1] if live.rows else {}) if k.startswith("val_")
            )
            error = (
                f"metric {self.metric!r} is {'NaN' if self.metric in reported else 'missing'} "
                f"at the last epoch; reported: {', '.join(reported) or 'nothing'}"
            )
        last = live.rows[-1] if live.rows else {}
        told = values_from_epoch(self.objectives, last)
        told[0] = final  # the first objective is the metric
        if status == "COMPLETE" and not all(math.isfinite(v) for v in told):
            status, reason = "FAIL", "error"
            bad = next(n for n, v in zip(self.objectives, told, strict=True)
                       if not math.isfinite(v))  # fmt: skip
            error = f"objective {bad!r} is NaN or missing at the last epoch"
        speeds = [
            r["samples_per_s"] for r in live.rows if isinstance(r.get("samples_per_s"), int | float)
        ]
        meta = live.meta
        row: dict[str, Any] = {
            **self._ident(live),
            "status": status,
            "stop_reason": reason,
            "error": error,
            "metric": self.metric,
            "mode": self.mode,
            "final_value": final if math.isfinite(final) else None,
            "best_value": best[0] if best else None,
            "best_epoch": best[1] if best else None,
            "epochs_run": live.epochs_run,
            "wall_time_s": time.time() - live.started,
            "samples_per_s": sum(speeds) / len(speeds) if speeds else None,
            "params_count": _int_or_none(last.get("params_count")),
            "gflops": last.get("gflops"),
            "cpus": float(meta.get("cpus", 0.0)),
            "gpus": float(meta.get("gpus", 0.0)),
            "workers": int(meta.get("workers", 1)),
            "attempts": max(1, live.attempts) + int(meta.get("attempts_before") or 0),
            "node": live.node,
            "node_ip": live.node_ip,
            "node_id": last.get("node_id"),
            "gpu_ids": last.get("gpu_ids"),
            "seed": _int_or_none(live.config.get("seed")),
            "versions": self.provenance.get("versions", {}),
            "git_commit": self.provenance.get("git_commit", "unknown"),
            "started_at": live.started_at,
            "ended_at": _now(),
            "params": meta.get("params", {}),
            "param_distributions": meta.get("distributions", {}),
            "session": int(meta.get("session", 0)),
            "objectives": json.dumps(self.objectives),  # a str keeps the objectives' order
            "objective_values": None if status == "FAIL" else [_num(v) for v in told],
            "warm_start_from": meta.get("warm_start_from"),
            # what the trial was scored on, as the trial itself reported it (lssat.train)
            **{k: last.get(k) for k in ("dataset", "dataset_hash", "val_set", "val_is_test")},
            **row_columns(live.config, meta.get("weights") or {}),
            **results.config_columns(_full_config(live.config)),
            **results.final_columns({k: v for k, v in last.items() if k not in NOT_METRICS}),
        }
        self.epochs.flush(live.trial_id)  # its epochs first: a trial row never lacks them
        results.write_trial(self.exp_dir, row, self.declared(meta))
        try:
            hp = {**meta.get("params", {}), "status": status}
            write_trial_hparams(
                Path(meta["tb_dir"]),
                hp,
                {
                    f"final_{self.metric}": row["final_value"],
                    f"best_{self.metric}": row["best_value"],
                },
                status,
                step=live.epochs_run,
                start_time=live.started,
            )
        except Exception as exc:  # TensorBoard is a view, never worth losing a trial over
            self._say(f"#{live.number}: could not write TensorBoard hparams ({exc})")
        # the learning curve goes to Optuna now, from the final rows, so a trial re-run after a
        # crash never leaves stale steps behind (PRUNED takes the last step's value); one
        # journal append carries it with the attributes, then the verdict
        self.ref.tell(
            live.number,
            status,
            told if self.ref.multi_objective else row["final_value"],
            outcome_attrs(row),
            steps=[(e, v) for v, e in values],
        )
        if not self.keep_checkpoints and trial.path:
            for r in live.rows:
                if r.get("checkpoint"):
                    shutil.rmtree(r["checkpoint"], ignore_errors=True)
        if not self.keep_checkpoints and int(meta.get("workers", 1)) > 1:
            # a multi-worker trial's Ray Train run (its checkpoints): ray/train/trial_<number>
            shutil.rmtree(self.exp_dir / "ray" / "train" / f"trial_{live.number}", True)
        self.live.pop(trial.trial_id, None)
        self.finished += 1
        if status == "COMPLETE" and (self.best is None or self._better(final, self.best[0])):
            self.best = (final, live.number)
        others = "".join(
            f", {n} {_fmt(v)}" for n, v in list(zip(self.objectives, told, strict=True))[1:]
        )
        what = {
            "COMPLETE": f"{self.metric} {_fmt(final)}{others}",
            "PRUNED": f"stopped early, {self.metric} {_fmt(final)}",
            "FAIL": f"{reason}: {error}",
        }[status]
        best = f"; best #{self.best[1]} {_fmt(self.best[0])}" if self.best else ""
        self._say(
            f"#{live.number} {status} after {live.epochs_run} epochs ({what}) "
            f"[{self.finished}/{self.budget} done{best}]"
        )


class StopOnWriteError(Stopper):
    """Ends the whole experiment once ``recorder.stopped`` is set (a write failed)."""

    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    def __call__(self, trial_id: str, result: dict) -> bool:
        return self.recorder.stopped is not None

    def stop_all(self) -> bool:
        return self.recorder.stopped is not None


def declared_metrics(task: str, data: str | None) -> tuple[str, ...]:
    """The metrics a trial of ``task`` can report on the prepared dataset ``data`` (its
    ``meta.json``: groups, classes); the task's own without a readable one."""
    meta = None
    if data:
        try:
            meta = json.loads((Path(data) / "meta.json").read_text())
        except (OSError, ValueError):
            meta = None
    return results.experiment_metrics(task, meta if isinstance(meta, dict) else None)


def _full_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every TrialConfig field of the trial (defaults filled in) for the cfg_* columns."""
    try:
        from lssat.config import TrialConfig

        return TrialConfig.from_dict(dict(config)).to_dict()
    except Exception:  # an invalid sampled config failed the trial: keep what was asked
        return dict(config)


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _int_or_none(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and math.isfinite(v) else None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
