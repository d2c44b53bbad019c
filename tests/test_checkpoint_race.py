"""Issue 24, item 5: a trial's checkpoint is deleted only once Tune has registered its
successor. Tune takes a result's checkpoint first and registers it later (its asynchronous
save); a node that dies in between makes Tune restore the trial from the checkpoint it last
registered, which therefore must still exist. Stepped through with Tune's own ``Trial``
(``trial.checkpoint`` is what Tune restores from), see tests/tune_events.py."""

from __future__ import annotations

from pathlib import Path

from tune_events import Events, dataset

from search import results


def test_the_registered_checkpoint_survives_until_its_successor_is_registered(
    tmp_path: Path,
) -> None:
    ev = Events(tmp_path / "deepfake" / "race", dataset(tmp_path / "data"), trials=1)
    t = ev.trial("t0", 0, epochs=3)
    first = ev.result(t, 1, checkpoint=True, val_auc=0.6)
    ev.saved(t, first, 1)
    second = ev.result(t, 2, checkpoint=True, val_auc=0.7)
    ev.recorder.epochs.flush()
    # the node dies here: the result of epoch 2 arrived, its checkpoint is not registered yet
    assert t.checkpoint is not None and t.checkpoint.path == first
    assert Path(first, "state.pt").is_file(), "Tune's retry would restore a deleted folder"
    ev.saved(t, second, 2)  # registered now: the older one may go
    ev.recorder.epochs.flush()
    assert not Path(first).exists() and Path(second, "state.pt").is_file()
    rows = results.read_epochs(ev.exp)
    assert rows["checkpoint"].tolist() == [first, second]
    third = ev.result(t, 3, checkpoint=True, val_auc=0.8)
    ev.saved(t, third, 3)
    ev.complete(t)  # finished: every checkpoint of the trial goes (no --keep-checkpoints)
    ev.close()
    assert not any(Path(p).exists() for p in (first, second, third))
    assert results.read_trials(ev.exp).iloc[0]["status"] == "COMPLETE"
