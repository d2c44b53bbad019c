"""The search on an autoscaling cluster: Ray's own simulator, as ``cluster.yaml`` behaves.

``ray.cluster_utils.AutoscalingCluster`` with a ``CPU: 0`` head and one GPU worker type that
starts at 0 nodes (``min_workers: 0``, ``max_workers: 2``, 1 CPU + 1 logical GPU each), run in
its own PID and network namespace (``tests/autoscaling_sim.py``: its ``ray stop --force`` must
not reach other Ray processes on the machine). Skipped where namespaces cannot be created
(needs root or ``CAP_SYS_ADMIN``).

One simulated cluster runs, in turn:

- ``--dry-run``: prints the concurrency from the autoscaler's node types (2), nothing written;
- a trial that asks for 2 GPUs: no node type can ever hold it, one sentence, exit 2;
- a 4-trial search with ``--gpus-per-trial 1`` and no ``--max-concurrent``: it must start
  both worker nodes and run trials on them at overlapping times (sizing from today's free
  resources, 0 GPUs, ran one trial at a time on one node), and print one line for a trial that
  waited longer than ``--wait-warning`` while its node started.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from autoscaling_sim import run_isolated, unshare_works

from search import results

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not unshare_works(), reason="needs PID/network namespaces (root)"),
]

ROOT = Path(__file__).resolve().parents[1]
SPACE = """\
task: deepfake
trials: 4
scheduler: {grace_period: 3, reduction_factor: 2}
fixed: {epochs: 1, img_size: 32, batch_size: 16, train_subset: 32, val_subset: 32,
        backbone: resnet18, patch_size: 8, aux_weight: 0.0, warmup_epochs: 0.0,
        checkpoint_every: 1}
params:
  lr: {low: 3.0e-4, high: 3.0e-3, log: true}
"""
GPU_NODE = {"resources": {"CPU": 1, "GPU": 1}, "node_config": {}, "min_workers": 0}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory, demo_data: Path) -> Iterator[tuple[dict, Path]]:
    """Run the three commands on one simulated autoscaling cluster: (result, folder)."""
    root = tmp_path_factory.mktemp("autoscale")
    (root / "space.yaml").write_text(SPACE)
    base = [sys.executable, "-m", "search.run", "--task", "deepfake", "--space",
            str(root / "space.yaml"), "--data", str(demo_data), "--results",
            str(root / "results"), "--address", "auto"]  # fmt: skip
    commands = [
        [*base, "--name", "dry", "--gpus-per-trial", "1", "--dry-run"],
        [*base, "--name", "huge", "--gpus-per-trial", "2"],
        [*base, "--name", "scale", "--trials", "4", "--gpus-per-trial", "1", "--wait-warning", "2"],
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        # short: the fake nodes' socket paths must stay under 107 bytes
        "RAY_TMPDIR": tempfile.mkdtemp(prefix="ras-", dir="/tmp"),
        # a temp folder of its own: lssat sweeps checkpoint scratch folders of "dead" PIDs
        # there, and PIDs of this namespace and the machine's mean different processes
        "TMPDIR": tempfile.mkdtemp(prefix="rat-", dir="/tmp"),
    }
    spec = {
        "head": {"CPU": 0},
        "workers": {"gpu_worker": {**GPU_NODE, "max_workers": 2}},
        "max_workers": 2,
        "commands": commands,
        "out": str(root / "sim"),
    }
    try:
        yield run_isolated(spec, env), root
    finally:
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
        shutil.rmtree(env["TMPDIR"], ignore_errors=True)


def _log(root: Path, i: int) -> str:
    return (root / "sim" / f"cmd{i}.log").read_text()


def test_dry_run_sizes_from_the_autoscaler_and_writes_nothing(sim: tuple[dict, Path]) -> None:
    result, root = sim
    out = _log(root, 0)
    assert result["codes"][0] == 0, out[-3000:]
    assert "trials at once: 2 (what the autoscaler's node types hold" in out, out[-3000:]
    assert "rough GPU-hours:" in out and "trial budget: 4 x 1 epochs" in out
    assert not (root / "results" / "deepfake" / "dry").exists()


def test_a_trial_no_node_type_can_hold_is_refused(sim: tuple[dict, Path]) -> None:
    result, root = sim
    out = _log(root, 1)
    assert result["codes"][1] == 2, out[-3000:]
    line = next(ln for ln in out.splitlines() if ln.startswith("error:"))
    assert "asks for 2 CPU" not in line and "1 CPU + 2 GPU" in line
    assert "no node type of the autoscaler can ever hold it" in line
    assert "the largest node type offers 1 CPU + 1 GPU" in line
    assert not (root / "results" / "deepfake" / "huge").exists()


def test_queued_trials_scale_the_cluster_out(sim: tuple[dict, Path]) -> None:
    result, root = sim
    out = _log(root, 2)
    assert result["codes"][2] == 0, out[-4000:]
    assert "4 trials, 2 at a time" in out, out[-3000:]
    workers = [n for n in result["nodes"] if n["resources"].get("GPU")]
    assert len(workers) >= 2, result["nodes"]  # the autoscaler started both GPU nodes
    trials = results.read_trials(root / "results" / "deepfake" / "scale")
    assert len(trials) == 4 and set(trials["status"]) == {"COMPLETE"}, trials[["status", "error"]]
    assert set(trials["node_id"]) <= {n["node_id"] for n in workers}
    assert trials["node_id"].nunique() == 2
    rows = trials.to_dict("records")
    overlapping = [
        (a["number"], b["number"])
        for a in rows
        for b in rows
        if a["node_id"] != b["node_id"]
        and a["started_at"] < b["ended_at"]
        and b["started_at"] < a["ended_at"]
    ]
    assert overlapping, trials[["number", "node_id", "started_at", "ended_at"]]
    assert "has waited" in out and "the largest node type offers 1 CPU + 1 GPU" in out
