"""Optuna bookkeeping without Ray: telling the truth, crash repair and the resume queue."""

from __future__ import annotations

import pickle
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from lssat.errors import ConfigError
from search import results
from search.optimize.study import (
    ATTR_TRIAL_ID,
    STUDY_FILE,
    StudyRef,
    check_storage_url,
    derive_seed,
    drop_torn_tail,
    reconcile,
)


def _row(exp: Path, number: int, trial_id: str, status: str, value: float | None) -> dict:
    return {
        "task": "deepfake",
        "experiment": exp.name,
        "trial_id": trial_id,
        "number": number,
        "status": status,
        "stop_reason": {"COMPLETE": "completed", "PRUNED": "early_stopped"}.get(status, "error"),
        "final_value": value,
        "best_value": value,
        "epochs_run": 1,
        "metric": "val_auc",
    }


@pytest.mark.parametrize("rdb", [False, True])
def test_tell_records_pruned_with_last_value_and_fail_with_error(tmp_path: Path, rdb: bool) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}" if rdb else None
    ref = StudyRef(str(tmp_path), "deepfake/t", "max", url=url)
    for _ in range(3):
        ref.study.ask().suggest_float("lr", 1e-4, 1e-2, log=True)
    ref.report(1, 1, 0.61)
    ref.report(1, 2, 0.58)
    ref.tell(0, "COMPLETE", 0.7, {"stop_reason": "completed"})
    ref.tell(1, "PRUNED", 0.58, {"stop_reason": "early_stopped"})
    ref.tell(2, "FAIL", None, {"error": "NonFiniteLossError: non-finite loss at step 3"})
    storage = url or optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / STUDY_FILE))
    )
    loaded = optuna.load_study(study_name="deepfake/t", storage=storage)
    assert (tmp_path / STUDY_FILE).exists() != rdb
    t = loaded.trials
    # a FAIL is told as an infeasible COMPLETE with the worst value, so TPE learns from it
    assert [x.state for x in t] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE]
    assert [x.constraints for x in t] == [{"failed": 0.0}, {"failed": 0.0}, {"failed": 1.0}]
    assert t[2].value == float("-inf") and loaded.best_trial.number == 0
    assert loaded.metric_names is None  # no metric given to this ref
    assert t[0].value == pytest.approx(0.7)
    assert t[1].value == pytest.approx(0.58)  # its last intermediate value
    assert t[1].intermediate_values == {1: pytest.approx(0.61), 2: pytest.approx(0.58)}
    assert t[2].user_attrs["error"].startswith("NonFiniteLossError")


def test_reconcile_repairs_requeues_and_keeps_finished(tmp_path: Path) -> None:
    ref = StudyRef(str(tmp_path), "deepfake/r", "max")
    study = ref.study
    trials = [study.ask() for _ in range(3)]
    for i, t in enumerate(trials):
        t.suggest_float("lr", 1e-4, 1e-2, log=True)
        t.set_user_attr(ATTR_TRIAL_ID, f"r{i}")
    study.enqueue_trial({"lr": 1e-3})
    # trial 0: finished in both; trial 1: row written, then the driver died before the tell
    results.write_trial(tmp_path, _row(tmp_path, 0, "r0", "COMPLETE", 0.7))
    ref.tell(0, "COMPLETE", 0.7, {})
    ident1 = {"task": "deepfake", "experiment": tmp_path.name, "trial_id": "r1", "number": 1}
    results.write_epochs(tmp_path, ident1, [{"epoch": 1, "val_auc": 0.6},
                                            {"epoch": 2, "val_auc": 0.55}])  # fmt: skip
    results.write_trial(tmp_path, _row(tmp_path, 1, "r1", "PRUNED", 0.55))
    # trial 2: running, two epochs written, only the first epoch's checkpoint survives
    ckpt = tmp_path / "ray" / "r2" / "checkpoint_000000"
    ckpt.mkdir(parents=True)
    ident = {"task": "deepfake", "experiment": tmp_path.name, "trial_id": "r2", "number": 2}
    results.write_epochs(
        tmp_path,
        ident,
        [
            {"epoch": 1, "val_auc": 0.5, "checkpoint": str(ckpt)},
            {"epoch": 2, "val_auc": 0.6, "checkpoint": str(tmp_path / "gone")},
        ],
    )

    fresh = StudyRef(str(tmp_path), "deepfake/r", "max", sampler_seed=derive_seed(0, 1))
    state = reconcile(fresh)
    assert state.finished == 2
    assert state.repaired == [1]
    assert state.waiting == 1
    assert len(state.pending) == 1
    p = state.pending[0]
    assert (p.number, p.trial_id, p.checkpoint, p.checkpoint_epoch) == (2, "r2", str(ckpt), 1)
    assert p.params == {"lr": trials[2].params["lr"]}
    after = fresh.study.trials
    assert after[1].state == TrialState.PRUNED and after[1].value == pytest.approx(0.55)
    assert after[1].intermediate_values == {1: pytest.approx(0.6), 2: pytest.approx(0.55)}
    assert after[2].state == TrialState.RUNNING
    # a Parquet row the study has never heard of means the storage was swapped: refuse
    results.write_trial(tmp_path, _row(tmp_path, 9, "stray", "COMPLETE", 0.1))
    with pytest.raises(ConfigError, match=r"rows \[9\] have no trial"):
        reconcile(fresh)


