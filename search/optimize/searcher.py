"""A Ray Tune ``Searcher`` that asks Optuna for each trial (define-by-run, conditional spaces).

Why not ``ray.tune.search.optuna.OptunaSearch``: it tells Optuna that an ASHA-stopped trial is
COMPLETE with its truncated value, which misleads TPE. Here the searcher only *asks*; the
:class:`search.execution.recorder.Recorder` callback *tells* once the trial's Parquet row is written
(COMPLETE with its final value, PRUNED with its last value, FAIL with its error text).

TPE off the critical path: with ``ask_ahead`` > 0 a background thread keeps that many trials
asked in advance (Optuna's constant liar sees them as running), so a freed slot takes a ready
configuration instead of waiting for TPE; ``ask_seconds`` and ``waited`` measure it. The first
wave (``first_wave`` trials, one per slot) is asked as soon as :meth:`start` is called, while
Ray starts its trial processes: no trial has finished yet, so TPE would draw the same trials
when asked one by one (its start-up draws, or the constant liar over running trials only).

Each suggested Tune config is ``{"trial": <flat TrialConfig dict>, "lssat": <bookkeeping>}``;
the bookkeeping carries the Optuna number, the stable ``trial_id`` (the Ray id of the trial's
first run, kept across resumes), the sampled params and, for a resumed trial, its checkpoint.
"""

from __future__ import annotations

import collections
import threading
import time
import warnings
from collections.abc import Mapping
from typing import Any

from ray.tune.search import Searcher

from search.optimize.space import SearchSpace
from search.optimize.study import ATTR_TRIAL_ID, Pending, StudyRef, distributions_json

CONFIG_KEY = "trial"
META_KEY = "lssat"
ASK_AHEAD = 2  # trials asked in advance by search.run (bench/scale.py measures the waits)


