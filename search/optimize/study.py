"""The Optuna side of a search: storage, sampler, telling results, and resume bookkeeping.

The study is the search's memory of what was asked; the Parquet files are its memory of what
finished. A finished trial is written to Parquet first and told to Optuna second, so after a
crash a trial is in one of three states, each repaired by :func:`reconcile` on ``--resume``:
finished in both (kept), finished in Parquet but RUNNING in the study (told now from its row),
RUNNING in the study with no row (run again with the same Optuna number and parameters, from
its last checkpoint when one survives).

What Optuna is told (:func:`optuna_outcome`; the resume checks every finished trial against it):

==================  ==================================================================
Parquet ``status``  Optuna trial
==================  ==================================================================
COMPLETE            COMPLETE, value = ``final_value``, constraint ``failed`` = 0
PRUNED              PRUNED (value = last intermediate value), constraint ``failed`` = 0
FAIL                COMPLETE, value = the worst possible (-inf for max, +inf for min),
                    constraint ``failed`` = 1 (infeasible), user attr ``status`` = FAIL
==================  ==================================================================

A multi-objective study (``StudyRef.objectives``) gets one value per objective (FAIL: the worst
of each) and no intermediate values at all: its TPE ranks PRUNED trials by their last
intermediate value with the single ``study.direction``, which raises in a multi-objective
study, so a PRUNED trial carrying a curve would make every later ``ask()`` fail.

TPE reads only COMPLETE, PRUNED and RUNNING trials, so a trial told FAIL would be invisible to
it and a region that always fails (out of memory) would keep being proposed; an infeasible
COMPLETE trial is read, ranked below every feasible one, and steers the sampler away.
``study.best_trial`` skips infeasible trials. Studies written before this mapping (FAIL rows
told as Optuna FAIL) still resume.
"""

from __future__ import annotations

import json
import math
import os
import threading
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from lssat.errors import ConfigError, DataError
from search import results
from search.optimize.objectives import FAILED_CONSTRAINT
from search.results.redact import recall, redact_text, redact_url, remember
from search.results.settings import (  # noqa: F401  (re-exported)
    SETTINGS_KEYS,
    check_resumable,
    load_settings,
    save_settings,
)

STUDY_FILE = "study.journal"
RDB_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")
# user attributes the search keeps on each Optuna trial
ATTR_TRIAL_ID = "trial_id"
# the constraint that marks a trial whose Parquet row is FAIL (> 0 = infeasible)


def optuna_outcome(
    status: str, value: float | list[float] | None, direction: str | list[str]
) -> tuple[TrialState, float | list[float] | None, float]:
    """What Optuna is told for a Parquet ``status``: (state, value, ``failed`` constraint).

    A multi-objective study passes a list of values and a list of directions (one each per
    objective) and gets a list back; a PRUNED trial gets no value either way."""
    multi = not isinstance(direction, str)
    directions = list(direction) if multi else [direction]
    if status == "FAIL":
        worst = [-math.inf if d == "max" else math.inf for d in directions]
        return TrialState.COMPLETE, worst if multi else worst[0], 1.0
    if status == "PRUNED":
        return TrialState.PRUNED, None, 0.0
    vals = (list(value) if multi else [value]) if value is not None else []
    if status == "COMPLETE" and vals and all(_finite(v) for v in vals):
        return TrialState.COMPLETE, [float(v) for v in vals] if multi else float(vals[0]), 0.0
    raise ValueError(f"trial status {status!r} with value {value!r} cannot be told to Optuna")


def parquet_status(trial: FrozenTrial) -> str | None:
    """The Parquet status a finished Optuna trial stands for (the inverse of
    :func:`optuna_outcome`); ``None`` for a state the mapping never produces."""
    failed = trial.constraints.get(FAILED_CONSTRAINT, 0.0) > 0
    if trial.state == TrialState.FAIL or (trial.state == TrialState.COMPLETE and failed):
        return "FAIL"  # Optuna FAIL: a study written before the mapping
    if trial.state == TrialState.COMPLETE:
        return "COMPLETE"
    if trial.state == TrialState.PRUNED and not failed:
        return "PRUNED"
    return None


