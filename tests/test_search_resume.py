"""Kill the search driver with SIGKILL mid-search, then ``--resume``: the budget is met exactly,
nothing is duplicated, finished trials are untouched, and study and Parquet agree row by row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from resume_checks import assert_resumed_exactly, end_group, rows, wait_one_done_one_running

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SPACE = """\
task: deepfake
trials: 3
scheduler: {grace_period: 3, reduction_factor: 2}
fixed: {epochs: 3, img_size: 32, batch_size: 32, train_subset: 8, val_subset: 6,
        aux_weight: 0.0, checkpoint_every: 1}
params:
  backbone: {choices: [vit_tiny_patch16_224, resnet18]}
  patch_size: {choices: [8, 16]}
  lr: {low: 3.0e-4, high: 3.0e-3, log: true}
"""


def _cmd(tmp: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "search.run", "--task", "deepfake", "--space",
            str(tmp / "kill.yaml"), "--results", str(tmp / "results"), "--max-concurrent", "2",
            "--no-dashboard", *extra]  # fmt: skip


def test_sigkill_then_resume_finishes_the_budget_exactly(tmp_path: Path, demo_data: Path) -> None:
    """3 trials of 3 epochs, 2 at a time (no early stopping): the driver is killed once a trial
    has finished and another one has written epochs; the resume finishes the other two."""
    (tmp_path / "kill.yaml").write_text(SPACE)
    exp = tmp_path / "results" / "deepfake" / "kill"
    # no --data: the embedded demo, found in the session's demo cache
    env = {**os.environ, "LSSAT_CACHE": str(demo_data.parent), "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(_cmd(tmp_path), cwd=ROOT, env=env, stdout=log, stderr=log,
                             start_new_session=True)  # fmt: skip
    try:
        wait_one_done_one_running(first, exp, (tmp_path / "first.log").read_text)
        os.kill(first.pid, signal.SIGKILL)  # the driver only: Ray's processes follow it
        first.wait(timeout=60)
    finally:
        end_group(first.pid)  # anything of that run still alive (Ray agents) goes too
        log.close()
    before = rows(exp)
    assert 1 <= len(before) < 3

    second = subprocess.run(_cmd(tmp_path, "--resume"), cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=900)  # fmt: skip
    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
    assert "resuming:" in second.stdout

    assert_resumed_exactly(exp, before, "deepfake/kill", budget=3)
    settings = json.loads((exp / "search.json").read_text())
    assert len(settings["sessions"]) == 2
    assert settings["sessions"][1]["sampler_seed"] != settings["sessions"][0]["sampler_seed"]