class OptunaAskSearcher(Searcher):
    """Suggest configs from an Optuna study; re-run ``pending`` (interrupted) trials first."""

    def __init__(
        self,
        space: SearchSpace,
        ref: StudyRef,
        *,
        seed: int,
        meta: Mapping[str, Any],
        tb_root: str,
        pending: list[Pending] | None = None,
        ask_ahead: int = 0,
        new_trials: int | None = None,
        first_wave: int = 0,
    ):
        """``ask_ahead``: trials asked in advance in a background thread (0: ask when Tune
        suggests); ``new_trials``: how many new trials this session asks at most (never more
        are asked ahead); ``first_wave``: trials asked ahead until that many have been
        suggested (the concurrency: every slot of the first wave finds a trial ready)."""
        super().__init__(metric=space.metric, mode=space.mode)
        self.space = space
        self.ref = ref
        self.seed = seed
        self.meta = dict(meta)
        self.tb_root = tb_root
        self.pending = list(pending or [])
        # called as (ray_trial_id, stable_trial_id, checkpoint_epoch) when a pending trial
        # starts again (search.execution.asha restores its rung records under the new Ray id)
        self.on_resumed: Any = None
        self.asked: dict[str, int] = {}  # Ray trial id -> Optuna number
        self.ask_ahead = max(0, int(ask_ahead))
        self.first_wave = max(0, int(first_wave)) if self.ask_ahead > 0 else 0
        self.served = 0  # new trials suggested so far
        self.left = new_trials  # new asks still allowed (None: no limit known)
        self.ask_seconds: list[float] = []  # time of each Optuna ask (either thread)
        self.waited = 0  # suggestions that found no trial asked in advance
        self._ready: collections.deque[tuple[Any, dict[str, Any]]] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._asking = False
        self._attrs: list[tuple[int, str]] = []  # (number, Ray trial id) still to write

    def _meta(
        self,
        number: int,
        trial_id: str,
        params: Mapping[str, Any],
        resume_from: str | None = None,
        resume_epoch: int = 0,
        distributions: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            **self.meta,
            "number": number,
            "trial_id": trial_id,
            "params": dict(params),
            "distributions": dict(distributions or {}),
            "tb_dir": f"{self.tb_root}/{trial_id}",
            "resume_from": resume_from,
            "resume_epoch": resume_epoch,
        }

    def _config(self, number: int, params: Mapping[str, Any]) -> dict[str, Any]:
        if "seed" not in self.space.fixed and "seed" not in params:
            return self.space.config(params, seed=self.seed + number)
        return self.space.config(params)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.pending:
            p = self.pending.pop(0)
            stable = p.trial_id or trial_id
            if not p.trial_id:
                self.ref.set_attrs(p.number, {ATTR_TRIAL_ID: stable})
            self.asked[trial_id] = p.number
            meta = self._meta(
                p.number, stable, p.params, p.checkpoint, p.checkpoint_epoch, p.distributions
            )
            meta["attempts_before"] = 1  # it ran (at least) once in an interrupted session
            meta["warm_start_from"] = p.warm_start_from
            if self.on_resumed is not None:
                self.on_resumed(trial_id, stable, p.checkpoint_epoch)
            return {CONFIG_KEY: self._config(p.number, p.params), META_KEY: meta}
        trial, params = self._next()
        if self.ask_ahead > 0:  # written by the ask-ahead thread: a start never waits on it
            with self._cond:
                self._attrs.append((trial.number, trial_id))
                self._cond.notify_all()
        else:
            with self.ref.lock:
                trial.set_user_attr(ATTR_TRIAL_ID, trial_id)
        self.asked[trial_id] = trial.number
        meta = self._meta(
            trial.number, trial_id, params, distributions=distributions_json(trial.distributions)
        )
        meta["warm_start_from"] = trial.user_attrs.get("warm_start_from")  # enqueued from it
        return {CONFIG_KEY: self._config(trial.number, params), META_KEY: meta}

    # ------------------------------------------------------------------ asking ahead
    def _ask(self) -> tuple[Any, dict[str, Any]]:
        """One Optuna ask and its define-by-run params, under the study's lock."""
        t0 = time.perf_counter()
        with self.ref.lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning, enqueue notes
            trial = self.ref.study.ask()
            params = self.space.suggest(trial)
        self.ask_seconds.append(time.perf_counter() - t0)
        return trial, params

    def _next(self) -> tuple[Any, dict[str, Any]]:
        """The next new trial: one asked in advance, else asked now (counted in ``waited``)."""
        if self.ask_ahead <= 0:
            return self._ask()
        self.start()
        with self._cond:
            self.served += 1
            if not self._ready:
                self.waited += 1
                while not self._ready and self._thread.is_alive() and (
                    self._asking or self.left != 0
                ):
                    self._cond.wait(0.5)
            if self._ready:
                got = self._ready.popleft()
                self._cond.notify_all()
                return got
        return self._ask()  # the helper died: ask here

    def start(self) -> None:
        """Start asking ahead now (search.run calls it before Tune starts; else the first
        suggestion does)."""
        if self.ask_ahead <= 0:
            return
        self.ref.study  # noqa: B018  (open the study in this thread, before the helper starts)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._fill, name="ask-ahead", daemon=True)
                self._thread.start()

    def _target(self) -> int:
        """Trials to keep asked: the rest of the first wave, then ``ask_ahead``."""
        return max(self.ask_ahead, self.first_wave - self.served)

    def _write_attrs(self) -> None:
        """Write the suggested trials' Ray ids (``ATTR_TRIAL_ID``) off the driver's path."""
        with self._cond:
            todo, self._attrs = self._attrs, []
        if todo:
            with self.ref.lock:
                for number, trial_id in todo:
                    self.ref.set_attrs(number, {ATTR_TRIAL_ID: trial_id})

    def _fill(self) -> None:
        """Background thread: keep ``ask_ahead`` trials asked, within ``new_trials``, and write
        the trial ids of the suggested ones."""
        while True:
            self._write_attrs()
            with self._cond:
                while not self._closed and not self._attrs and (
                    len(self._ready) >= self._target() or self.left == 0
                ):
                    self._cond.wait()
                if self._closed:
                    return
                if self._attrs:
                    continue
                if self.left is not None:
                    self.left -= 1
                self._asking = True
            got = None
            try:
                got = self._ask()
            finally:
                with self._cond:
                    self._asking = False
                    if got is not None:
                        self._ready.append(got)
                    self._cond.notify_all()

    def close(self) -> None:
        """Stop asking ahead and write the last trial ids (trials asked but never suggested
        stay RUNNING in the study, as an interrupted trial does, and run first on
        ``--resume``)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self._write_attrs()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for k in ("_cond", "_thread", "_ready", "_attrs"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._ready, self._cond, self._thread = collections.deque(), threading.Condition(), None
        self._attrs = []

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        """The space comes from the YAML file; Tune's metric/mode must agree with it."""
        return (metric in (None, self.space.metric)) and (mode in (None, self.space.mode))

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Nothing to do: the Recorder tells Optuna after writing the Parquet row."""
        self.asked.pop(trial_id, None)

    # Tune snapshots searchers into its experiment state; the study lives in its own storage.
    def get_state(self) -> dict[str, Any]:
        return {"asked": dict(self.asked)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.asked = dict(state.get("asked", {}))

    def save(self, checkpoint_path: str) -> None:
        import json

        with open(checkpoint_path, "w") as fh:
            json.dump(self.get_state(), fh)

    def restore(self, checkpoint_path: str) -> None:
        import json

        with open(checkpoint_path) as fh:
            self.set_state(json.load(fh))
