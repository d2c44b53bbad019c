"""Search spaces: shipped files validate, conditionals hold, bad files name file, key and reason."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from lssat.errors import ConfigError
from search.optimize.space import load_space, parse_space

SPACES = Path(__file__).resolve().parents[1] / "spaces"
TASK_BACKBONES = {
    "vit_tiny_patch16_224", "deit_tiny_patch16_224", "resnet18", "convnext_atto",
    "mobilenetv3_small_100", "efficientnet_b0",
}  # fmt: skip
DEMO_BACKBONES = {"vit_tiny_patch16_224", "resnet18"}
DESC_PARAMS = {"lbp": {"desc_P", "desc_R", "desc_method"}, "ltp": {"desc_t"}, "ldp": {"desc_k"},
               "hog": {"desc_cell", "desc_bins"}}  # fmt: skip
AUX_PARAMS = {"mask_ratio", "mask_input", "reconstruct", "decoder_dim", "decoder_depth",
              "descriptor", "encoding"} | set().union(*DESC_PARAMS.values())  # fmt: skip


def _backbones(path: Path) -> set[str]:
    space = load_space(path)
    by = {p.name: p for p in space.params}
    return set(by["backbone"].choices) if "backbone" in by else {space.fixed.get("backbone")}


@pytest.mark.parametrize("task", ["deepfake", "attributes", "emotion", "classify"])
def test_task_spaces_load_with_the_default_backbones(task: str) -> None:
    space = load_space(SPACES / f"{task}.yaml", task)
    from lssat.tasks import TASKS

    assert space.metric == TASKS[task].metric and space.mode == TASKS[task].mode
    assert _backbones(SPACES / f"{task}.yaml") == TASK_BACKBONES


def test_every_trial_config_carries_the_epoch_horizon(tmp_path: Path) -> None:
    """A space that leaves ``epochs`` at the default still gives each trial its epoch count, so
    a trial ASHA stops early is never mistaken for a complete one."""
    from lssat.config import TrialConfig

    path = tmp_path / "no_epochs.yaml"
    path.write_text("task: deepfake\nparams:\n  lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n")
    space = load_space(path, "deepfake")
    assert "epochs" not in space.fixed
    assert space.config({"lr": 1e-3})["epochs"] == space.epochs == TrialConfig.epochs


def test_demo_and_large_spaces() -> None:
    demo = load_space(SPACES / "demo.yaml", "deepfake")
    assert _backbones(SPACES / "demo.yaml") <= DEMO_BACKBONES
    assert demo.epochs <= 5 and demo.trials <= 12
    by = {p.name: p for p in demo.params}
    assert set(by["img_size"].choices) <= {32, 64} and set(by["patch_size"].choices) <= {8, 16}
    large = load_space(SPACES / "deepfake_large.yaml", "deepfake")
    assert {p.name: p for p in large.params}["backbone"].choices


def test_conditional_parameters_are_sampled_only_when_they_apply() -> None:
    space = load_space(SPACES / "deepfake.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_desc: set[str] = set()
    baseline = aux = 0
    for _ in range(120):
        trial = study.ask()
        params = space.suggest(trial)
        study.tell(trial, 0.5)
        if params["aux_weight"] == 0:
            baseline += 1
            assert not AUX_PARAMS & set(params), params
            continue
        aux += 1
        desc = params.get("descriptor")
        if desc is None:  # mask rgb, reconstruct rgb: plain MAE, no descriptor
            assert params["mask_input"] == "rgb" and params["reconstruct"] == "rgb"
        else:
            seen_desc.add(desc)
        for name, fields in DESC_PARAMS.items():
            assert (fields & set(params)) == (fields if desc == name else set()), params
    assert baseline and aux and seen_desc == {"lbp", "mslbp", "ltp", "ldp", "ldn", "hog"}


def test_resolved_space_round_trips(tmp_path: Path) -> None:
    space = load_space(SPACES / "deepfake.yaml")
    space.dump(tmp_path / "space.yaml")
    again = load_space(tmp_path / "space.yaml")
    assert again.to_dict() == space.to_dict()


BASE = {
    "task": "deepfake",
    "fixed": {"epochs": 2, "img_size": 32},
    "params": {
        "lr": {"low": 1e-4, "high": 1e-2, "log": True},
        "aux_weight": {"choices": [0.0, 0.5]},
        "descriptor": {"choices": ["lbp", "hog"], "when": {"aux_weight": {"gt": 0}}},
        "encoding": {"choices": ["map", "hist"], "when": {"aux_weight": {"gt": 0}}},
    },
}


def _variant(change) -> dict:
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    change(raw)
    return raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(parms={}), "unknown key 'parms' (did you mean 'params'?)"),
        (lambda r: r["fixed"].update(img_sise=32), "key 'fixed': unknown key 'img_sise'"),
        (
            lambda r: r["params"]["lr"].update(high=20.0),
            "key 'params.lr' value 20.0 is invalid: config field 'lr' is 20.0",
        ),
        (lambda r: r["params"]["lr"].update(low=0.0), "log scale needs low > 0"),
        (lambda r: r["params"]["lr"].update(low=0.1), "low 0.1 must be below high 0.01"),
        (
            lambda r: r["params"]["aux_weight"].update(choices=[0.0, 2.0]),
            "key 'params.aux_weight' value 2.0 is invalid",
        ),
        (
            lambda r: r["params"]["descriptor"].update(when={"aux_wieght": {"gt": 0}}),
            "refers to 'aux_wieght'",
        ),
        (
            lambda r: r["params"]["descriptor"].update(when={"aux_weight": {"over": 0}}),
            "must be one comparison",
        ),
        (
            lambda r: r["params"]["encoding"].update(choices=["map", "bits"]),
            "the parameter combination",
        ),
        (lambda r: r["params"].update(epochs={"choices": [1, 2]}), "cannot be searched"),
        (lambda r: r["params"].update(img_size={"choices": [32]}), "is also in 'fixed'"),
        (lambda r: r["params"]["lr"].update(choices=[0.1]), "has both 'choices' and"),
        (lambda r: r.update(metric="auc"), "key 'metric' is 'auc'"),
        (lambda r: r.update(enqueue=[{"lr": 50.0}]), "key 'enqueue[0]' is invalid"),
        (lambda r: r.update(enqueue=[{"descriptor": "ltp"}]), "key 'enqueue[0].descriptor'"),
        (lambda r: r.update(enqueue=[{"momentum": 5.0}]), "unknown key 'momentum'"),
    ],
)
def test_bad_spaces_name_file_key_and_reason(change, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_space(_variant(change), "spaces/x.yaml", "deepfake")
    text = str(info.value)
    assert text.startswith("spaces/x.yaml")
    assert message in text
    assert "\n" not in text


def test_numbers_written_as_yaml_strings_are_read_as_numbers() -> None:
    raw = _variant(lambda r: r["params"]["lr"].update(low="1e-4", high="1e-2"))
    space = parse_space(raw, "x.yaml")
    assert {p.name: p for p in space.params}["lr"].low == pytest.approx(1e-4)