def check_storage_url(url: str) -> None:
    """ConfigError unless ``url`` looks like an SQLAlchemy database URL."""
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme not in RDB_SCHEMES:
        raise ConfigError(
            f"--storage is {redact_url(url)!r}; give a database URL such as "
            "postgresql://user@host/db or sqlite:///path.db"
        )


def storage_label(exp_dir: Path, url: str | None) -> str:
    """Where the study lives, for messages (a URL's password shown as ``***``)."""
    return str(redact_url(url)) if url else str(exp_dir / STUDY_FILE)


def open_storage(exp_dir: Path, url: str | None) -> optuna.storages.BaseStorage:
    """The journal file in the experiment folder, or the RDB at ``url``."""
    if url:
        check_storage_url(url)
        shown = redact_url(url)
        try:
            return optuna.storages.RDBStorage(url)
        except ImportError as exc:
            why = redact_text(str(exc), url)
            raise ConfigError(f"--storage {shown!r} needs a database driver ({why})") from None
        except Exception as exc:  # sqlalchemy errors: bad host, bad credentials, ...
            why = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip() else "", url)
            raise ConfigError(f"--storage {shown!r} cannot be opened ({why})") from None
    from optuna.storages.journal import JournalFileBackend

    exp_dir.mkdir(parents=True, exist_ok=True)
    drop_torn_tail(exp_dir / STUDY_FILE)
    return optuna.storages.JournalStorage(JournalFileBackend(str(exp_dir / STUDY_FILE)))


def drop_torn_tail(path: Path) -> int:
    """Cut a half-written last line (a writer killed mid-append) off a journal file.

    Optuna skips such a line when reading, but the next append would glue a new record onto it
    and corrupt the journal. Only the search driver writes this file, and it calls this before
    opening it. Returns the number of bytes removed.
    """
    if not path.is_file():
        return 0
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        # find the last complete line
        pos = size
        keep = 0
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                keep = pos + idx + 1
                break
        fh.truncate(keep)
        return size - keep


def study_name(task: str, name: str) -> str:
    """One study per experiment folder (unique inside a shared RDB too)."""
    return f"{task}/{name}"


def derive_seed(seed: int, session: int) -> int:
    """Sampler seed of session ``session`` (0 = first run, then one per resume).

    A resumed search must not replay its start-up suggestions, so every resume gets a fresh seed
    derived from the user's seed and the session number.
    """
    if session == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(session)]).generate_state(1)[0])


class AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler for ask/tell use: its ``after_trial`` calls ``study.stop()`` once
    the grid is exhausted, which raises outside ``study.optimize`` (the trial's state is stored
    first); the search's trial budget is the grid size, so nothing needs stopping."""

    def after_trial(self, study: Any, trial: Any, state: TrialState, values: Any) -> None:
        return None


def make_sampler(
    seed: int,
    n_startup_trials: int | None = None,
    n_ei_candidates: int | None = None,
    *,
    name: str = "tpe",
    grid: Mapping[str, list[Any]] | None = None,
) -> optuna.samplers.BaseSampler:
    """The space's sampler: multivariate, grouped (conditional spaces), constant-liar TPE by
    default; ``name="random"`` Optuna's RandomSampler, ``name="grid"`` its GridSampler over
    ``grid`` (parameter -> values; recording mode, see :mod:`search.optimize.space`)."""
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        if not grid:
            raise ConfigError("sampler grid needs the grid's values (SearchSpace.grid())")
        return AskTellGridSampler({k: list(v) for k, v in grid.items()}, seed=seed)
    kwargs: dict[str, Any] = {}
    if n_startup_trials is not None:
        kwargs["n_startup_trials"] = n_startup_trials
    if n_ei_candidates is not None:
        kwargs["n_ei_candidates"] = n_ei_candidates
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            multivariate=True, group=True, constant_liar=True, seed=seed, **kwargs
        )


