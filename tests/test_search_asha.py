"""ASHA's rung records survive ``--resume`` (issue 13): rebuilt from the epoch Parquet.

Ray's real ``ASHAScheduler`` is fed the same epoch results twice: once as an uninterrupted
search would (trial after trial, epoch by epoch), once as a resumed search sees them (a fresh
scheduler, the finished trials' Parquet rows, and an interrupted trial that runs again from its
epoch-4 checkpoint under a new Ray trial id). The rung records must be equal, and the resumed
trial must be judged next at the first rung above 4 (9), not again at rung 3 with its epoch-5
value.
"""

from __future__ import annotations

from pathlib import Path

from ray.tune.schedulers import ASHAScheduler

from search import results
from search.execution.asha import restore_rungs, resumed_hook, rung_records

METRIC, MODE = "val_auc", "max"
# trial_id -> its val_auc per epoch (finished: complete or pruned; "t4" was interrupted)
CURVES = {
    "t0": [0.50, 0.55, 0.60, 0.62, 0.63, 0.64, 0.65, 0.66, 0.67],
    "t1": [0.52, 0.53, 0.51],
    "t2": [0.58, 0.61, 0.64, 0.66, 0.68, 0.69, 0.70, 0.71, 0.72],
    "t3": [0.40],
    "t4": [0.55, 0.57, 0.59, 0.61, 0.62, 0.63],
}
CHECKPOINT_EPOCH = 4  # t4's last checkpoint when the driver died


class _Trial:
    def __init__(self, trial_id: str):
        self.trial_id = trial_id


def _scheduler() -> ASHAScheduler:
    s = ASHAScheduler(
        time_attr="epoch", max_t=9, grace_period=1, reduction_factor=3, metric=METRIC, mode=MODE
    )
    return s


def _feed(s: ASHAScheduler, trial_id: str, values: list[float], start: int = 1) -> list[str]:
    actions = []
    for epoch, value in enumerate(values, start=start):
        actions.append(s.on_trial_result(None, _Trial(trial_id), {"epoch": epoch, METRIC: value}))
    return actions


def _write(exp: Path) -> None:
    for n, (tid, curve) in enumerate(CURVES.items()):
        ident = {"task": "deepfake", "experiment": "x", "trial_id": tid, "number": n}
        keep = curve if tid != "t4" else curve[:CHECKPOINT_EPOCH]
        rows = [{"epoch": e, METRIC: v} for e, v in enumerate(keep, start=1)]
        results.write_epochs(exp, ident, rows)
        if tid != "t4":
            status = "COMPLETE" if len(curve) == 9 else "PRUNED"
            results.write_trial(exp, {**ident, "status": status})


def test_rungs_after_resume_equal_an_uninterrupted_run(tmp_path: Path) -> None:
    # uninterrupted: every trial reports, t4 up to its checkpoint epoch before the crash
    plain = _scheduler()
    for tid, curve in CURVES.items():
        plain.on_trial_add(None, _Trial(tid))
        _feed(plain, tid, curve if tid != "t4" else curve[:CHECKPOINT_EPOCH])
        if tid != "t4":  # a trial that ends (complete or stopped) reports its last result
            last = {"epoch": len(curve), METRIC: curve[-1]}
            plain.on_trial_complete(None, _Trial(tid), last)
    expected = rung_records(plain)
    assert expected[1] and expected[3] and expected[9]  # every rung holds values

    _write(tmp_path)
    resumed = _scheduler()
    assert all(not rec for rec in rung_records(resumed).values())  # what resume started with
    assert restore_rungs(resumed, tmp_path, METRIC, MODE) == 4
    resumed.on_trial_add(None, _Trial("ray-new-id"))
    resumed_hook(resumed, tmp_path, METRIC, MODE)("ray-new-id", "t4", CHECKPOINT_EPOCH)
    got = {m: {("t4" if k == "ray-new-id" else k): v for k, v in rec.items()}
           for m, rec in rung_records(resumed).items()}  # fmt: skip
    assert got == expected

    # t4 runs on from epoch 5: rung 3 keeps its epoch-3 value; it is next judged at rung 9
    _feed(resumed, "ray-new-id", [0.90], start=CHECKPOINT_EPOCH + 1)
    assert rung_records(resumed)[3]["ray-new-id"] == CURVES["t4"][2]
    assert "ray-new-id" not in rung_records(resumed)[9]


def test_min_mode_records_negated_values(tmp_path: Path) -> None:
    ident = {"task": "deepfake", "experiment": "x", "trial_id": "a", "number": 0}
    results.write_epochs(tmp_path, ident, [{"epoch": 1, "val_loss": 0.7}])
    results.write_trial(tmp_path, {**ident, "status": "PRUNED"})
    s = ASHAScheduler(time_attr="epoch", max_t=9, grace_period=1, reduction_factor=3)
    assert restore_rungs(s, tmp_path, "val_loss", "min") == 1
    assert rung_records(s)[1] == {"a": -0.7}
