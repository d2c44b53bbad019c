"""A multi-worker trial survives a killed driver and ``--resume`` with every epoch row (issue 13).

A 2-worker trial (Ray Train, gloo on this CPU) of 3 epochs; the driver is SIGKILLed during the
trial's second epoch (its first epoch reported; ``slow_epochs`` sleeps after each report of the
first attempt to leave the window). ``--resume`` runs it again: Ray Train continues from its own
latest checkpoint, and the experiment must hold epochs 1, 2, 3 exactly once and a COMPLETE
trial row with ``attempts = 2`` (rows used to be rewritten empty because the Train checkpoint
never reached the epoch rows).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from resume_checks import end_group

from search import results
from search.testing import faults

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SPACE = """\
task: deepfake
trials: 1
fixed: {epochs: 3, img_size: 32, batch_size: 16, train_subset: 32, val_subset: 32,
        backbone: test_resnet, patch_size: 8, aux_weight: 0.0, warmup_epochs: 0.0,
        checkpoint_every: 1}
params:
  lr: {low: 3.0e-4, high: 3.0e-3, log: true}
"""


def test_killed_driver_then_resume_keeps_every_epoch_row(tmp_path: Path, demo_data: Path) -> None:
    (tmp_path / "mw.yaml").write_text(SPACE)
    log_dir = tmp_path / "attempts"
    log_dir.mkdir()
    cmd = [sys.executable, "-m", "search.run", "--task", "deepfake", "--space",
           str(tmp_path / "mw.yaml"), "--data", str(demo_data), "--results",
           str(tmp_path / "r"), "--workers-per-trial", "2", "--cpus-per-trial", "0.5",
           "--no-dashboard"]  # fmt: skip
    env = {**os.environ, **faults.env("slow_epochs", log_dir=str(log_dir), seconds=8)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    exp = tmp_path / "r" / "deepfake" / "mw"
    out = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out,
                             start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and first.poll() is None:
            if (exp / results.EPOCHS_DIR).is_dir() and len(results.read_epochs(exp)) >= 1:
                break
            time.sleep(0.3)
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert len(results.read_epochs(exp)) == 1, (tmp_path / "first.log").read_text()[-3000:]
        os.kill(first.pid, signal.SIGKILL)  # during epoch 2 (epoch 1 sleeps 8 s after its report)
        first.wait(timeout=60)
    finally:
        end_group(first.pid)  # the killed driver's local Ray goes too
        out.close()
    assert not (exp / results.TRIALS_DIR).is_dir() or not any((exp / "trials").iterdir())

    second = subprocess.run([*cmd, "--resume"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    text = second.stdout + second.stderr
    assert second.returncode == 0, text[-4000:]
    row = results.read_trials(exp).iloc[0]
    assert row["status"] == "COMPLETE" and row["epochs_run"] == 3, (row["error"], text[-3000:])
    assert row["workers"] == 2 and row["attempts"] == 2
    epochs = results.read_epochs(exp)
    assert sorted(epochs["epoch"]) == [1, 2, 3], epochs[["epoch"]]
    assert set(epochs["trial_id"]) == {row["trial_id"]}
    resumed_from = [a[2] for a in faults.read_attempts(log_dir)]
    assert resumed_from[0] == 0 and max(resumed_from) >= 1, resumed_from  # from epoch >= 1