@dataclass
class StudyRef:
    """How to reopen the study in this process (the driver); picklable, unlike a live study."""

    exp_dir: str
    name: str
    direction: str
    url: str | None = None
    sampler_seed: int = 0
    sampler_opts: dict[str, Any] = field(default_factory=dict)  # make_sampler keywords
    metric: str | None = None  # the objective's name, shown by optuna-dashboard
    # {name: max|min} of a multi-objective study, in order (search.optimize.objectives);
    # {}: one metric
    objectives: dict[str, str] = field(default_factory=dict)
    prior: list[FrozenTrial] = field(default_factory=list)  # warm start: see search.optimize.warm
    # (parameter, levels) of the space's `balance:` (search.optimize.balance), or None
    balance: tuple[str, tuple[Any, ...]] | None = None

    def __post_init__(self) -> None:
        self._study: optuna.Study | None = None
        self._storage: optuna.storages.BaseStorage | None = None
        # one study, two threads: the searcher's ask-ahead thread asks while the driver tells
        self.lock = threading.RLock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_study"] = state["_storage"] = state["lock"] = None
        state["url"] = remember(self.url)  # Ray pickles this: never the password
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.lock = threading.RLock()
        self.url = recall(self.url)  # the full URL, when this process knows it

    def __repr__(self) -> str:
        return f"StudyRef({self.name!r} at {storage_label(Path(self.exp_dir), self.url)})"

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def storage(self) -> optuna.storages.BaseStorage:
        if self._storage is None:
            self._storage = open_storage(Path(self.exp_dir), self.url)
        return self._storage

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            sampler = make_sampler(self.sampler_seed, **self.sampler_opts)
            dirs = list(self.objectives.values()) if self.multi_objective else [self.direction]
            if self.prior:  # sampler-side observations only, never added to the study
                from search.optimize.warm import wrap

                sampler = wrap(sampler, self.prior)
            if self.balance:  # outermost: it counts the study's own trials, never the prior
                from search.optimize.balance import BalancedSampler

                sampler = BalancedSampler(sampler, self.balance[0], self.balance[1])
            self._study = optuna.create_study(
                storage=self.storage,
                study_name=self.name,
                directions=["maximize" if d == "max" else "minimize" for d in dirs],
                sampler=sampler,
                load_if_exists=True,
            )
            names = list(self.objectives) if self.multi_objective else [self.metric]
            if names[0] and self._study.metric_names != names:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    self._study.set_metric_names(names)
        return self._study

    def internal_id(self, number: int) -> int:
        """The storage's id of trial ``number``."""
        study_id = self.storage.get_study_id_from_name(self.name)
        return self.storage.get_trial_id_from_study_id_trial_number(study_id, number)

    def report(self, number: int, step: int, value: float | None) -> None:
        """Record an intermediate value (NaN / None skipped; a repeated step overwrites).

        Nothing in a multi-objective study: Optuna's ``Trial.report`` refuses those, and its
        multi-objective TPE cannot ``ask()`` once a PRUNED trial carries intermediate values
        (it ranks them with the single ``study.direction``); the curves stay in Parquet."""
        if self.multi_objective:
            return
        if value is not None and math.isfinite(value):
            self.storage.set_trial_intermediate_value(self.internal_id(number), step, value)

    def set_attrs(self, number: int, attrs: Mapping[str, Any]) -> None:
        with self.lock:
            tid = self.internal_id(number)
            for key, value in attrs.items():
                self.storage.set_trial_user_attr(tid, key, value)

    def _append(self, ops: list[tuple[str, dict[str, Any]]]) -> bool:
        """Write journal operations (``JournalOperation`` name, fields) in one append: one
        lock and one fsync instead of one each (the driver writes ~10 per finished trial).
        False, with nothing written, for another storage (an RDB) or an Optuna whose journal
        internals differ; the caller then uses the public API one by one."""
        st = self.storage
        try:
            from optuna.storages.journal import JournalStorage
            from optuna.storages.journal._storage import JournalOperation

            if not isinstance(st, JournalStorage):
                return False
            lock, backend, replay = st._thread_lock, st._backend, st._replay_result
            codes = [int(JournalOperation[name]) for name, _ in ops]
        except (ImportError, AttributeError, KeyError):
            return False
        with lock:
            worker = replay.worker_id
            logs = [
                {"op_code": c, "worker_id": worker, **f}
                for c, (_, f) in zip(codes, ops, strict=True)
            ]
            if logs:  # an empty append would write an empty line, which breaks the journal
                backend.append_logs(logs)
            st._sync_with_backend()
        return True

    def tell(
        self,
        number: int,
        status: str,
        value: float | list[float] | None,
        attrs: Mapping[str, Any],
        steps: Iterable[tuple[int, float | None]] = (),
    ) -> None:
        """Finish trial ``number`` as :func:`optuna_outcome` maps its Parquet ``status``
        (``value``: one per objective in a multi-objective study), after its intermediate
        values ``steps`` ((step, value); NaN / None skipped) and user attributes ``attrs`` (one
        journal append for both); a trial already finished is left alone."""
        with self.lock:
            self._tell(number, status, value, attrs, steps)

    def _tell(
        self,
        number: int,
        status: str,
        value: float | list[float] | None,
        attrs: Mapping[str, Any],
        steps: Iterable[tuple[int, float | None]],
    ) -> None:
        tid = self.internal_id(number)
        if self.storage.get_trial(tid).state.is_finished():
            return
        steps = [(int(s), float(v)) for s, v in steps if v is not None and math.isfinite(v)]
        steps = [] if self.multi_objective else steps  # see report()
        ops = [
            ("SET_TRIAL_INTERMEDIATE_VALUE", {"trial_id": tid, "step": s, "intermediate_value": v})
            for s, v in steps
        ]
        ops += [
            ("SET_TRIAL_USER_ATTR", {"trial_id": tid, "user_attr": {k: v}})
            for k, v in attrs.items()
        ]
        if not self._append(ops):
            for s, v in steps:
                self.report(number, s, v)
            self.set_attrs(number, attrs)
        direction = list(self.objectives.values()) if self.multi_objective else self.direction
        state, told, violation = optuna_outcome(status, value, direction)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a repeated constraint (a repaired tell) is ignored
            optuna.Trial(self.study, tid).set_constraint(FAILED_CONSTRAINT, violation)
            if state == TrialState.COMPLETE:
                self.study.tell(number, told, skip_if_finished=True)
            else:
                self.study.tell(number, state=state, skip_if_finished=True)


