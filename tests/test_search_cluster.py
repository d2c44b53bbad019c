"""The search on a cluster: multi-worker trials, placement, retries, faults.

Fast tests check the CLI wiring (``--workers-per-trial``, ``--max-failures``, the test-only
``LSSAT_TRIAL_FN`` hook). The slow ones share one simulated 3-node Ray cluster on this machine
(``ray.cluster_utils.Cluster``: a head with no CPUs for the driver, two workers with 1 CPU and
1 *logical* GPU each, so GPU placement is real while torch trains on the CPU) and run real
searches on the demo data:

- trials spread over both nodes and fractional-GPU trials pack two to a GPU;
- a ``--workers-per-trial 2`` trial trains under Ray Train and is cleaned up;
- a trial process SIGKILLed every epoch is retried from its checkpoint ``--max-failures`` times,
  then recorded FAIL with the reason;
- the search driver is SIGKILLed mid-search and ``--resume`` joins the same cluster: the budget
  completes exactly, study and Parquet agree;
- the results disk fills up mid-search (a real 512 MiB tmpfs; skipped where mounting is not
  allowed): one sentence, exit 2, finished rows untouched, no FAIL recorded, ``--resume``
  finishes once space is freed;
- the node running a trial is removed mid-trial: the trial resumes from its checkpoint on the
  other node and completes; no trial lost, no duplicate row (runs last: it removes a node).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from resume_checks import assert_resumed_exactly, rows, same_row, wait_one_done_one_running

from lssat.errors import ConfigError
from search import results
from search.execution.capacity import ClusterShape
from search.execution.resources import TrialResources, concurrency, trial_fn_meta
from search.execution.trainable import load_trial_fn, train_run_name
from search.run import main
from search.testing import faults

ROOT = Path(__file__).resolve().parents[1]
SPACE = """\
task: deepfake
trials: 4
scheduler: {grace_period: 3, reduction_factor: 2}
fixed: {epochs: 1, img_size: 32, batch_size: 16, train_subset: 4, val_subset: 4,
        backbone: resnet18, patch_size: 8, aux_weight: 0.0, warmup_epochs: 0.0,
        checkpoint_every: 1}
params:
  lr: {low: 3.0e-4, high: 3.0e-3, log: true}
