"""Tuned ASHA defaults (issue 16, item 4): ``scheduler.grace_fraction`` is validated like every
space key, sets the grace period from the epoch budget in the real search and in the replay
alike, and no shipped space lets ASHA stop a trial before a third of its epochs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from ray.tune.schedulers import ASHAScheduler

from lssat.errors import ConfigError
from search import replay
from search.execution.asha import GRACE_FRACTION, REDUCTION_FACTOR, make_scheduler
from search.optimize.space import load_space, parse_space
from search.replay import cli as replay_cli

ROOT = Path(__file__).resolve().parents[1]
NO_FLAGS: dict[str, int | None] = {"grace_period": None, "reduction_factor": None}


def _space(epochs: int, scheduler: object = None) -> dict:
    raw: dict = {
        "task": "deepfake",
        "fixed": {"epochs": epochs, "img_size": 32, "patch_size": 8},
        "params": {"lr": {"low": 1e-4, "high": 3e-3, "log": True}},
    }
    if scheduler is not None:
        raw["scheduler"] = scheduler
    return raw


def _rungs(sched: ASHAScheduler) -> list[int]:
    """Ray's own rung milestones (epochs where ASHA may stop a trial), smallest first."""
    return sorted(m for m, _ in sched._brackets[0]._rungs)