def tell_from_row(ref: StudyRef, row: Mapping[str, Any]) -> None:
    """Tell Optuna what a trial's Parquet row says (the crash-between-the-two repair): its
    epochs' metric values as intermediate values, then the verdict."""
    path = Path(ref.exp_dir) / results.EPOCHS_DIR / f"{row['trial_id']}.parquet"
    metric = row.get("metric")
    if path.is_file() and metric:
        epochs = results.read_epochs(path)
        if metric in epochs:
            for _, ep in epochs.iterrows():
                ref.report(int(row["number"]), int(ep["epoch"]), _plain(ep[metric]))
    status = row["status"]
    value = row.get("final_value")
    if ref.multi_objective:
        value = row_values(row)
        ok = value is not None and all(_finite(v) for v in value)
    else:
        ok = value is not None and math.isfinite(value)
    if status == "COMPLETE" and not ok:
        status = "FAIL"
    ref.tell(int(row["number"]), status, value, outcome_attrs(row))


def row_values(row: Mapping[str, Any]) -> list[float] | None:
    """The objective values a trial row keeps (``objective_values``), or None."""
    raw = row.get("objective_values")
    if not isinstance(raw, str) or not raw:
        return None
    vals = json.loads(raw)
    return [math.nan if v is None else float(v) for v in vals] if isinstance(vals, list) else None


def outcome_attrs(row: Mapping[str, Any]) -> dict[str, Any]:
    """The user attributes the study keeps about a finished trial (mirrors the Parquet row)."""
    out = {
        ATTR_TRIAL_ID: row.get("trial_id"),
        "status": row.get("status"),
        "stop_reason": row.get("stop_reason"),
        "epochs_run": _plain(row.get("epochs_run")),
        "best_value": _plain(row.get("best_value")),
    }
    if row.get("error"):
        out["error"] = str(row["error"])[:2000]
    return out


