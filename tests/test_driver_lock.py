"""Issue 24, item 8: one driver per experiment folder. A second ``search.run`` (new or
``--resume``) or ``search.final`` on a folder a live driver holds stops in one sentence naming
it (host, pid, since when) and changes nothing; a killed driver's lock is taken over without a
flag (an OS lock: the kernel releases it when the process dies)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOLD = """\
import sys, time
from search.results.lock import hold_experiment
with hold_experiment(sys.argv[1], "search.run"):
    print("held", flush=True)
    time.sleep(120)
"""
SPACE = """\
task: deepfake
trials: 1
fixed: {epochs: 1, img_size: 32, batch_size: 16, train_subset: 32, val_subset: 32,
        backbone: resnet18, patch_size: 8, aux_weight: 0.0, warmup_epochs: 0.0}
params:
  lr: {low: 3.0e-4, high: 3.0e-3, log: true}
"""


def _holder(exp: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(exp)], env=env,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_driver_stops_and_a_dead_ones_lock_is_taken_over(
    tmp_path: Path, demo_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from search.final import main as final_main
    from search.results.lock import LOCK_FILE, hold_experiment
    from search.run import main as run_main

    (tmp_path / "space.yaml").write_text(SPACE)
    exp = tmp_path / "r" / "deepfake" / "x"
    holder = _holder(exp)
    try:
        argv = ["--task", "deepfake", "--space", str(tmp_path / "space.yaml"), "--data",
                str(demo_data), "--results", str(tmp_path / "r"), "--name", "x",
                "--no-dashboard"]  # fmt: skip
        for command, args in (
            (run_main, argv),
            (run_main, [*argv, "--resume"]),
            (final_main, [str(exp), "--no-dashboard"]),
        ):
            assert command(args) == 2, args
            err = capsys.readouterr().err
            assert err.count("\n") == 1, err
            for part in ("in use by search.run", f"host {socket.gethostname()}",
                         f"pid {holder.pid}", "running since"):  # fmt: skip
                assert part in err, (part, err)
        assert sorted(p.name for p in exp.iterdir()) == [LOCK_FILE]  # nothing written
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with hold_experiment(exp, "search.run"):  # the killed driver's lock: taken over
        with hold_experiment(exp, "search.final"):  # the same process may enter again
            pass
    assert f"pid {holder.pid}" in capsys.readouterr().err  # the takeover is noted


def test_a_folder_the_lock_made_goes_again_when_nothing_was_written(tmp_path: Path) -> None:
    from search.results.lock import LOCK_FILE, hold_experiment

    with hold_experiment(tmp_path / "r" / "deepfake" / "x", "search.run"):
        assert (tmp_path / "r" / "deepfake" / "x" / LOCK_FILE).is_file()
    assert list(tmp_path.iterdir()) == []  # e.g. a search stopped by an impossible request
    with hold_experiment(tmp_path / "r" / "deepfake" / "y", "search.run"):
        (tmp_path / "r" / "deepfake" / "y" / "search.json").write_text("{}")
    assert (tmp_path / "r" / "deepfake" / "y" / "search.json").is_file()