@pytest.mark.parametrize(
    "scheduler, expected",
    [
        ({"grace_fraction": 0}, "key 'scheduler'.grace_fraction is 0; it must be a fraction in"),
        ({"grace_fraction": 1.5}, "grace_fraction is 1.5; it must be a fraction in (0, 1]"),
        ({"grace_fraction": True}, "grace_fraction is True; it must be a fraction"),
        ({"grace_fraction": "1/3"}, "grace_fraction is '1/3'; it must be a fraction"),
        ({"grace_fraction": float("nan")}, "grace_fraction is nan; it must be a fraction"),
        (
            {"grace_fraction": 0.33, "grace_period": 2},
            "key 'scheduler' sets both grace_period and grace_fraction; keep one",
        ),
        ({"name": "none", "grace_fraction": 0.5}, "grace_fraction only applies to asha"),
        ({"grace_fracton": 0.5}, "grace_fracton"),
    ],
)
def test_bad_grace_fraction_names_the_key(scheduler: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_space(_space(6, scheduler), "s.yaml")
    assert expected in str(err.value) and str(err.value).startswith("s.yaml: ")


@pytest.mark.parametrize(
    "epochs, fraction, grace", [(4, 0.33, 2), (6, 0.33, 2), (12, 0.33, 4), (3, 0.33, 1),
                                (20, 0.33, 7), (6, 1.0, 6), (6, 0.01, 1)]
)  # fmt: skip
def test_grace_fraction_sets_rays_grace_from_the_epochs(
    epochs: int, fraction: float, grace: int
) -> None:
    space = parse_space(_space(epochs, {"grace_fraction": fraction}), "s.yaml")
    sched = make_scheduler(space, **NO_FLAGS)
    assert isinstance(sched, ASHAScheduler) and _rungs(sched)[0] == grace
    # the flag still wins, in epochs
    flags = {"grace_period": 3, "reduction_factor": None}
    assert _rungs(make_scheduler(space, **flags))[0] == min(3, epochs)
    assert space.to_dict()["scheduler"] == {"grace_fraction": fraction}  # round-trips


def test_defaults_without_settings_are_the_tuned_ones() -> None:
    """No scheduler settings: grace ceil(0.33 x epochs), reduction factor 2 (was 1 and 3)."""
    assert (GRACE_FRACTION, REDUCTION_FACTOR) == (0.33, 2)
    sched = make_scheduler(parse_space(_space(12), "s.yaml"), **NO_FLAGS)
    assert _rungs(sched) == [4, 8] and sched._reduction_factor == 2


def _req(argv: list[str]) -> replay_cli.ReplayRequest:
    return replay_cli.request_from_args(replay_cli.build_parser().parse_args(argv))


def test_replay_uses_the_same_rule_and_flags(tmp_path: Path) -> None:
    """The replay's ASHA comes from search.run's rule: a recorded grid (scheduler: none) gets
    the defaults; --space's grace_fraction is used; --grace-period replaces it."""
    lrs = [1e-4, 3e-4, 1e-3]
    grid = {
        "task": "deepfake",
        "sampler": {"name": "grid"},
        "scheduler": "none",
        "fixed": {"epochs": 12, "img_size": 32, "patch_size": 8},
        "params": {"lr": {"low": 1e-4, "high": 3e-3, "log": True, "grid": lrs}},
    }
    curves = [({"lr": lr}, [0.1 * i] * 12, [1.0] * 12) for i, lr in enumerate(lrs)]
    exp = replay.write_table(tmp_path / "exp", grid, curves)
    table = replay.load_table(exp)
    args = _req([str(exp)])
    assert replay_cli.asha_settings(table, replay_cli.settings_for(exp, args)) == {
        "grace_period": 4,
        "reduction_factor": 2,
    }
    space = tmp_path / "space.yaml"
    space.write_text(
        "task: deepfake\nscheduler: {grace_fraction: 0.5, reduction_factor: 3}\n"
        "fixed: {epochs: 2}\nparams: {lr: {low: 1.0e-4, high: 3.0e-3}}\n"
    )
    args = _req([str(exp), "--space", str(space)])
    assert replay_cli.asha_settings(table, replay_cli.settings_for(exp, args)) == {
        "grace_period": 6,  # 0.5 x the table's 12 epochs, not the space file's 2
        "reduction_factor": 3,
    }
    flags = [str(exp), "--space", str(space), "--grace-period", "1"]
    args = _req(flags)
    settings = replay_cli.settings_for(exp, args)
    assert "grace_fraction" not in settings.scheduler
    assert replay_cli.asha_settings(table, settings)["grace_period"] == 1


def test_shipped_spaces_stop_no_trial_before_a_third_of_its_epochs() -> None:
    """The tuned rule in every shipped space: ASHA's first rung at >= ceil(0.33 x epochs)
    (grace 1 stopped digits' eventual best after its first epoch, docs/search.md)."""
    spaces = sorted((ROOT / "spaces").glob("*.yaml"))
    assert len(spaces) >= 9
    for path in spaces:
        space = load_space(path)
        if not space.early_stopping:
            continue
        first = _rungs(make_scheduler(space, **NO_FLAGS)) or [space.epochs]
        assert first[0] >= math.ceil(GRACE_FRACTION * space.epochs - 1e-9), path.name


def test_tune_script_writes_one_row_per_setting_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """bench/tune_replay.py: one CSV row per searcher x setting; a second run adds none."""
    import importlib.util

    import pandas as pd

    spec = importlib.util.spec_from_file_location("tune_replay", ROOT / "bench/tune_replay.py")
    assert spec and spec.loader
    tune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tune)
    lrs = [1e-4, 2e-4, 3e-4, 5e-4, 1e-3, 2e-3]
    grid = {
        "task": "deepfake",
        "sampler": {"name": "grid"},
        "scheduler": "none",
        "fixed": {"epochs": 3, "img_size": 32, "patch_size": 8},
        "params": {"lr": {"low": 1e-4, "high": 3e-3, "log": True, "grid": lrs}},
    }
    curves = [({"lr": lr}, [0.1 * i] * 3, [1.0] * 3) for i, lr in enumerate(lrs)]
    exp = replay.write_table(tmp_path / "exp", grid, curves)
    out = tmp_path / "tune.csv"
    argv = [str(exp), "--n-startup-trials", "2", "--grace-period", "1",
            "--grace-fraction", "0.5", "--reduction-factor", "2", "--seeds", "2",
            "--out", str(out)]  # fmt: skip
    assert tune.run_cli(tune.build_parser(), tune.run, argv) == 0
    rows = pd.read_csv(out)
    # random; random_asha x 2 graces; tpe; tpe_asha x 2 graces
    assert sorted(rows["searcher"]) == sorted(
        ["random", "random_asha", "random_asha", "tpe", "tpe_asha", "tpe_asha"]
    )
    assert set(rows["grace_fraction"]) == {0.0, 0.5}
    assert "tune exp: best tpe_asha" in capsys.readouterr().out.strip().splitlines()[-1]
    assert tune.run_cli(tune.build_parser(), tune.run, argv) == 0
    assert len(pd.read_csv(out)) == 6  # resumed: nothing measured twice