def _plain(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass
class Pending:
    """A trial that was running when the driver died: re-run with the same number and params."""

    number: int
    trial_id: str | None
    params: dict[str, Any]
    checkpoint: str | None = None  # last surviving checkpoint directory
    checkpoint_epoch: int = 0
    distributions: dict[str, Any] = field(default_factory=dict)  # see distributions_json
    warm_start_from: str | None = None  # enqueued from that experiment (search.optimize.warm)


def distributions_json(dists: Mapping[str, Any]) -> dict[str, Any]:
    """``{param: Optuna's JSON form of its distribution}`` (parsed), for the Parquet row."""
    return {k: json.loads(optuna.distributions.distribution_to_json(d)) for k, d in dists.items()}


def _check_mapping(exp_dir: Path, trial: FrozenTrial, row: Mapping[str, Any] | None) -> None:
    """``DataError`` when a finished Optuna trial disagrees with its Parquet row."""
    if row is None:
        return  # finished in the study only (told by hand, or an older layout): nothing to check
    told = parquet_status(trial)
    status = row.get("status")
    vals = row_values(row) if len(trial.values or []) > 1 else None
    finite = all(_finite(v) for v in vals) if vals else _finite(row.get("final_value"))
    if status == "COMPLETE" and not finite:
        status = "FAIL"  # tell_from_row tells a COMPLETE without a value as FAIL
    if told != status:
        raise DataError(
            f"{exp_dir}: trial {trial.number} is {status} in its Parquet row but "
            f"{trial.state.name}{' (infeasible)' if told == 'FAIL' else ''} in the study; "
            "study and results disagree (see docs/search.md, Parquet -> Optuna)"
        )


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


@dataclass
class Reconciled:
    finished: int  # trials finished in both the study and the Parquet
    pending: list[Pending]  # to run again
    repaired: list[int]  # numbers told to Optuna from their Parquet row
    waiting: int  # enqueued trials not yet asked


def last_checkpoint(exp_dir: Path, trial_id: str | None) -> tuple[str | None, int]:
    """The newest epoch checkpoint of ``trial_id`` that still exists on disk, and its epoch."""
    if not trial_id:
        return None, 0
    path = Path(exp_dir) / results.EPOCHS_DIR / f"{trial_id}.parquet"
    if not path.is_file():
        return None, 0
    epochs = results.read_epochs(path)
    if epochs.empty or "checkpoint" not in epochs:
        return None, 0
    for _, row in epochs.sort_values("epoch", ascending=False).iterrows():
        ckpt = row["checkpoint"]
        if isinstance(ckpt, str) and ckpt and Path(ckpt).is_dir():
            return ckpt, int(row["epoch"])
    return None, 0


def reconcile(ref: StudyRef) -> Reconciled:
    """Bring study and Parquet into agreement after a crash; list the trials to run again."""
    exp_dir = Path(ref.exp_dir)
    rows = results.read_trials(exp_dir)
    by_number: dict[int, dict[str, Any]] = {}
    if not rows.empty:
        for rec in rows.to_dict("records"):
            by_number[int(rec["number"])] = rec
    finished, pending, repaired, waiting = 0, [], [], 0
    trials = ref.study.get_trials(deepcopy=False)
    numbers = {t.number for t in trials}
    strays = sorted(set(by_number) - numbers)
    if strays:
        raise ConfigError(
            f"{exp_dir}: trial Parquet rows {strays[:5]} have no trial in study {ref.name!r} "
            f"at {storage_label(exp_dir, ref.url)}; was the study storage replaced?"
        )
    for t in trials:
        if t.state.is_finished():
            _check_mapping(exp_dir, t, by_number.get(t.number))
            finished += 1
        elif t.state == TrialState.WAITING:
            waiting += 1
        elif t.number in by_number:
            tell_from_row(ref, by_number[t.number])
            repaired.append(t.number)
            finished += 1
        else:
            tid = t.user_attrs.get(ATTR_TRIAL_ID)
            ckpt, epoch = last_checkpoint(exp_dir, tid)
            dists = distributions_json(t.distributions)
            warm = t.user_attrs.get("warm_start_from")
            pending.append(Pending(t.number, tid, dict(t.params), ckpt, epoch, dists, warm))
    return Reconciled(finished, pending, repaired, waiting)
