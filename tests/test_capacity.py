"""Issue 24, item 6: capacity counts whole trials per node (a floor per resource, per node
type) at any cluster size; past 64 trials it used to estimate from the cluster's totals."""

from __future__ import annotations

import random

import pytest

from search.execution.capacity import shape_from_config, trial_bundles, trials_that_fit


def _first_fit(nodes: list[dict[str, float]], bundles: list[dict[str, float]]) -> int:
    """Whole trials placed bundle by bundle, first fit, with no shortcut (small clusters)."""
    free = [dict(n) for n in nodes]
    count = 0
    while True:
        trial = [dict(n) for n in free]
        for b in bundles:
            for node in trial:
                if all(node.get(k, 0.0) + 1e-9 >= b.get(k, 0.0) for k in ("CPU", "GPU")):
                    for k in ("CPU", "GPU"):
                        node[k] = node.get(k, 0.0) - b.get(k, 0.0)
                    break
            else:
                return count
        free, count = trial, count + 1


@pytest.mark.parametrize(
    ("node", "count", "cpus", "gpus", "want"),
    [
        ({"CPU": 4.0, "GPU": 0.0}, 100, 3.0, 0.0, 100),  # the issue's: 133 from the totals
        ({"CPU": 8.0, "GPU": 1.0}, 100, 5.0, 0.5, 100),  # the issue's: 160 from the totals
        ({"CPU": 16.0, "GPU": 4.0}, 300, 3.0, 1.0, 1200),
        ({"CPU": 2.0, "GPU": 0.0}, 1000, 0.3, 0.0, 6000),
    ],
)
def test_counterexamples_count_whole_trials_per_node(
    node: dict[str, float], count: int, cpus: float, gpus: float, want: int
) -> None:
    nodes = [dict(node) for _ in range(count)]
    assert trials_that_fit(nodes, trial_bundles(cpus, gpus, 1)) == want
    config = {"max_workers": count, "head_node_type": "head",
              "available_node_types": {"head": {"resources": {"CPU": 0}, "max_workers": 0},
                                       "w": {"resources": node, "max_workers": count}}}  # fmt: skip
    shape = shape_from_config(config)
    assert shape is not None
    assert trials_that_fit(shape.nodes, trial_bundles(cpus, gpus, 1)) == want


def test_multi_worker_trials_at_scale() -> None:
    nodes = [{"CPU": 4.0, "GPU": 0.0}] * 200  # 800 one-CPU worker slots, no CPU left over
    # T trials need 2T slots and T 0.01-CPU coordinators: one given-up slot seats 100 of them,
    # so 2T + ceil(T / 100) <= 800
    assert trials_that_fit(nodes, trial_bundles(1.0, 0.0, 2)) == 398
    assert trials_that_fit(nodes, trial_bundles(1.0, 0.0, 4)) == 199  # 4T + ceil(T/100)


def test_agrees_with_first_fit_on_small_clusters() -> None:
    """Plain trials: exactly what first fit places. Multi-worker trials: never fewer than
    first fit (which may seat a coordinator where it costs a worker slot), never more than
    the worker slots allow."""
    rng = random.Random(0)
    for _ in range(300):
        kinds = [{"CPU": float(rng.choice([1, 2, 4, 8])), "GPU": float(rng.choice([0, 1, 2]))}
                 for _ in range(rng.randint(1, 3))]  # fmt: skip
        nodes = [dict(rng.choice(kinds)) for _ in range(rng.randint(1, 6))]
        cpus = rng.choice([0.5, 1.0, 1.5, 3.0])
        gpus = rng.choice([0.0, 0.0, 0.25, 0.5, 1.0])
        workers = rng.choice([1, 1, 2, 3])
        if workers > 1 and 0 < gpus < 1:
            gpus = 1.0
        bundles = trial_bundles(cpus, gpus, workers)
        got, first = trials_that_fit(nodes, bundles), _first_fit(nodes, bundles)
        if workers == 1:
            assert got == first, (nodes, bundles)
        else:
            slots = trials_that_fit(nodes, trial_bundles(cpus, gpus, 1))
            assert first <= got <= slots // workers, (nodes, bundles)
