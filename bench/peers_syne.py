"""Syne Tune peers on a recorded learning-curve table (issue 25, item 3): the worker half of
``bench/peers.py``, run in the peers venv (``/work/peers-venv``; see docs/search.md, "Peer
methods"). It imports nothing from the project, so that venv needs no torch.

The table arrives as a JSON spec (``bench/peers.py`` writes it from
``search.replay.table.load_table``): per configuration its key, params, per-epoch values and
epoch seconds; the target keys (the grid's top set) and the epoch budget (the grid's epochs). It
becomes a Syne Tune ``BlackboxTabular`` (one seed; objectives: the metric and the cumulative
elapsed time; fidelity ``epoch`` 1..E) served by ``UserBlackboxBackend`` (Syne Tune's simulator
backend) to the method's scheduler, built with Syne Tune's defaults at ``n_workers`` workers.

Two changes to the simulator make its clock the recorded epoch times and nothing else: the
backend does not add the real time the scheduler spent deciding (``_advance_by_outside_time``),
and when every worker is busy the clock jumps to the next event instead of advancing by a fixed
tuner sleep; the backend's reporting/start/stop delays are 0. A freed worker asks the scheduler
for its next configuration at once, as in ``search.replay``.

Each run yields every reported epoch, in simulated-time order, as ``[clock_s, key, epoch]``; it
stops once a trial that reported the last epoch is in the target set, or once the budget's epochs
are spent. ``bench/peers.py`` turns these events into the issue's metric.

    /work/peers-venv/bin/python bench/peers_syne.py SPEC.json --method st_asha --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

METHODS = ("st_asha", "st_hyperband", "st_bohb", "st_mobster", "st_dyhpo")
RESOURCE, MAX_RESOURCE, ELAPSED = "epoch", "epochs", "elapsed_time"


def _enc(value: Any) -> str:
    """A parameter value as Syne Tune sees it: its JSON text (exact lookup, no float drift)."""
    return json.dumps(value, sort_keys=True, default=str)


def blackbox(spec: Mapping[str, Any]) -> tuple[Any, dict[str, Any], dict[tuple[str, ...], str]]:
    """The table as a ``BlackboxTabular``, the scheduler's config space (every parameter a
    ``choice`` over its grid values, plus ``epochs``: the max resource) and a map from a
    configuration's encoded values to its table key."""
    import numpy as np
    import pandas as pd
    from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular
    from syne_tune.config_space import choice, randint

    names: list[str] = list(spec["params"])
    epochs = int(spec["epochs"])
    sign = 1.0 if spec["mode"] == "max" else -1.0
    finals = [c["values"][-1] for c in spec["configs"] if _finite(c["values"][-1])]
    worst = min(finals, key=lambda v: sign * v) if finals else 0.0
    rows, evals, lookup = [], [], {}
    for c in spec["configs"]:
        enc = tuple(_enc(c["params"].get(n)) for n in names)
        lookup[enc] = c["key"]
        rows.append(dict(zip(names, enc, strict=True)))
        values = [v if _finite(v) else worst for v in c["values"]]
        times = list(c["times"])
        while len(values) < epochs:  # a failed recording: padded, never counted (peers.py)
            values.append(worst)
            times.append(times[-1] if times else 1.0)
        elapsed = np.cumsum(times[:epochs])
        evals.append([[v, t] for v, t in zip(values[:epochs], elapsed, strict=True)])
    space = {n: choice(sorted({r[n] for r in rows})) for n in names}
    bb = BlackboxTabular(
        hyperparameters=pd.DataFrame(rows, columns=names),
        configuration_space=space,
        fidelity_space={RESOURCE: randint(1, epochs)},
        objectives_evaluations=np.asarray(evals, dtype=float)[:, None, :, :],
        fidelity_values=np.arange(1, epochs + 1),
        objectives_names=[spec["metric"], ELAPSED],
    )
    return bb, {**space, MAX_RESOURCE: epochs}, lookup


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(v)


def scheduler(method: str, space: dict[str, Any], metric: str, mode: str, seed: int) -> Any:
    """The method's Syne Tune scheduler with Syne Tune's defaults (max resource: ``epochs``)."""
    from syne_tune.optimizer import baselines as b

    kw: dict[str, Any] = dict(
        metric=metric, mode=mode, resource_attr=RESOURCE, max_resource_attr=MAX_RESOURCE,
        random_seed=seed,
    )  # fmt: skip
    cls = {
        "st_asha": b.ASHA,
        "st_hyperband": b.SyncHyperband,
        "st_bohb": b.BOHB,
        "st_mobster": b.MOBSTER,
        "st_dyhpo": b.DyHPO,
    }[method]
    return cls(space, **kw)