"""


# ----------------------------------------------------------------------------- fast: wiring
def _args(**kw: object) -> TrialResources:
    """The trial's resources as the flags name them (--cpus-per-trial ...)."""
    names = {"cpus_per_trial": "cpus", "gpus_per_trial": "gpus", "workers_per_trial": "workers"}
    return TrialResources(**{names.get(k, k): v for k, v in kw.items()})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--workers-per-trial", "0"], "--workers-per-trial is 0; it must be at least 1"),
        (["--max-failures", "-2"], "--max-failures is -2; it must be at least -1"),
        (["--workers-per-trial", "2", "--gpus-per-trial", "0.5"], "need whole GPUs"),
    ],
)
def test_bad_cluster_flags_are_one_line_errors(
    flags: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--task", "deepfake", *flags]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_multi_worker_trials_hold_a_token_cpu_and_count_workers() -> None:
    assert _args(cpus_per_trial=2.0, gpus_per_trial=0.5).tune_resources() == {
        "cpu": 2.0,
        "gpu": 0.5,
    }
    assert _args(workers_per_trial=4, gpus_per_trial=1.0).tune_resources() == {"cpu": 0.01}
    # 8 CPUs / 4 GPUs: plain 1-GPU trials fit 4 at once, 2-worker trials 2, 4-worker trials 1
    node = ClusterShape([{"CPU": 8.0, "GPU": 4.0}], "live nodes")
    assert concurrency(node, _args(gpus_per_trial=1.0), local=False) == 4
    assert concurrency(node, _args(gpus_per_trial=1.0, workers_per_trial=2), local=False) == 2
    assert concurrency(node, _args(gpus_per_trial=0.5, workers_per_trial=1), local=False) == 8
    assert concurrency(node, _args(cpus_per_trial=3.0, workers_per_trial=2), local=False) == 1
    with pytest.raises(ConfigError, match=r"4 workers x \(1 CPU \+ 2 GPU\) \+ a 0.01-CPU"):
        concurrency(node, _args(gpus_per_trial=2.0, workers_per_trial=4), local=True)


def test_trial_fn_hook_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LSSAT_TRIAL_FN", raising=False)
    assert trial_fn_meta() == {}
    from lssat.train import run_trial

    assert load_trial_fn(None) is run_trial
    for key, value in faults.env("slow_epochs", log_dir="/x", seconds=1).items():
        monkeypatch.setenv(key, value)
    meta = trial_fn_meta()
    assert meta == {
        "trial_fn": "search.testing.faults:slow_epochs",
        "trial_fn_args": {"log_dir": "/x", "seconds": 1},
    }
    fn = load_trial_fn(meta["trial_fn"], meta["trial_fn_args"])
    assert fn.func is faults.slow_epochs and fn.keywords == {"log_dir": "/x", "seconds": 1}
    with pytest.raises(ConfigError, match="LSSAT_TRIAL_FN is 'search.testing.faults:nope'"):
        load_trial_fn("search.testing.faults:nope")
    monkeypatch.setenv("LSSAT_TRIAL_FN", "not a spec")
    with pytest.raises(ConfigError, match="must be module:function"):
        trial_fn_meta()
    monkeypatch.setenv("LSSAT_TRIAL_FN", "search.testing.faults:slow_epochs")
    monkeypatch.setenv("LSSAT_TRIAL_FN_ARGS", "[1]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        trial_fn_meta()


def test_placement_columns_are_documented() -> None:
    for name in ("node", "node_ip", "node_id", "gpu_ids", "workers"):
        assert name in results.TRIAL_COLUMNS
    assert train_run_name(7) == "trial_7"


# -------------------------------------------------------------------- slow: simulated cluster
@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """Head (0 CPUs: only the search driver) + 2 workers of 1 CPU and 1 logical GPU each."""
    from ray.cluster_utils import Cluster

    fast_death = {
        "health_check_initial_delay_ms": 0,
        "health_check_period_ms": 1000,
        "health_check_failure_threshold": 3,
    }
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, "_system_config": fast_death},
    )
    try:
        for _ in range(2):
            c.add_node(num_cpus=1, num_gpus=1)
        c.wait_for_nodes()
        yield c
    finally:
        c.shutdown()


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cluster-space") / "cluster.yaml"
    path.write_text(SPACE)
    return path


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _search(argv: list[str], extra_env: dict[str, str] | None = None) -> tuple[int, str]:
    """``python -m search.run ARGV`` in a subprocess (this process never joins Ray): exit code,
    stdout + stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "search.run", *argv],
        cwd=ROOT,
        env=_env(extra_env),
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _argv(cluster: object, space: Path, data: Path, results_dir: Path, extra: str) -> list[str]:
    """The search command line on the simulated cluster; ``extra``: more flags, space-separated."""
    head = ["--task", "deepfake", "--space", str(space), "--data", str(data)]
    return [*head, "--results", str(results_dir), "--address", cluster.address, *extra.split()]


def _overlap(a: pd.Series, b: pd.Series) -> bool:
    return a["started_at"] < b["ended_at"] and b["started_at"] < a["ended_at"]


@pytest.fixture(scope="module")
def pack_search(
    cluster: object, space: Path, demo_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """4 trials of 0.5 CPU + 0.5 GPU on the 2 worker nodes, all at once: experiment folder."""
    root = tmp_path_factory.mktemp("pack")
    flags = "--name pack --trials 4 --cpus-per-trial 0.5 --gpus-per-trial 0.5"
    code, out = _search(_argv(cluster, space, demo_data, root, flags))
    assert code == 0, out[-4000:]
    return root / "deepfake" / "pack"


@pytest.mark.slow
def test_trials_spread_over_nodes_and_pack_fractional_gpus(
    cluster: object, pack_search: Path
) -> None:
    trials = results.read_trials(pack_search)
    assert len(trials) == 4 and set(trials["status"]) == {"COMPLETE"}, trials[["status", "error"]]
    assert trials["gpus"].tolist() == [0.5] * 4
    nodes = {n.node_id for n in cluster.worker_nodes}
    assert set(trials["node_id"]) == nodes  # both worker nodes ran trials, the head none
    assert (trials["gpu_ids"] != "").all()  # each trial held a (logical) GPU
    # 2 nodes x 1 GPU, 4 trials of 0.5 GPU at once: each GPU held exactly two trials, together
    for _, pair in trials.groupby(["node_id", "gpu_ids"]):
        assert len(pair) == 2, trials[["node_id", "gpu_ids"]]
        assert _overlap(pair.iloc[0], pair.iloc[1]), pair[["started_at", "ended_at"]]


def _snapshot(exp: Path) -> dict[str, bytes]:
    return {str(p.relative_to(exp)): p.read_bytes() for p in sorted(exp.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_corrupt_parquet_from_an_earlier_crash_stops_resume_and_overwrites_nothing(
    cluster: object,
    pack_search: Path,
    space: Path,
    demo_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    exp = tmp_path / "deepfake" / "pack"
    shutil.copytree(pack_search, exp, ignore=shutil.ignore_patterns("ray"))
    victim = sorted((exp / results.TRIALS_DIR).glob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:100])  # a torn file, as a crashed copy leaves it
    before = _snapshot(exp)
    flags = "--name pack --resume --trials 6 --cpus-per-trial 0.5"
    # in this process: it must stop before joining Ray (the cluster address is never used)
    assert main(_argv(cluster, space, demo_data, tmp_path, flags)) == 2
    err = capsys.readouterr().err
    assert f"error: result file '{victim}' is corrupt" in err and err.count("\n") == 1
    assert _snapshot(exp) == before  # nothing written, nothing overwritten


def test_unwritable_results_folder_is_one_clear_error(
    tmp_path: Path, demo_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results folder should be\n")
    argv = ["--task", "deepfake", "--data", str(demo_data), "--results", str(blocker),
            "--no-pretrained"]  # no weights here: past the pre-flight to the folder  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is not writable" in err and str(blocker) in err and err.count("\n") == 1
    assert blocker.read_text().startswith("a file where")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_results_folder_is_one_clear_error(
    tmp_path: Path, demo_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        argv = ["--task", "deepfake", "--data", str(demo_data), "--results", str(ro)]
        assert main([*argv, "--no-pretrained"]) == 2
    finally:
        ro.chmod(0o755)
    assert "is not writable" in capsys.readouterr().err
    assert not any(ro.iterdir())


def test_corrupt_checkpoint_is_a_data_error_naming_the_file(
    tmp_path: Path, demo_data: Path
) -> None:
    from lssat.config import TrialConfig
    from lssat.errors import DataError
    from search.execution.trainable import _portable

    bad = tmp_path / "checkpoint_000001"
    bad.mkdir()
    (bad / "state.pt").write_bytes(b"not a torch file")
    small = {"img_size": 32, "patch_size": 8, "epochs": 1, "batch_size": 8, "train_subset": 2}
    cfg = TrialConfig(task="deepfake", backbone="resnet18", val_subset=2, device="cpu", **small)
    with pytest.raises(DataError, match="checkpoint file .*state.pt' cannot be read") as err:
        load_trial_fn(None)(cfg, str(demo_data), lambda *a, **k: None, checkpoint_dir=str(bad))
    assert _portable(err.value) is err.value  # reaches the driver as itself: FAIL, this text


@pytest.mark.slow
def test_two_worker_trial_trains_under_ray_train(
    cluster: object, space: Path, demo_data: Path, tmp_path: Path
) -> None:
    flags = "--name ddp --trials 1 --cpus-per-trial 0.5 --workers-per-trial 2"
    code, out = _search(_argv(cluster, space, demo_data, tmp_path, flags))
    assert code == 0, out[-4000:]
    exp = tmp_path / "deepfake" / "ddp"
    row = results.read_trials(exp).iloc[0]
    assert row["status"] == "COMPLETE", row["error"]
    assert row["workers"] == 2 and row["final_world_size"] == 2
    assert row["node_id"] in {n.node_id for n in cluster.worker_nodes}
    assert len(results.read_epochs(exp)) == 1
    assert not (exp / "ray" / "train" / "trial_0").exists()  # checkpoints removed


@pytest.mark.slow
def test_sigkilled_trial_is_retried_from_checkpoint_then_fails(
    cluster: object, space: Path, demo_data: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    log.mkdir()
    env = faults.env("kill_after_epoch", log_dir=str(log), epoch=1)
    flags = "--name kill --trials 1 --epochs 3 --max-failures 1 --cpus-per-trial 0.5"
    code, out = _search(_argv(cluster, space, demo_data, tmp_path, flags), env)
    assert code == 1, out[-4000:]  # every trial failed
    exp = tmp_path / "deepfake" / "kill"
    trials = results.read_trials(exp)
    assert len(trials) == 1
    row = trials.iloc[0]
    assert row["status"] == "FAIL" and row["stop_reason"] == "error"
    assert "died" in row["error"].lower() or "actor" in row["error"].lower(), row["error"]
    # 1 run + 1 retry (--max-failures 1); the retry started from epoch 1's checkpoint
    attempts = faults.read_attempts(log)
    assert [a[2] for a in attempts] == [0, 1]
    assert row["epochs_run"] == 2
    assert sorted(results.read_epochs(exp)["epoch"]) == [1, 2]


def _start(argv: list[str], out: Path, extra_env: dict[str, str] | None = None):
    """``python -m search.run ARGV`` in the background, stdout and stderr to ``out``.*."""
    return subprocess.Popen(
        [sys.executable, "-m", "search.run", *argv],
        cwd=ROOT,
        env=_env(extra_env),
        stdout=(out.parent / f"{out.name}.out").open("w"),
        stderr=(out.parent / f"{out.name}.err").open("w"),
    )


def _log(out: Path) -> Callable[[], str]:
    return lambda: "".join((out.parent / f"{out.name}.{k}").read_text() for k in ("out", "err"))


@pytest.mark.slow
def test_driver_sigkill_then_resume_on_the_cluster(
    cluster: object, space: Path, demo_data: Path, tmp_path: Path
) -> None:
    exp = tmp_path / "deepfake" / "driver"
    flags = "--name driver --trials 3 --epochs 3 --max-concurrent 2 --cpus-per-trial 1"
    argv = _argv(cluster, space, demo_data, tmp_path, flags)
    first = _start(argv, tmp_path / "first")
    try:
        wait_one_done_one_running(first, exp, _log(tmp_path / "first"), timeout=300)
        first.send_signal(signal.SIGKILL)  # the driver only; the cluster stays up
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    before = rows(exp)
    assert 1 <= len(before) < 3
    code, out = _search([*argv, "--resume"])  # joins the same cluster
    assert code == 0, out[-4000:]
    assert "resuming:" in out
    assert_resumed_exactly(exp, before, "deepfake/driver", budget=3)
    workers = {n.node_id for n in cluster.worker_nodes}
    assert set(results.read_trials(exp)["node_id"]) <= workers


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 512 MiB tmpfs mounted at ``tmp_path/disk`` (needs root or CAP_SYS_ADMIN)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mount.stderr.strip()})")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> Path:
    """Write zeros to ``disk/filler`` until the disk is full (ENOSPC)."""
    filler = disk / "filler"
    block = b"\0" * (1 << 20)
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(block)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


@pytest.mark.slow
def test_full_disk_mid_search_is_one_sentence_and_resume_finishes(
    cluster: object, space: Path, demo_data: Path, small_disk: Path, tmp_path: Path
) -> None:
    exp = small_disk / "deepfake" / "full"
    flags = "--name full --trials 3 --epochs 3 --max-concurrent 1 --cpus-per-trial 1"
    argv = _argv(cluster, space, demo_data, small_disk, flags)
    log = tmp_path / "full"
    slow = faults.env("slow_epochs", log_dir=str(tmp_path), seconds=2)
    proc = _start(argv, log, slow)  # a trial takes >= 6 s: the disk fills mid-trial
    try:
        wait_one_done_one_running(proc, exp, _log(log), timeout=300)
        before = rows(exp)
        filler = _fill(small_disk)
        code = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = (tmp_path / "full.out").read_text()
    err = (tmp_path / "full.err").read_text()
    assert code == 2, out[-3000:] + err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: the search stopped:"), err[-3000:]
    assert "No space left on device" in last and "--resume" in last and str(exp) in last
    stopped = rows(exp)
    for number, row in before.items():
        assert same_row(row, stopped[number])  # nothing finished was lost or rewritten
    assert {r["status"] for r in stopped.values()} == {"COMPLETE"}  # the disk is no trial's fault

    filler.unlink()
    code, text = _search([*argv, "--resume"])
    assert code == 0, text[-4000:]
    assert_resumed_exactly(exp, stopped, "deepfake/full", budget=3)


@pytest.mark.slow
def test_removed_node_trial_resumes_on_another_node(
    cluster: object, space: Path, demo_data: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    log.mkdir()
    exp = tmp_path / "deepfake" / "node"
    argv = _argv(
        cluster,
        space,
        demo_data,
        tmp_path,
        "--name node --trials 1 --epochs 3 --max-failures 1 --cpus-per-trial 1",
    )
    env = _env(faults.env("slow_epochs", log_dir=str(log), seconds=6))
    proc = subprocess.Popen(
        [sys.executable, "-m", "search.run", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            epochs = exp / results.EPOCHS_DIR
            if epochs.is_dir() and len(results.read_epochs(exp)) >= 1:
                first = faults.read_attempts(log)[0][1]
                break
            time.sleep(0.5)
        assert first is not None, "the trial never reported its first epoch"
        victim = next(n for n in cluster.worker_nodes if n.node_id == first)
        cluster.remove_node(victim, allow_graceful=False)  # during the 6 s after epoch 1
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-4000:]
    trials = results.read_trials(exp)
    assert len(trials) == 1  # no trial lost, none duplicated
    row = trials.iloc[0]
    assert row["status"] == "COMPLETE" and row["epochs_run"] == 3, row["error"]
    attempts = faults.read_attempts(log)
    assert len(attempts) == 2 and attempts[0][1] == first
    assert attempts[1][1] != first and attempts[1][2] >= 1  # other node, from its checkpoint
    assert row["node_id"] == attempts[1][1]
    epochs = results.read_epochs(exp)
    assert sorted(epochs["epoch"]) == [1, 2, 3]  # one row per epoch, none duplicated
