"""Issue 12a, fast checks: fixed evaluation sets of whole videos, fingerprints, intervals over
videos, kept weights, and the one-sentence refusals of search.run / search.final."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from lssat.config import TrialConfig
from lssat.data import load_trial_data, open_dataset
from lssat.data import testing as T
from lssat.data.pipeline import prepare
from lssat.data.selection import rows_fingerprint
from lssat.data.sources.affectnet import AffectNetSource
from lssat.errors import ConfigError
from lssat.tasks import get_task


def cfg(**changes) -> TrialConfig:
    values = {"task": "deepfake", "img_size": 32, "patch_size": 8, "seed": 0, **changes}
    return TrialConfig.from_dict(values)


# --------------------------------------------------------------- fixed validation sets
def test_val_items_identical_for_configs_differing_only_in_seed(demo_data: Path) -> None:
    runs = [load_trial_data(demo_data, cfg(val_subset=6, seed=s)) for s in (0, 1, 17, 12345)]
    first = runs[0]
    for other in runs[1:]:
        assert np.array_equal(first.val.indices, other.val.indices)
        assert other.extra["val_set"] == first.extra["val_set"]
        for i in (0, 7, len(first.val) - 1):
            a, b = first.val[i], other.val[i]
            assert all(torch.equal(a[k], b[k]) for k in a)


def test_val_subset_is_whole_videos(demo_data: Path) -> None:
    data = open_dataset(demo_data)
    td = load_trial_data(data, cfg(val_subset=7))
    vids = np.unique(data.video[td.val.indices])
    assert len(vids) == 7
    val_rows = data.indices("val")
    for v in vids:  # every frame of a chosen video is in the set
        assert set(val_rows[data.video[val_rows] == v]) <= set(td.val.indices)


def test_fingerprint_ignores_path_and_img_size_but_not_rows(demo_data: Path, tmp_path) -> None:
    copy = tmp_path / "elsewhere"
    shutil.copytree(demo_data, copy)
    a = load_trial_data(demo_data, cfg(val_subset=6))
    b = load_trial_data(copy, cfg(val_subset=6, img_size=64, patch_size=16))
    c = load_trial_data(demo_data, cfg(val_subset=5))
    assert a.extra["val_set"] == b.extra["val_set"] and len(a.extra["val_set"]) == 64
    assert a.extra["dataset_hash"] == b.extra["dataset_hash"]
    assert a.extra["dataset"] == "sbi" and a.extra["val_is_test"] is False
    assert c.extra["val_set"] != a.extra["val_set"]
    assert a.extra["val_set"] == rows_fingerprint(open_dataset(copy), a.val.indices)


class _Frames(Dataset):
    """Items with ``video`` ids only (a stand-in for any Dataset run_trial gets)."""

    def __init__(self, videos: list[int]):
        self.v = videos

    def __len__(self) -> int:
        return len(self.v)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"video": torch.tensor(self.v[i])}


def test_engine_subset_counts_videos_and_rows_without_videos() -> None:
    from lssat.train import _subset

    videos = [i // 4 for i in range(40)]  # 10 videos of 4 frames
    sub = _subset(_Frames(videos), 3, "val")
    got = sorted(videos[i] for i in sub.indices)  # type: ignore[attr-defined]
    assert len(set(got)) == 3 and len(got) == 12
    assert sub.indices == _subset(_Frames(videos), 3, "val").indices  # type: ignore[attr-defined]
    plain = _subset(_Frames([-1] * 10), 4, "val")  # no video ids: rows are the units
    assert len(plain) == 4  # type: ignore[arg-type]


def test_subset_fields_cannot_be_searched(tmp_path) -> None:
    from search.optimize.space import load_space

    space = tmp_path / "s.yaml"
    space.write_text("task: deepfake\nparams:\n  val_subset: {choices: [4, 8]}\n")
    with pytest.raises(ConfigError, match="'params.val_subset' cannot be searched: every trial"):
        load_space(space)
    space.write_text("task: deepfake\nfixed: {val_subset: 4}\nfinal: {top_k: 2, seeds: 3}\n")
    assert load_space(space).final == {"top_k": 2, "seeds": 3}


# ------------------------------------------------------------------ val is the test split
@pytest.fixture(scope="module")
def affectnet_no_val(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("aff")
    root = T.make_affectnet(tmp / "raw", broken=False)  # no val carved: val is the test split
    prepare(AffectNetSource(root, size=24, val_fraction=0.0), tmp / "out", progress=False)
    return tmp / "out"


def test_search_refuses_to_select_on_the_test_split(affectnet_no_val: Path, tmp_path, capsys):
    from search.run import main

    assert open_dataset(affectnet_no_val).meta["val_split"] == "test"
    argv = ["--task", "emotion", "--data", str(affectnet_no_val), "--results", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "validates on its test split" in err
    assert "--allow-test-selection" in err and not any(tmp_path.iterdir())
    td = load_trial_data(affectnet_no_val, cfg(task="emotion", img_size=16))
    assert td.extra["val_is_test"] is True


def test_allow_test_selection_and_final_wiring(affectnet_no_val: Path, tmp_path) -> None:
    from search.driver.plan import Request, check_protocol, final_wanted
    from search.optimize.space import SearchSpace

    check_protocol(affectnet_no_val, True, False)  # allowed: the rows say val_is_test
    meta = json.loads((affectnet_no_val / "meta.json").read_text())
    meta["val_split"], meta["val_is_test"], meta["counts"]["test"]["rows"] = "val", False, 0
    (tmp_path / "meta.json").write_text(json.dumps(meta))  # a dataset without test rows
    with pytest.raises(ConfigError, match="has no test rows, so the final stage"):
        check_protocol(tmp_path, False, True)
    check_protocol(tmp_path, False, False)
    space = SearchSpace("s", "deepfake", "val_auc", "max", final={"top_k": 2, "seeds": 4})
    none = Request(task="deepfake", final_top_k=None, final_seeds=None)
    assert final_wanted(none, space)[:2] == (2, 4)  # (top_k, seeds); per: no --final-per
    assert final_wanted(Request(task="deepfake", final_top_k=1, final_seeds=None),
                        space)[:2] == (1, 4)  # fmt: skip
    assert final_wanted(none, SearchSpace("s", "deepfake", "val_auc", "max")) is None


# -------------------------------------------------------------- intervals over videos
def _scored(frames_per_video: int) -> dict[str, float]:
    from search.execution.heldout import score

    rng = np.random.default_rng(0)
    n_vid = 30
    labels = np.repeat(np.arange(n_vid) % 2, frames_per_video)
    video_logit = rng.normal(size=n_vid) + (np.arange(n_vid) % 2)
    logits = np.repeat(video_logit, frames_per_video)[:, None]
    out = {"logits": logits, "labels": labels, "loss": 0.5, "groups": None,
           "video": np.repeat(np.arange(n_vid), frames_per_video)}  # fmt: skip
    return score(get_task("deepfake"), out, {"classes": ["real", "fake"]}, "test_",
                 n_resamples=300)  # fmt: skip


def test_bootstrap_resamples_videos_not_frames() -> None:
    one, eight = _scored(1), _scored(8)
    assert eight["test_units"] == 30 and eight["test_rows"] == 240
    assert eight["test_auc"] == pytest.approx(one["test_auc"])
    # identical frames of a video add no information: the interval must not narrow
    for key in ("test_auc", "test_video_auc"):
        assert eight[f"{key}_ci_low"] == pytest.approx(one[f"{key}_ci_low"])
        assert eight[f"{key}_ci_high"] == pytest.approx(one[f"{key}_ci_high"])
        assert eight[f"{key}_ci_low"] <= eight[key] <= eight[f"{key}_ci_high"]
    assert eight["test_auc_ci_high"] - eight["test_auc_ci_low"] > 0.1


def test_weights_round_trip(tmp_path) -> None:
    from lssat.model import build
    from search.execution.heldout import load_weights, save_weights

    config = cfg(backbone="resnet18", aux_weight=0.0)
    model = build(config, 1).eval()
    path = save_weights(tmp_path / "w.safetensors", model, config,
                        {"classes": ["real", "fake"], "seed": 3})  # fmt: skip
    back, config2, info = load_weights(path)
    x = {"image": torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8)}
    with torch.no_grad():
        assert torch.equal(model(x)["logits"], back(x)["logits"])
    assert config2.to_dict() == config.to_dict() and info["seed"] == 3


# --------------------------------------------------------------- search.final bad input
def _experiment(tmp_path: Path, demo_data: Path, statuses: list[str]) -> Path:
    from search import results

    exp = tmp_path / "results" / "deepfake" / "x"
    exp.mkdir(parents=True)
    (exp / "space.yaml").write_text("task: deepfake\nfixed: {epochs: 1, img_size: 32}\n")
    settings = {"task": "deepfake", "name": "x", "data": str(demo_data), "seed": 0,
                "trials": len(statuses), "metric": "val_auc", "mode": "max"}  # fmt: skip
    (exp / "search.json").write_text(json.dumps(settings))
    for i, status in enumerate(statuses):
        results.write_trial(exp, {"task": "deepfake", "experiment": "x", "trial_id": f"t{i}",
                                  "number": i, "status": status, "final_value": 0.5,
                                  "params": "{}"})  # fmt: skip
    return exp


@pytest.mark.parametrize(
    ("statuses", "extra", "needle"),
    [
        (["FAIL", "PRUNED"], [], "has no COMPLETE trial to retrain"),
        (["COMPLETE"], ["--top-k", "0"], "--top-k is 0; it must be at least 1"),
        (["COMPLETE"], ["--eval-data", "test=DEMO"], "name 'test' clashes with a split"),
        (["COMPLETE"], ["--eval-data", "cfg=DEMO"], "name 'cfg' clashes with a split"),
        (["COMPLETE"], ["--eval-data", "aff=AFF"], "holds task 'emotion', but the model"),
        (["COMPLETE"], ["--eval-data", "nodir"], "write it as NAME=PREPARED_DIR"),
    ],
)
def test_final_bad_input_is_one_sentence_and_writes_nothing(
    statuses, extra, needle, demo_data, affectnet_no_val, tmp_path, capsys
) -> None:
    from search.final import main

    exp = _experiment(tmp_path, demo_data, statuses)
    before = sorted(p.relative_to(exp) for p in exp.rglob("*"))
    extra = [e.replace("DEMO", str(demo_data)).replace("AFF", str(affectnet_no_val))
             for e in extra]  # fmt: skip
    assert main([str(exp), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err, err
    assert sorted(p.relative_to(exp) for p in exp.rglob("*")) == before


# ------------------------------------------------------------------------------ analysis
def test_analysis_ranks_the_largest_fingerprint_group_and_says_no_final(demo_data, tmp_path):
    from analysis.data import load_results
    from analysis.heldout import headline
    from search import results

    exp = _experiment(tmp_path, demo_data, ["COMPLETE"] * 4)
    for i, fp in enumerate(["aaa", "aaa", "aaa", "bbb"]):  # trial 3 saw other val rows
        row = results.read_trials(exp / "trials" / f"t{i}.parquet").iloc[0].to_dict()
        results.write_trial(exp, {**row, "val_set": fp, "metric": "val_auc", "mode": "max",
                                  "best_value": 0.5 + i / 10})  # fmt: skip
    res = load_results(exp)
    assert sorted(res.ranked["number"]) == [0, 1, 2]
    notes = [n for n in res.notes if "scored on another validation set" in n]
    assert len(notes) == 1 and "1 trial(s)" in notes[0] and "#3" in notes[0], res.notes
    lines, table = headline(res)
    assert table.empty and len(lines) == 1 and "no final stage ran" in lines[0]
