"""Equal search effort per level of one categorical parameter (a space's ``balance: backbone``).

:class:`BalancedSampler` gives each new trial the level with the fewest trials so far (ties: the
order of the space's ``choices``), so the levels take turns (round-robin) and end with equal
counts (within one when the budget is not a multiple of the levels). The level is fixed with
Optuna's ``PartialFixedSampler`` around the project's sampler (TPE), which searches the other
parameters. The counts are read from the study on every ask (every trial the study holds, any
state, enqueued ones by their fixed value), so a resumed search, a re-run trial and parallel
asks keep the balance; warm-start prior trials are not in the study and do not count.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.samplers import BaseSampler, PartialFixedSampler
from optuna.trial import FrozenTrial


def level_of(trial: FrozenTrial, param: str) -> Any:
    """The trial's level of ``param``: sampled, or fixed by ``enqueue`` (None when neither)."""
    if param in trial.params:
        return trial.params[param]
    return trial.system_attrs.get("fixed_params", {}).get(param)


def next_level(trials: Sequence[FrozenTrial], param: str, choices: Sequence[Any],
               exclude: int | None = None) -> Any:  # fmt: skip
    """The level with the fewest trials among ``trials`` (but ``exclude``), first in
    ``choices`` on a tie."""
    counts = {i: 0 for i in range(len(choices))}
    index = {repr(c): i for i, c in enumerate(choices)}
    for t in trials:
        if t.number == exclude:
            continue
        i = index.get(repr(level_of(t, param)))
        if i is not None:
            counts[i] += 1
    return choices[min(counts, key=lambda i: (counts[i], i))]


class BalancedSampler(BaseSampler):
    """``base`` (TPE) for every parameter but ``param``, whose level is assigned round-robin."""

    def __init__(self, base: BaseSampler, param: str, choices: Sequence[Any]):
        self.base = base
        self.param = param
        self.choices = list(choices)
        self._fixed: dict[int, PartialFixedSampler] = {}  # trial number -> its sampler

    def _sampler(self, study: optuna.Study, trial: FrozenTrial) -> PartialFixedSampler:
        s = self._fixed.get(trial.number)
        if s is None:
            level = next_level(study.get_trials(deepcopy=False), self.param, self.choices,
                               exclude=trial.number)  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                s = self._fixed[trial.number] = PartialFixedSampler({self.param: level}, self.base)
        return s

    def level(self, trial_number: int) -> Any:
        """The level assigned to a trial asked in this process (None when unknown)."""
        s = self._fixed.get(trial_number)
        return None if s is None else s._fixed_params[self.param]

    def reseed_rng(self) -> None:
        self.base.reseed_rng()

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler(study, trial)
        self.base.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict:
        return self._sampler(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict) -> dict:
        return self._sampler(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: Any) -> Any:  # fmt: skip
        return self._sampler(study, trial).sample_independent(
            study, trial, param_name, param_distribution
        )

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: Any,
                    values: Sequence[float] | None) -> None:  # fmt: skip
        self._fixed.pop(trial.number, None)
        self.base.after_trial(study, trial, state, values)