def run(
    spec: Mapping[str, Any], method: str, seed: int, concurrency: int
) -> list[tuple[float, str, int]]:
    """One simulated search: every reported epoch ``(clock_s, key, epoch)`` in clock order, until
    a finished trial is in the target set or the budget is spent."""
    import numpy as np
    from syne_tune import Tuner
    from syne_tune.backend.simulator_backend.simulator_backend import SimulatorConfig
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend
    from syne_tune.constants import ST_TUNER_TIME

    bb, space, lookup = blackbox(spec)
    names = list(spec["params"])
    epochs, budget = int(spec["epochs"]), int(spec["budget"])
    lengths = {c["key"]: len(c["values"]) for c in spec["configs"]}
    failed = {c["key"] for c in spec["configs"] if c.get("failed")}
    targets = set(spec["targets"])
    events: list[tuple[float, str, int]] = []
    state = {"spent": 0, "done": False}

    class Backend(UserBlackboxBackend):
        def _advance_by_outside_time(self) -> None:  # the scheduler's own time is not charged
            pass

    class Clock(SimulatorCallback):
        """SimulatorCallback whose sleep jumps to the next event; records each result."""

        def on_tuning_start(self, tuner: Any) -> None:
            super().on_tuning_start(tuner)
            self._backend = tuner.trial_backend

        def on_tuning_sleep(self, sleep_time: float) -> None:
            heap = self._backend._simulator_state.event_heap
            now = self._time_keeper.time()
            self._time_keeper.advance_to(max(now + 1e-6, heap[0][0] if heap else now + 1.0))

        def on_trial_result(self, trial: Any, status: str, result: dict, decision: str) -> None:
            k = lookup[tuple(trial.config[n] for n in names)]
            ep = int(result[RESOURCE])
            if ep > lengths[k]:  # past a failed recording's last epoch: not trained
                return
            events.append((float(result[ST_TUNER_TIME]), k, ep))
            state["spent"] += 1
            last = ep == lengths[k] == epochs and k not in failed
            if state["spent"] >= budget or (last and k in targets):
                state["done"] = True

    np.random.seed(seed)
    zero = SimulatorConfig(0.0, 0.0, 0.0, 0.0, 0.0)
    backend = Backend(bb, elapsed_time_attr=ELAPSED, max_resource_attr=MAX_RESOURCE,
                      simulator_config=zero, tuner_sleep_time=0.0)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="peers-st-") as tmp:
        os.environ["SYNETUNE_FOLDER"] = tmp
        tuner = Tuner(
            trial_backend=backend,
            scheduler=scheduler(method, space, spec["metric"], spec["mode"], seed),
            stop_criterion=lambda status: state["done"],
            n_workers=concurrency,
            sleep_time=0,
            results_update_interval=1e9,
            print_update_interval=1e9,
            callbacks=[Clock()],
            save_tuner=False,
            tuner_name=f"{method.replace('_', '-')}-{seed}",
        )
        tuner.run()
    events.sort(key=lambda e: e[0])  # one fetch's results come per trial, not per time
    return events


def runs(
    spec: Mapping[str, Any], method: str, seeds: Sequence[int], concurrency: int
) -> Iterator[dict[str, Any]]:
    """``run`` for each seed, as ``{"seed", "events"}`` (an ``"error"`` line if it fails)."""
    quiet()
    for seed in seeds:
        try:
            yield {"seed": seed, "events": run(spec, method, seed, concurrency)}
        except Exception as exc:  # noqa: BLE001 - one line for peers.py, then the next seed
            yield {"seed": seed, "error": f"{type(exc).__name__}: {exc}"}


def quiet() -> None:
    """Syne Tune's per-trial logging and warnings off (they would dominate the run time)."""
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("spec", help="table spec JSON written by bench/peers.py")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--seeds", required=True, help="comma-separated seeds")
    p.add_argument("--concurrency", type=int, default=4)
    a = p.parse_args(argv)
    with open(a.spec) as f:
        spec = json.load(f)
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    for line in runs(spec, a.method, seeds, a.concurrency):
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
