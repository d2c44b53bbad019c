"""Issue 16, scale: bench/scale.py's busy/overhead accounting and the background epoch writer."""

from __future__ import annotations

import errno
import importlib.util
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from search import results
from search.results.epochs import EpochWriter

ROOT = Path(__file__).resolve().parents[1]


def _scale():
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "scale.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _epochs(trials: list[tuple[str, str, float, list[tuple[float, float]]]]) -> pd.DataFrame:
    """Epoch rows of hand-made trials: (trial_id, gpu, start, [(sleep, report time)...])."""
    rows = []
    for tid, gpu, start, epochs in trials:
        for e, (sleep, report) in enumerate(epochs, start=1):
            rows.append({"trial_id": tid, "epoch": e, "node_id": "n1", "gpu_ids": gpu,
                         "replay_start": start, "replay_sleep_s": sleep,
                         "replay_report": report})  # fmt: skip
    return pd.DataFrame(rows)


def test_measure_counts_training_time_and_the_waits_per_slot() -> None:
    scale = _scale()
    # t0 = 0; 2 GPUs. GPU 0: a [1, 11] (2 epochs of 5 s), then b starts 12, waits 1 s after
    # its first report (epoch 2 reported at 23 = 12 + 5 + 1 + 5), so b's overhead is
    # (23 - 10) - 11 = 2 s. GPU 1: c [1, 21] (1 epoch of 20 s), then d starts 21.5, 4 s: 0.5 s.
    ep = _epochs(
        [
            ("a", "0", 1.0, [(5.0, 6.0), (5.0, 11.0)]),
            ("c", "1", 1.0, [(20.0, 21.0)]),
            ("b", "0", 12.0, [(5.0, 17.0), (5.0, 23.0)]),
            ("d", "1", 21.5, [(4.0, 25.5)]),
        ]
    )
    m = scale.measure_spans(scale.trial_spans(ep), gpus=2, t0=0.0)
    assert m["trials_run"] == 4
    assert m["makespan_s"] == pytest.approx(25.5)
    # busy GPU-seconds = the epochs' own time: 10 + 20 + 10 + 4 = 44 over 2 x 25.5
    assert m["busy"] == pytest.approx(44 / 51)
    assert m["overhead_s"] == pytest.approx((2.0 + 0.5) / 2)
    assert m["mean_trial_s"] == pytest.approx(44 / 4)
    assert m["overhead_share"] == pytest.approx(1.25 / 11)
    # steady window: the first wave's last start (1) -> the last start (21.5)
    assert m["steady_window_s"] == pytest.approx(20.5)
    assert m["tail_s"] == pytest.approx(25.5 - 21.5)
    covered = 10 + 20 + 10 / 11 * 9.5  # a, c whole; b's busy share of its 9.5 s in the window
    assert m["busy_steady"] == pytest.approx(covered / (2 * 20.5))


def test_despike_replaces_a_paused_recording_epoch() -> None:
    scale = _scale()

    class C:
        def __init__(self, times: list[float]):
            self.times = times

    class T:
        configs = {"x": C([2.0, 2.2, 300.0, 1.8]), "y": C([2.0, 9.0, 2.0])}

    t = T()
    assert scale.despike(t) == 1
    assert t.configs["x"].times == [2.0, 2.2, 2.1, 1.8]
    assert t.configs["y"].times == [2.0, 9.0, 2.0]  # 4.5x its median: kept


def _ident(tid: str) -> dict:
    return {"task": "deepfake", "experiment": "w", "trial_id": tid, "number": 0}