def test_resume_seed_is_fresh_and_refs_pickle(tmp_path: Path) -> None:
    seeds = {derive_seed(7, s) for s in range(4)}
    assert derive_seed(7, 0) == 7 and len(seeds) == 4
    ref = StudyRef(str(tmp_path), "deepfake/p", "min")
    ref.study.ask()
    clone = pickle.loads(pickle.dumps(ref))
    assert clone.study.trials[0].state == TrialState.RUNNING  # reopened from the journal


@pytest.mark.parametrize("url", ["redis://host", "study.db", "results/x.journal"])
def test_storage_must_be_a_database_url(url: str) -> None:
    with pytest.raises(ConfigError, match="--storage"):
        check_storage_url(url)
    check_storage_url("sqlite:///x.db")
    check_storage_url("postgresql+psycopg2://u@h/db")


def test_a_torn_journal_line_is_cut_before_appending(tmp_path: Path) -> None:
    ref = StudyRef(str(tmp_path), "deepfake/j", "max")
    ref.study.ask()
    journal = tmp_path / STUDY_FILE
    good = journal.read_bytes()
    journal.write_bytes(good + b'{"op_code": 5, "worker_id": "x", "trial_')  # killed mid-write
    assert drop_torn_tail(journal) == len(b'{"op_code": 5, "worker_id": "x", "trial_')
    assert journal.read_bytes() == good
    fresh = StudyRef(str(tmp_path), "deepfake/j", "max")
    fresh.study.ask()
    assert len(StudyRef(str(tmp_path), "deepfake/j", "max").study.trials) == 2


def test_disk_errors_are_told_apart_from_trial_errors() -> None:
    """A refused write (full, quota, read-only), itself, as a cause or only as text, stops the
    search; any other error is the trial's own."""
    import errno

    from search.execution.recorder import disk_error

    full = OSError(errno.ENOSPC, "No space left on device")
    assert disk_error(full) == "No space left on device"
    try:
        try:
            raise OSError(errno.EROFS, "Read-only file system")
        except OSError as inner:
            raise RuntimeError("checkpoint upload failed") from inner
    except RuntimeError as wrapped:
        assert disk_error(wrapped) == "Read-only file system"
    pyarrow_text = "OSError: [Errno 28] Error writing bytes. Detail: No space left on device"
    assert disk_error(None, pyarrow_text) == "No space left on device"
    assert disk_error(None, "OSError: [Errno 122] Disk quota exceeded") == "Disk quota exceeded"
    assert disk_error(OSError(errno.ENOENT, "No such file or directory")) is None
    assert disk_error(ValueError("loss is NaN"), "ValueError: loss is NaN") is None
