"""Issue 22, item 1: ``balance: backbone`` gives every level the same number of trials,
round-robin, while TPE searches the other parameters; the balance survives a resume (a fresh
sampler on the same study) and parallel asks (trials still running)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
import yaml

from lssat.errors import ConfigError
from search.optimize.space import load_space, parse_space
from search.optimize.study import StudyRef

SPACES = Path(__file__).resolve().parents[1] / "spaces"
LEVELS = ["test_resnet", "test_convnext", "test_vit"]
RAW = {
    "task": "deepfake",
    "trials": 12,
    "balance": "backbone",
    "sampler": {"n_startup_trials": 3},
    "fixed": {"epochs": 2, "img_size": 32, "patch_size": 8},
    "params": {
        "backbone": {"choices": LEVELS},
        "lr": {"low": 1.0e-3, "high": 4.0e-3, "log": True},
        "aux_weight": {"choices": [0.0, 0.5]},
        "descriptor": {"choices": ["lbp", "ldp"], "when": {"aux_weight": {"gt": 0}}},
    },
    "enqueue": [{"backbone": "test_resnet", "lr": 2.0e-3, "aux_weight": 0.0}],
}


def _ref(tmp: Path, space, seed: int) -> StudyRef:
    return StudyRef(str(tmp), "deepfake/b", space.mode, sampler_seed=seed,
                    sampler_opts=space.sampler_kwargs(), metric=space.metric,
                    balance=space.balance_levels())  # fmt: skip


def _ask(ref: StudyRef, space, n: int, running: int = 0) -> list:
    """Ask ``n`` trials; tell all but the last ``running`` (a value TPE can learn from:
    test_vit is best), and return the asked trials."""
    study = ref.study
    for e in space.enqueue:
        if not any(t.system_attrs.get("fixed_params") == e for t in study.trials):
            study.enqueue_trial(e)
    asked = []
    for _ in range(n):
        trial = study.ask()
        params = space.suggest(trial)
        asked.append((trial, params))
    for trial, params in asked[: n - running]:
        study.tell(trial, 0.9 if params["backbone"] == "test_vit" else 0.6 + 0.1 * params["lr"])
    return asked


def test_levels_take_turns_and_end_equal_across_a_resume(tmp_path: Path) -> None:
    space = parse_space(RAW, "b.yaml", "deepfake")
    assert space.balance_levels() == ("backbone", tuple(LEVELS))
    first = _ask(_ref(tmp_path, space, 0), space, 5, running=2)  # 2 still running at the crash
    seen = [p["backbone"] for _, p in first]
    assert seen == [*LEVELS, *LEVELS[:2]]  # the enqueued test_resnet first, then turns
    second = _ref(tmp_path, space, 1)  # a resumed session: a fresh sampler on the same study
    _ask(second, space, 7)
    trials = second.study.trials
    assert len(trials) == 12
    counts = Counter(t.params["backbone"] for t in trials)
    assert counts == {level: 4 for level in LEVELS}, counts
    # TPE still searches the rest: lr varies within a level
    lrs = {t.params["lr"] for t in trials if t.params["backbone"] == "test_vit"}
    assert len(lrs) == 4 and all(math.isfinite(x) for x in lrs)


def test_without_balance_counts_drift(tmp_path: Path) -> None:
    """What the key fixes: TPE alone does not keep the levels' counts equal."""
    raw = {k: v for k, v in RAW.items() if k != "balance"} | {"trials": 24}
    space = parse_space(raw, "b.yaml", "deepfake")
    assert space.balance_levels() is None
    ref = _ref(tmp_path, space, 0)
    _ask(ref, space, 24)
    counts = Counter(t.params["backbone"] for t in ref.study.trials)
    assert max(counts.values()) - min(counts.values()) >= 2, counts


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"balance": "size"}, "names 'size', which is not a parameter"),
        ({"balance": "lr"}, "names 'lr', a range"),
        ({"balance": "descriptor"}, "sampled only under a 'when'"),
        ({"balance": ["backbone"]}, "name one categorical parameter"),
        ({"sampler": {"name": "grid"}}, "cannot be combined with sampler grid"),
    ],
)
def test_bad_balance_is_one_sentence(change: dict, match: str) -> None:
    raw = {**RAW, **change}
    with pytest.raises(ConfigError, match=match):
        parse_space(raw, "b.yaml", "deepfake")


def test_shipped_spaces_balance_the_backbone_with_equal_budgets() -> None:
    for path in sorted(SPACES.glob("*.yaml")):
        task = yaml.safe_load(path.read_text())["task"]
        space = load_space(path, task)
        param, levels = space.balance_levels()
        assert param == "backbone", path
        assert space.trials % len(levels) == 0, (path, space.trials, len(levels))
        again = parse_space(space.to_dict(), str(path), task)  # the saved space keeps the key
        assert again.balance == "backbone"
