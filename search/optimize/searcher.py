"""A Ray Tune ``Searcher`` that asks Optuna for each trial (define-by-run, conditional spaces).

Why not ``ray.tune.search.optuna.OptunaSearch``: it tells Optuna that an ASHA-stopped trial is
COMPLETE with its truncated value, which misleads TPE. Here the searcher only *asks*; the
:class:`search.execution.recorder.Recorder` callback *tells* once the trial's Parquet row is written
(COMPLETE with its final value, PRUNED with its last value, FAIL with its error text).

Each suggested Tune config is ``{"trial": <flat TrialConfig dict>, "lssat": <bookkeeping>}``;
the bookkeeping carries the Optuna number, the stable ``trial_id`` (the Ray id of the trial's
first run, kept across resumes), the sampled params and, for a resumed trial, its checkpoint.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from ray.tune.search import Searcher

from search.optimize.space import SearchSpace
from search.optimize.study import ATTR_TRIAL_ID, Pending, StudyRef, distributions_json

CONFIG_KEY = "trial"
META_KEY = "lssat"


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
    ):
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning, enqueue notes
            trial = self.ref.study.ask()
            params = self.space.suggest(trial)
        trial.set_user_attr(ATTR_TRIAL_ID, trial_id)
        self.asked[trial_id] = trial.number
        meta = self._meta(
            trial.number, trial_id, params, distributions=distributions_json(trial.distributions)
        )
        meta["warm_start_from"] = trial.user_attrs.get("warm_start_from")  # enqueued from it
        return {CONFIG_KEY: self._config(trial.number, params), META_KEY: meta}

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
