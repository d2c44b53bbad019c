"""Recording mode (issue 16): grid/random samplers and ``scheduler: none``, validated like every
other space key; the shipped curve grid trains each configuration exactly once."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from lssat.errors import ConfigError
from search.optimize.space import load_space, parse_space
from search.optimize.study import make_sampler

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "bench" / "curves" / "grid.yaml"

BASE = {
    "task": "deepfake",
    "sampler": {"name": "grid"},
    "scheduler": "none",
    "fixed": {"epochs": 2, "img_size": 32, "patch_size": 8},
    "params": {
        "backbone": {"choices": ["vit_tiny_patch16_224", "resnet18"]},
        "aux_weight": {"choices": [0.5, 0.75]},
        "descriptor": {"choices": ["lbp", "hog"], "when": {"aux_weight": {"gt": 0}}},
        "lr": {"low": 1e-4, "high": 3e-3, "log": True, "grid": [3e-4, 1e-3]},
    },
}


def _space(**changes: object) -> dict:
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def _ask_all(space, n: int, seed: int = 0) -> list[dict]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=make_sampler(seed, **space.sampler_kwargs()))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(space.suggest(trial))
        study.tell(trial, 0.5)  # GridSampler's own after_trial would raise study.stop() here
    return out


def test_grid_space_trains_every_point_once() -> None:
    space = parse_space(_space(), "grid.yaml")
    assert space.sampler_name == "grid" and not space.early_stopping
    assert space.trials == 16  # 2 x 2 x 2 x 2, from the grid when 'trials' is absent
    drawn = _ask_all(space, 16)
    assert len({repr(sorted(p.items())) for p in drawn}) == 16
    assert {p["lr"] for p in drawn} == {3e-4, 1e-3}
    # the resolved space (experiment folder's space.yaml) reads back identically
    again = parse_space(yaml.safe_load(yaml.safe_dump(space.to_dict())), "space.yaml")
    assert again.to_dict() == space.to_dict()


def test_shipped_curve_grid_is_about_50_distinct_configs() -> None:
    space = load_space(GRID, "deepfake")
    assert 40 <= space.trials <= 60 and len(space.grid_points()) == space.trials
    assert not space.early_stopping and space.sampler_name == "grid"


def test_random_sampler_and_default_tpe() -> None:
    space = parse_space(_space(sampler={"name": "random"}, params={
        "lr": {"low": 1e-4, "high": 3e-3, "log": True}}), "r.yaml")  # fmt: skip
    assert isinstance(make_sampler(0, **space.sampler_kwargs()), optuna.samplers.RandomSampler)
    tpe = parse_space(_space(sampler={"n_startup_trials": 3}, params={
        "lr": {"low": 1e-4, "high": 3e-3}}, scheduler=None), "t.yaml")  # fmt: skip
    assert tpe.sampler_name == "tpe" and tpe.early_stopping
    assert isinstance(make_sampler(0, **tpe.sampler_kwargs()), optuna.samplers.TPESampler)


def test_scheduler_none_means_no_early_stopping() -> None:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from search.execution.asha import make_scheduler

    recording = parse_space(_space(), "g.yaml")
    assert type(make_scheduler(recording)) is FIFOScheduler
    asha = parse_space(_space(scheduler={"grace_period": 1}), "a.yaml")
    assert isinstance(make_scheduler(asha), ASHAScheduler)


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"sampler": {"name": "bayes"}}, "key 'sampler'.name is 'bayes'; allowed: tpe, grid"),
        ({"sampler": {"name": "grid", "n_startup_trials": 5}}, "only applies to tpe, not 'grid'"),
        ({"scheduler": "off"}, "key 'scheduler'.name is 'off'; allowed: asha, none"),
        ({"scheduler": {"name": "none", "grace_period": 2}}, "only applies to asha, not 'none'"),
        ({"scheduler": ["none"]}, "key 'scheduler' must be a mapping"),
        ({"trials": 17}, "key 'trials' is 17, but the grid has only 16 points"),
        (
            {"enqueue": [{"backbone": "resnet18"}]},
            "key 'enqueue' cannot be combined with sampler grid",
        ),
        (
            {"params": {"lr": {"low": 1e-4, "high": 3e-3}}},
            "key 'params.lr' is a range; sampler grid needs its values as 'grid: [...]'",
        ),
        (
            {"params": {"lr": {"low": 1e-4, "high": 3e-3, "grid": [1e-2]}}},
            "key 'params.lr'.grid holds 0.01, outside low",
        ),
        (
            {"params": {"lr": {"choices": [1e-3], "grid": [1e-3]}}},
            "has both 'choices' and 'grid'",
        ),
        (
            {"sampler": {"name": "random"}},
            "key 'params.lr.grid' is only used by sampler grid, but the sampler is 'random'",
        ),
        (
            {
                "params": {
                    "aux_weight": {"choices": [0.0, 0.5]},
                    "descriptor": {"choices": ["lbp", "hog"], "when": {"aux_weight": {"gt": 0}}},
                }
            },
            "key 'params.descriptor' is conditional, so the grid's 4 points hold only 3",
        ),  # fmt: skip
    ],
)
def test_bad_recording_keys_name_the_key(changes: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_space(_space(**changes), "bad.yaml")
    msg = str(err.value)
    assert expected in msg and msg.startswith("bad.yaml") and "\n" not in msg
