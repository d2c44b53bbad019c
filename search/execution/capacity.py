"""How many trials a Ray cluster can hold at once, at its largest size.

A trial holds bundles of resources: one ``{CPU, GPU}`` bundle for a plain trial, or a
coordinator (``{CPU: 0.01}``, the Tune function that launches Ray Train) plus ``N`` worker
bundles for a ``--workers-per-trial N`` trial. :func:`trials_that_fit` counts whole trials
per node (the floor of each resource over the trial's need, per node type), exactly, for any
number of nodes and trials.

The nodes are those of the cluster *at its maximum size*: on an autoscaling cluster the
autoscaler's node types times their ``max_workers`` (Ray's cluster config when the autoscaler
publishes one, else the ``--autoscaling-config`` file of the cluster's monitor process, which
runs on the head where the search driver runs), never the nodes that happen to be up now: the
head of ``cluster.yaml`` has ``CPU: 0`` and its GPU workers start at 0, so today's resources
say 0 trials, and only trials queued in Tune make the autoscaler add nodes. Without an
autoscaler the nodes are the live ones (a fixed cluster, or the local machine).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COORDINATOR_CPU = 0.01  # the Tune trial that only coordinates Ray Train workers
KINDS = ("CPU", "GPU")
MAX_TRIALS = 10_000  # "no limit" (e.g. a node type with max_workers unset) is capped here
EPS = 1e-9


def trial_bundles(cpus: float, gpus: float, workers: int) -> list[dict[str, float]]:
    """The resource bundles one trial holds (coordinator first for multi-worker trials)."""
    each = {"CPU": float(cpus), "GPU": float(gpus)}
    if workers <= 1:
        return [each]
    return [{"CPU": COORDINATOR_CPU, "GPU": 0.0}] + [dict(each) for _ in range(workers)]


def describe(bundles: list[dict[str, float]]) -> str:
    """'1 CPU + 1 GPU' or '2 workers x (1 CPU + 0 GPU) + a 0.01-CPU coordinator'."""
    one = f"{bundles[-1]['CPU']:g} CPU + {bundles[-1]['GPU']:g} GPU"
    if len(bundles) == 1:
        return one
    return f"{len(bundles) - 1} workers x ({one}) + a {COORDINATOR_CPU:g}-CPU coordinator"


def _total(bundles: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(b.get(k, 0.0) for b in bundles) for k in KINDS}


def _fits(cap: tuple[float, ...], bundle: dict[str, float]) -> int:
    """Whole copies of ``bundle`` one node of capacity ``cap`` (in ``KINDS`` order) holds:
    the floor per resource, the smallest of them."""
    counts = [
        math.floor((have + EPS) / bundle.get(k, 0.0))
        for k, have in zip(KINDS, cap, strict=True)
        if bundle.get(k, 0.0) > EPS
    ]
    return max(0, min(counts)) if counts else MAX_TRIALS


def trials_that_fit(
    nodes: list[dict[str, float]], bundles: list[dict[str, float]], limit: int = MAX_TRIALS
) -> int:
    """Whole trials (each ``bundles``) that fit on ``nodes`` at once, counted per node type
    (identical nodes together), exact at any cluster size.

    A plain trial (one bundle): per node, the floor of each resource over the trial's need,
    the smallest, times the nodes of that type. A multi-worker trial (a 0.01-CPU coordinator
    plus N equal worker bundles, which Ray may place on different nodes): the worker slots of
    every node; coordinators sit in the CPU a node has left over, and where that is not
    enough, a worker slot is given up to seat them (on the type where one seats the most)."""
    if all(v <= EPS for v in _total(bundles).values()):
        return limit
    groups: dict[tuple[float, ...], int] = {}
    for n in nodes:
        key = tuple(float(n.get(k, 0.0)) for k in KINDS)
        groups[key] = groups.get(key, 0) + 1
    worker = bundles[-1]
    if len(bundles) == 1:
        return min(limit, sum(c * _fits(cap, worker) for cap, c in groups.items()))
    coord, n_workers = bundles[0], len(bundles) - 1
    need_cpu = max(coord.get("CPU", 0.0), EPS)
    slots = left_seats = 0
    gain = 0  # coordinators one given-up worker slot seats (best node type)
    for cap, count in groups.items():
        cap_d = dict(zip(KINDS, cap, strict=True))
        s = min(_fits(cap, worker), MAX_TRIALS)
        left = cap_d["CPU"] - s * worker.get("CPU", 0.0)
        seats = math.floor((left + EPS) / need_cpu)
        slots += count * s
        left_seats += count * seats
        if s > 0:
            more = math.floor((left + worker.get("CPU", 0.0) + EPS) / need_cpu) - seats
            gain = max(gain, more)
    trials = min(limit, slots // n_workers)
    while trials > 0:
        short = trials - left_seats
        given_up = 0 if short <= 0 else (math.ceil(short / gain) if gain > 0 else None)
        if given_up is not None and trials * n_workers <= slots - given_up:
            return trials
        trials -= 1
    return 0


@dataclass
class ClusterShape:
    """The nodes a search can count on and where that knowledge came from."""

    nodes: list[dict[str, float]]
    source: str  # "autoscaler" | "live nodes"
    autoscaling: bool = False
    node_types: dict[str, dict[str, float]] = field(default_factory=dict)

    def largest(self) -> str:
        """'the largest node type offers 8 CPU + 1 GPU' (or '... node ...' when fixed)."""
        pool = list(self.node_types.values()) or self.nodes
        if not pool:
            return "the cluster has no nodes"
        big = max(pool, key=lambda r: (r.get("GPU", 0.0), r.get("CPU", 0.0)))
        what = "node type" if self.node_types else "node"
        return f"the largest {what} offers {big.get('CPU', 0):g} CPU + {big.get('GPU', 0):g} GPU"


def shape_from_config(config: dict[str, Any]) -> ClusterShape | None:
    """The cluster at its maximum size from an autoscaler config (``available_node_types``,
    ``max_workers``, ``head_node_type``); None when a node type's resources are unknown."""
    types = config.get("available_node_types") or {}
    if not isinstance(types, dict) or not types:
        return None
    head = config.get("head_node_type")
    cap = config.get("max_workers")
    cap = MAX_TRIALS if cap is None else int(cap)
    known: dict[str, dict[str, float]] = {}
    for name, spec in types.items():
        res = (spec or {}).get("resources")
        if not isinstance(res, dict) or not any(k in res for k in KINDS):
            return None  # e.g. the local provider's detected-at-start nodes
        known[name] = {k: float(res.get(k, 0.0)) for k in KINDS}
    nodes: list[dict[str, float]] = []
    if head in known:
        nodes.append(known[head])
    workers = [n for n in known if n != head]
    # the node types that hold the most, first: the global cap then keeps the best ones
    workers.sort(key=lambda n: (known[n]["GPU"], known[n]["CPU"]), reverse=True)
    for name in workers:
        spec = types[name] or {}
        count = spec.get("max_workers")
        count = cap if count is None else min(int(count), cap)
        count = min(count, max(0, cap - (len(nodes) - (1 if head in known else 0))))
        nodes.extend(dict(known[name]) for _ in range(count))
    worker_types = {n: known[n] for n in workers if (types[n] or {}).get("max_workers", 1) != 0}
    return ClusterShape(nodes, "autoscaler", autoscaling=True, node_types=worker_types)


