"""TPE off the critical path: the searcher asks Optuna ahead of Tune in a background thread,
never more trials than the session's budget, in the same order and with the same draws as
asking on demand, and it counts the suggestions that had to wait for an ask."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from search.optimize.searcher import CONFIG_KEY, META_KEY, OptunaAskSearcher
from search.optimize.space import parse_space
from search.optimize.study import StudyRef

SPACE = {
    "task": "deepfake",
    "fixed": {"epochs": 2, "img_size": 32, "patch_size": 8},
    "sampler": {"name": "random"},
    "params": {
        "lr": {"low": 1e-4, "high": 3e-3, "log": True},
        "backbone": {"choices": ["test_resnet", "test_vit"]},
    },
}


def _searcher(tmp_path: Path, ahead: int, new: int, first_wave: int = 0) -> OptunaAskSearcher:
    space = parse_space(dict(SPACE), "s.yaml")
    ref = StudyRef(str(tmp_path), "deepfake/a", "max", sampler_seed=7,
                   sampler_opts=space.sampler_kwargs())  # fmt: skip
    ref.study.enqueue_trial({"lr": 1e-3, "backbone": "test_vit"})
    return OptunaAskSearcher(space, ref, seed=0, meta={}, tb_root=str(tmp_path / "tb"),
                             ask_ahead=ahead, new_trials=new, first_wave=first_wave)  # fmt: skip


@pytest.mark.parametrize("ahead", [1, 3])
def test_asking_ahead_gives_the_same_trials_in_the_same_order(tmp_path: Path, ahead: int) -> None:
    plain = _searcher(tmp_path / "plain", 0, 5)
    early = _searcher(tmp_path / "early", ahead, 5)
    got = [early.suggest(f"r{i}") for i in range(5)]
    want = [plain.suggest(f"r{i}") for i in range(5)]
    assert [g[META_KEY]["number"] for g in got] == [0, 1, 2, 3, 4]
    assert [g[META_KEY]["params"] for g in got] == [w[META_KEY]["params"] for w in want]
    assert got[0][CONFIG_KEY]["backbone"] == "test_vit"  # the enqueued trial comes first
    early.close()
    assert len(early.ref.study.trials) == 5  # never asked past the session's budget
    assert len(early.ask_seconds) == 5 and 0 <= early.waited <= 5
    trial = early.ref.study.trials[2]
    assert trial.user_attrs["trial_id"] == "r2"


def test_the_searcher_pickles_without_its_thread(tmp_path: Path) -> None:
    s = _searcher(tmp_path, 2, 3)
    s.suggest("r0")
    again = pickle.loads(pickle.dumps(s))
    assert again.asked == {"r0": 0} and again._thread is None
    s.close()



def test_the_first_wave_is_asked_before_tune_asks_and_nobody_waits(tmp_path: Path) -> None:
    """``start()`` asks one trial per slot up front (here 4, then 1 ahead): the first wave's
    suggestions find their trials ready, with the draws asking on demand gives."""
    import time

    wave = _searcher(tmp_path / "wave", 1, 6, first_wave=4)
    wave.start()
    deadline = time.monotonic() + 30
    while len(wave._ready) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(wave._ready) == 4 and len(wave.ref.study.trials) == 4  # the wave, no more yet
    got = [wave.suggest(f"r{i}") for i in range(4)]
    assert wave.waited == 0
    plain = _searcher(tmp_path / "plain", 0, 6)
    want = [plain.suggest(f"r{i}") for i in range(4)]
    assert [g[META_KEY]["params"] for g in got] == [w[META_KEY]["params"] for w in want]
    wave.close()
    assert len(wave.ref.study.trials) == 5  # after the wave: 1 ahead, within the budget of 6
