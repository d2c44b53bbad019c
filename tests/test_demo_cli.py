"""`python -m search.demo`: its spaces guarantee ranked trials per backbone; bad input (#15)."""

from __future__ import annotations

from collections import Counter

import pytest

from search import demo
from search.optimize.space import load_space


@pytest.mark.parametrize("t", demo.DEMO_TASKS, ids=lambda t: t.key)
def test_demo_spaces_rank_two_trials_of_every_backbone(t: demo.DemoTask) -> None:
    """Every backbone of the space gets >= 2 enqueued trials, and no trial can be stopped
    early (grace period = epochs), so each task has >= 2 ranked trials per backbone."""
    space = load_space(demo.SPACES / t.space, t.task)
    backbones = {p.name: p for p in space.params}["backbone"].choices
    per = Counter(params["backbone"] for params in space.enqueue)
    assert len(backbones) >= 3 and all(per[b] >= 2 for b in backbones), per
    assert space.scheduler["grace_period"] >= space.epochs
    assert space.trials >= max(8, len(space.enqueue))  # importance needs 8 COMPLETE trials
    assert all(b.startswith("test_") for b in backbones) and space.fixed["img_size"] <= 48


def test_demo_tasks_cover_two_kinds_and_two_deepfake_sets() -> None:
    from lssat.data.demo import DEMOS, demo_task

    assert {t.demo for t in demo.DEMO_TASKS} == set(DEMOS)
    assert all(demo_task(t.demo) == t.task for t in demo.DEMO_TASKS)
    kinds = Counter(t.task for t in demo.DEMO_TASKS)
    assert kinds["deepfake"] == 2 and len(kinds) >= 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tasks", "sbi,nope"], "--tasks names 'nope'; choose from sbi, swap, faces, digits"),
        (["--tasks", ","], "--tasks names 'nothing'"),
        (["--trials", "0"], "--trials is 0; it must be at least 1"),
        (["--final-seeds", "-1"], "--final-seeds is -1; it must be at least 0"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert demo.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