def _monitor_config(gcs_address: str) -> dict[str, Any] | None:
    """The ``--autoscaling-config`` of this cluster's monitor process, if it runs here."""
    try:
        import psutil
        import yaml
    except ImportError:  # pragma: no cover - both ship with ray[default]
        return None
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if not any(str(c).endswith("monitor.py") for c in cmd):
            continue
        opts = dict(c.split("=", 1) for c in cmd if str(c).startswith("--") and "=" in c)
        if opts.get("--gcs-address") != gcs_address or "--autoscaling-config" not in opts:
            continue
        try:
            text = Path(opts["--autoscaling-config"]).expanduser().read_text()
            return yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError):
            return None
    return None


def _v2_config(ray: Any) -> ClusterShape | None:
    """Ray's published cluster config (autoscaler v2, KubeRay), if any."""
    try:
        from ray._private.state import state

        cfg = state.get_cluster_config()
    except Exception:
        return None
    if cfg is None or not cfg.node_group_configs:
        return None
    types: dict[str, Any] = {}
    for g in cfg.node_group_configs:
        types[g.name] = {
            "resources": dict(g.resources),
            "max_workers": MAX_TRIALS if g.max_count < 0 else int(g.max_count),
        }
    return shape_from_config({"available_node_types": types})


def live_nodes(ray: Any) -> list[dict[str, float]]:
    """Total CPU/GPU of every alive node."""
    return [
        {k: float(n.get("Resources", {}).get(k, 0.0)) for k in KINDS}
        for n in ray.nodes()
        if n.get("Alive")
    ]


def cluster_shape(ray: Any, joined: bool) -> ClusterShape:
    """The cluster at its largest: autoscaler node types when ``joined`` (``--address``) and
    an autoscaler is found, else the live nodes."""
    if joined:
        shape = _v2_config(ray)
        if shape is None:
            try:
                gcs = ray.get_runtime_context().gcs_address
            except Exception:
                gcs = None
            cfg = _monitor_config(gcs) if gcs else None
            shape = shape_from_config(cfg) if cfg else None
        if shape is not None:
            return shape
    return ClusterShape(live_nodes(ray), "live nodes")


def dumps_shape(shape: ClusterShape) -> str:
    """One JSON line (for --dry-run and logs)."""
    return json.dumps({"source": shape.source, "node_types": shape.node_types})


def rough_gpu_hours(
    budget: int, epochs: int, gpus_per_trial: float, grace: int, rf: int, epoch_min: float
) -> tuple[float, float]:
    """(without early stopping, with ASHA keeping 1/rf at each rung) GPU-hours."""
    full = budget * epochs * gpus_per_trial * epoch_min / 60.0
    rungs, t = [], grace
    while t < epochs:
        rungs.append(t)
        t *= rf
    # trials alive after rung i: budget / rf**(i+1); each ran up to that rung
    spent, prev, alive = 0.0, 0, float(budget)
    for r in rungs:
        spent += alive * (r - prev)
        prev, alive = r, alive / rf
    spent += alive * (epochs - prev)
    asha = spent * gpus_per_trial * epoch_min / 60.0
    return full, min(full, asha) if math.isfinite(asha) else full
