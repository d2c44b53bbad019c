"""Shared pytest setup: quiet, bounded, and isolated from the user's caches."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

# two xdist workers (make test: -n 2) share the 2 cores: one thread each
os.environ.setdefault("OMP_NUM_THREADS", "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2")
# each xdist worker gets its own Ray temp folder: a local ray.init() looks there for a running
# cluster, and two workers sharing one would join each other's
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
_RAY_TMP = (
    tempfile.mkdtemp(prefix=f"ray-{_WORKER}-")
    if _WORKER or "RAY_TMPDIR" not in os.environ
    else None
)
if _RAY_TMP:
    os.environ["RAY_TMPDIR"] = _RAY_TMP
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray Train's controller collects each worker's report (the worker blocks until it is taken)
# and sees the run end only when it polls, every 2 s by default: that wait was a large share
# of every multi-worker trial here. Polling more often changes nothing else (a missed poll
# counts against the worker only after 10 minutes). Inherited by every Ray a test starts.
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the Ray temp folder this session made (Ray's logs and sockets of every test)."""
    if _RAY_TMP:
        shutil.rmtree(_RAY_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory):
    """The embedded deepfake demo set, built once per test session in a temp cache."""
    from lssat.data import demo_dataset

    return demo_dataset(tmp_path_factory.mktemp("demo-cache"))


DEMO_SEARCH_SPACE = """\
# a tiny real search for the tests: trial 0 is made to fail (one image per batch cannot train
# resnet18's BatchNorm at 32 px), trial 1 trains the auxiliary task
task: deepfake
trials: 6
scheduler: {grace_period: 1, reduction_factor: 4}
sampler: {n_startup_trials: 6}
fixed: {epochs: 2, img_size: 32, train_subset: 12, val_subset: 6, warmup_epochs: 0.5,
        decoder_dim: 32, decoder_depth: 1, checkpoint_every: 1}
params:
  backbone: {choices: [vit_tiny_patch16_224, resnet18]}
  patch_size: {choices: [8, 16]}
  batch_size: {low: 32, high: 64, step: 32}
  lr: {low: 3.0e-4, high: 3.0e-3, log: true}
  aux_weight: {choices: [0.0, 0.5]}
  descriptor: {choices: [lbp, ldp], when: {aux_weight: {gt: 0}}}
enqueue:
  - {backbone: resnet18, patch_size: 8, batch_size: 1, lr: 1.0e-3, aux_weight: 0.0}
  - {backbone: vit_tiny_patch16_224, patch_size: 8, batch_size: 32, lr: 1.0e-3, aux_weight: 0.5,
     descriptor: ldp}
"""


@pytest.fixture(scope="session")
def demo_search(tmp_path_factory: pytest.TempPathFactory, demo_data):
    """A small real search run once with the CLI (6 trials, 2 at a time, 2 epochs, real Ray and
    Optuna on the demo data; trial 0 fails on purpose): its experiment folder
    ``.../results/deepfake/demo`` (the CLI's output is in ``.../search.log`` next to results/)."""
    import subprocess
    import sys
    from pathlib import Path

    root = tmp_path_factory.mktemp("demo-search")
    space = root / "demo.yaml"
    space.write_text(DEMO_SEARCH_SPACE)
    repo = Path(__file__).resolve().parents[1]
    cmd = [
        sys.executable, "-m", "search.run", "--task", "deepfake", "--space", str(space),
        "--data", str(demo_data), "--results", str(root / "results"), "--name", "demo",
        "--trials", "6", "--max-concurrent", "2", "--epochs", "2", "--no-dashboard",
    ]  # fmt: skip
    path = os.pathsep.join(p for p in (str(repo), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=1200)
    (root / "search.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return root / "results" / "deepfake" / "demo"


# --- shared final-stage fixtures (speed-t1)
@pytest.fixture(scope="module")
def module_ray():
    """One local Ray in this process for a module's in-process commands, shut down after the
    module. ``search.run`` and ``search.final`` leave a Ray they did not start running, so the
    module's searches and final stages share it: no Ray start, and no Python, torch and Ray
    import of a subprocess, per command. Its workers run one thread each, as the commands'
    subprocesses did (``OMP_NUM_THREADS=1``)."""
    from search.execution.ray_init import RayOptions, ray_connected, ray_init

    assert not ray_connected(), "a Ray of an earlier test is still connected"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")  # read by the workers Ray starts
        ray = ray_init(RayOptions(dashboard=False))
    yield ray
    ray.shutdown()


def _in_process(main, argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` of a command in this process: (exit code, what it printed)."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = main(argv)
    return code, buf.getvalue()


@pytest.fixture(scope="session")
def in_process():
    """``in_process(main, argv)``: a command's ``main`` run here, (exit code, its output)."""
    return _in_process