def test_epoch_writer_flush_waits_for_the_newest_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = results.write_epochs
    gate = threading.Event()

    def slow(exp_dir, ident, rows, *rest):  # the first write waits until the test lets it go
        gate.wait(5)
        return real(exp_dir, ident, rows, *rest)

    monkeypatch.setattr(results, "write_epochs", slow)
    w = EpochWriter(tmp_path)
    rows = [{"epoch": 1, "val_auc": 0.6}]
    w.submit(_ident("t1"), rows)
    w.submit(_ident("t1"), rows + [{"epoch": 2, "val_auc": 0.7}])  # supersedes or follows
    threading.Timer(0.3, gate.set).start()
    t = time.monotonic()
    w.flush("t1")
    assert time.monotonic() - t > 0.2  # it waited for the write
    got = results.read_epochs(tmp_path / "epochs" / "t1.parquet")
    assert list(got["epoch"]) == [1, 2] and list(got["val_auc"]) == [0.6, 0.7]
    w.close()
    assert w.written <= w.submitted == 2
    import pickle

    copy = pickle.loads(pickle.dumps(w))  # Tune pickles the Recorder that holds it
    assert copy.exp_dir == tmp_path and copy.submitted == 0


def test_epoch_writer_raises_a_failed_write_on_the_next_call(tmp_path: Path) -> None:
    (tmp_path / "epochs").write_text("a file where the epochs folder should be")
    w = EpochWriter(tmp_path)
    w.submit(_ident("t1"), [{"epoch": 1, "val_auc": 0.5}])
    with pytest.raises(OSError) as err:
        w.flush()
    assert err.value.errno in (errno.EEXIST, errno.ENOTDIR)
    with pytest.raises(OSError):
        w.submit(_ident("t2"), [])
    with pytest.raises(OSError):
        w.close()
    assert w.written == 0


@pytest.mark.parametrize("storage", ["journal", "sqlite"])
def test_tell_writes_the_curve_attrs_and_verdict_and_they_read_back(
    tmp_path: Path, storage: str
) -> None:
    """One append for the journal (one line per operation, one fsync), the public API one by
    one for an RDB; a fresh process reads the same trial either way."""
    import optuna

    from search.optimize.study import STUDY_FILE, StudyRef

    url = f"sqlite:///{tmp_path}/s.db" if storage == "sqlite" else None
    ref = StudyRef(str(tmp_path), "deepfake/x", "max", url=url)
    trial = ref.study.ask()
    trial.suggest_categorical("lr", [0.1, 0.01])
    journal = tmp_path / STUDY_FILE
    lines = journal.read_text().count("\n") if journal.is_file() else 0
    steps = [(1, 0.5), (2, float("nan")), (3, 0.7)]
    ref.tell(trial.number, "COMPLETE", 0.7, {"status": "COMPLETE", "epochs_run": 3}, steps=steps)
    if storage == "journal":  # 2 values + 2 attrs in one append, constraint, verdict
        assert journal.read_text().count("\n") - lines == 6
    ref.tell(trial.number, "FAIL", None, {"status": "FAIL"}, steps=[(4, 0.1)])  # finished: kept
    again = StudyRef(str(tmp_path), "deepfake/x", "max", url=url)
    got = again.study.trials[0]
    assert got.state == optuna.trial.TrialState.COMPLETE and got.value == 0.7
    assert got.intermediate_values == {1: 0.5, 3: 0.7}
    assert got.user_attrs == {"status": "COMPLETE", "epochs_run": 3}
    assert got.constraints == {"failed": 0.0}


def test_epoch_writer_drops_superseded_checkpoints_after_the_rows(tmp_path: Path) -> None:
    """A trial keeps one checkpoint: the older folders go once rows naming the newest are
    written, never the newest (what a resume would restart from)."""
    c2, c4 = tmp_path / "checkpoint_2", tmp_path / "checkpoint_4"
    for c in (c2, c4):
        c.mkdir()
    rows = [{"epoch": 2, "val_auc": 0.6, "checkpoint": str(c2)},
            {"epoch": 4, "val_auc": 0.7, "checkpoint": str(c4)}]  # fmt: skip
    w = EpochWriter(tmp_path)
    w.submit(_ident("t1"), rows, drop=[str(c2), str(c4)])
    w.flush("t1")
    assert not c2.exists() and c4.is_dir()
    got = results.read_epochs(tmp_path / "epochs" / "t1.parquet")
    assert list(got["checkpoint"]) == [str(c2), str(c4)]  # the rows keep the paths
    w.close()
