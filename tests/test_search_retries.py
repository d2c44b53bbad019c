"""Retries that make sense, and no silent waits (issue 13).

- a trial whose own code raises (here a config that fails the same way every time: one image
  per batch reaches resnet18's BatchNorm) is recorded FAIL at once under ``--max-failures 2``:
  one attempt, ``attempts = 1`` (retrying it used to run it three times);
- the up-front check counts a multi-worker trial's 0.01-CPU coordinator: 2 workers filling
  every CPU of this machine plus the coordinator is refused in one sentence that says how to
  make it fit (it used to print ``#0 started`` and then wait forever);
- concurrency is sized from the autoscaler's node types at their largest (``cluster.yaml``),
  never from the resources present now.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from search import results
from search.execution.capacity import (
    ClusterShape,
    rough_gpu_hours,
    shape_from_config,
    trial_bundles,
    trials_that_fit,
)
from search.execution.resources import TrialResources, concurrency

ROOT = Path(__file__).resolve().parents[1]
BAD_SPACE = """\
task: deepfake
trials: 1
fixed: {epochs: 2, img_size: 32, train_subset: 32, val_subset: 32, backbone: resnet18,
        patch_size: 8, aux_weight: 0.0, warmup_epochs: 0.0, checkpoint_every: 1}
params:
  lr: {low: 3.0e-4, high: 3.0e-3, log: true}
  batch_size: {low: 1, high: 2}
enqueue:
  - {lr: 1.0e-3, batch_size: 1}
"""


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _search(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "search.run", "--task", "deepfake", "--no-dashboard", *argv]
    try:
        return subprocess.run(
            cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        pytest.fail(f"the search still ran after {timeout:g} s (a silent wait):\n{out[-2000:]}")


# ------------------------------------------------------------------------------------ fast
def test_coordinator_share_is_counted_in_the_fit() -> None:
    two_cpus = [{"CPU": 2.0, "GPU": 0.0}]
    assert trials_that_fit(two_cpus, trial_bundles(1.0, 0.0, 2)) == 0  # 2 + 0.01 > 2
    assert trials_that_fit(two_cpus, trial_bundles(0.99, 0.0, 2)) == 1
    assert trials_that_fit(two_cpus, trial_bundles(0.5, 0.0, 2)) == 1  # 1.01, then 0.99 left
    assert trials_that_fit(two_cpus, trial_bundles(1.0, 0.0, 1)) == 2


def test_cluster_yaml_concurrency_comes_from_its_node_types() -> None:
    """What docs/cluster.md states: the README's command runs 32 trials at once on
    cluster.yaml at its largest (2 x 4-GPU nodes hold 8 each, 8 x 1-GPU nodes 2 each), where
    today's resources (a CPU-0 head, no workers yet) would say 0."""
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    shape = shape_from_config(config)
    assert shape is not None and shape.autoscaling
    assert len(shape.nodes) == 1 + 10  # head + max_workers
    args = _args(cpus_per_trial=4.0, gpus_per_trial=0.5)
    assert concurrency(shape, args, local=False) == 32
    assert concurrency(shape, _args(cpus_per_trial=8.0, gpus_per_trial=1.0), local=False) == 16
    ddp = _args(cpus_per_trial=8.0, gpus_per_trial=1.0, workers_per_trial=4)
    assert concurrency(shape, ddp, local=False) == 4  # 2 on the 4-GPU nodes, 2 over 1-GPU ones
    now = ClusterShape([{"CPU": 0.0, "GPU": 0.0}], "live nodes")
    with pytest.raises(Exception, match="no node of this cluster can hold it"):
        concurrency(now, args, local=False)
    assert shape.largest() == "the largest node type offers 48 CPU + 4 GPU"


def test_rough_gpu_hours() -> None:
    full, asha = rough_gpu_hours(27, 9, 1.0, grace=1, rf=3, epoch_min=60.0)
    assert full == 27 * 9
    assert asha == pytest.approx(27 * 1 + 9 * 2 + 3 * 6)  # 27 to rung 1, 9 to 3, 3 to 9


def _args(**kw: object) -> TrialResources:
    """The trial's resources as the flags name them (--cpus-per-trial ...)."""
    names = {"cpus_per_trial": "cpus", "gpus_per_trial": "gpus", "workers_per_trial": "workers"}
    return TrialResources(**{names.get(k, k): v for k, v in kw.items()})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ slow
@pytest.mark.slow
def test_exact_fit_with_the_coordinator_is_refused_in_one_sentence(tmp_path: Path) -> None:
    from ray._private.utils import get_num_cpus

    cpus = get_num_cpus()  # what a local Ray detects
    proc = _search("--space", "spaces/demo.yaml", "--trials", "1", "--workers-per-trial", "2",
                   "--cpus-per-trial", f"{cpus / 2:g}", "--results", str(tmp_path),
                   timeout=240)  # fmt: skip
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "0.01-CPU coordinator" in errors[0] and "this machine cannot hold it" in errors[0]
    assert f"offers {cpus:g} CPU" in errors[0] and "--cpus-per-trial" in errors[0]
    assert "started" not in proc.stdout
    assert not any(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.slow
def test_an_error_of_the_trial_itself_fails_at_once(tmp_path: Path, demo_data: Path) -> None:
    space = tmp_path / "bad.yaml"
    space.write_text(BAD_SPACE)
    proc = _search("--space", str(space), "--data", str(demo_data), "--results",
                   str(tmp_path / "r"), "--max-failures", "2")  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-4000:]  # every trial failed
    row = results.read_trials(tmp_path / "r" / "deepfake" / "bad").iloc[0]
    assert row["status"] == "FAIL" and row["stop_reason"] == "error"
    assert row["error"].startswith("ValueError: Expected more than 1 value per channel")
    assert row["attempts"] == 1, out[-4000:]
    assert proc.stdout.count("#0 started") == 1, proc.stdout[-4000:]


def test_demo_data_is_resolved_on_the_trial_node(
    demo_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --data the driver's demo path may exist only on the head: a trial resolves
    (or builds) the demo in its own node's cache instead."""
    from lssat.config import TrialConfig
    from search.execution.trainable import trial_data

    monkeypatch.setenv("LSSAT_CACHE", str(demo_data.parent))  # this "node"'s cache
    cfg = TrialConfig(task="deepfake")
    head_only = "/nonexistent/head/.cache/demo"
    assert trial_data(cfg, {"data": head_only, "demo": True}) == str(demo_data)
    assert trial_data(cfg, {"data": str(demo_data), "demo": False}) == str(demo_data)
