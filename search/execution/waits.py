"""No silent waits: one line when a trial has waited for resources too long.

A trial Tune has created but cannot place stays PENDING. On an autoscaling cluster that is
normal for a while (a node is starting); after ``--wait-warning`` seconds (default 60) this
Tune callback prints, once per trial, what it asks for and what the largest node type offers,
so a search that waits on a node that never comes (quota, no spot capacity, ``max_workers``
reached) says so instead of printing nothing.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ray.tune import Callback

from search.optimize.searcher import META_KEY


class WaitWatch(Callback):
    """Prints ``#N has waited S s for resources: ...`` once per trial past ``after_s``."""

    def __init__(self, after_s: float, asks: str, offers: str):
        self.after_s = float(after_s)
        self.asks, self.offers = asks, offers
        self.since: dict[str, float] = {}
        self.told: set[str] = set()

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        for trial in trials:
            if trial.status != "PENDING":
                self.since.pop(trial.trial_id, None)
                continue
            first = self.since.setdefault(trial.trial_id, now)
            if now - first < self.after_s or trial.trial_id in self.told:
                continue
            self.told.add(trial.trial_id)
            meta = (trial.config or {}).get(META_KEY, {})
            who = f"#{meta['number']}" if "number" in meta else f"trial {trial.trial_id}"
            print(
                f"{who} has waited {int(now - first)} s for resources: it asks for "
                f"{self.asks}; {self.offers} (still waiting; see `ray status`)",
                file=sys.stdout,
                flush=True,
            )
