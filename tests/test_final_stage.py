"""Issue 12a, end to end (real Ray, Optuna, timm on the demo data): every search trial is
scored on the same whole-video validation rows and never reads a test row; the final stage
retrains the best configuration with new seeds, scores it once on test and an extra set with
bootstrap intervals, keeps its weights, and ``search.evaluate`` reproduces its numbers.

One search (3 trials) and one final stage (1 configuration x 2 seeds) run once per module,
in this process on one Ray (the commands' main()), with ``search.testing.read_guard``
recording the rows every trial reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lssat.data import open_dataset
from lssat.data.selection import rows_fingerprint
from search import results

pytestmark = pytest.mark.slow
VAL_VIDEOS = 4
RESAMPLES = 100  # bootstrap resamples of every interval (the final stage, evaluate, report)
SPACE = f"""\
task: deepfake
trials: 3
scheduler: {{grace_period: 1, reduction_factor: 4}}
sampler: {{n_startup_trials: 3}}
fixed: {{epochs: 1, img_size: 32, patch_size: 8, train_subset: 6, val_subset: {VAL_VIDEOS},
        batch_size: 16, warmup_epochs: 0.5, decoder_dim: 32, decoder_depth: 1}}
params:
  backbone: {{choices: [test_vit, test_resnet]}}  # timm's tiny test backbones
  lr: {{low: 3.0e-4, high: 3.0e-3, log: true}}
  aux_weight: {{choices: [0.0, 0.5]}}
"""


def _cli(in_process, main, args: list[str], log: Path) -> str:
    code, out = in_process(main, args)
    log.write_text(out)
    assert code == 0, out[-4000:]
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory, demo_data, module_ray, in_process):
    """(experiment folder, read logs, CLI outputs) of one search and its final stage: the
    commands' main() in this process, on the module's one Ray (its trials and runs are Ray
    workers, where the read guard records)."""
    from search.final import main as final
    from search.run import main as search_run

    root = tmp_path_factory.mktemp("final-stage")
    (root / "space.yaml").write_text(SPACE)
    logs = root / "reads"
    logs.mkdir()
    exp = root / "results" / "deepfake" / "t"
    with pytest.MonkeyPatch.context() as mp:  # read by the driver, passed to every trial
        mp.setenv("LSSAT_TRIAL_FN", "search.testing.read_guard:recording_trial")
        mp.setenv("LSSAT_TRIAL_FN_ARGS", json.dumps({"log_dir": str(logs)}))
        search = _cli(in_process, search_run, [
            "--task", "deepfake", "--space", str(root / "space.yaml"), "--data",
            str(demo_data), "--results", str(root / "results"), "--name", "t",
            "--max-concurrent", "2", "--no-dashboard"], root / "search.log")  # fmt: skip
        final_out = _cli(in_process, final, [
            str(exp), "--top-k", "1", "--seeds", "2", "--n-resamples", str(RESAMPLES),
            "--eval-data", f"demo2={demo_data}", "--no-dashboard"], root / "final.log")  # fmt: skip
        again = _cli(in_process, final, [str(exp), "--resume"], root / "again.log")
    reads = [json.loads(p.read_text()) for p in sorted(logs.glob("*.json"))]
    return exp, reads, {"search": search, "final": final_out, "again": again}


@pytest.fixture(scope="module")
def per(run, tmp_path_factory, in_process):
    """The confirmation stage added to the same experiment: --per backbone, 2 seeds."""
    from search.final import main as final

    exp = run[0]
    root = tmp_path_factory.mktemp("per")
    out = _cli(in_process, final, [str(exp), "--per", "backbone", "--seeds", "2", "--resume",
                                   "--n-resamples", str(RESAMPLES), "--no-dashboard"],
               root / "per.log")  # fmt: skip
    return exp, out


def test_trials_scored_on_identical_whole_video_val_rows(run, demo_data) -> None:
    exp, reads, _ = run
    data = open_dataset(demo_data)
    trials = results.read_trials(exp)
    search_logs = [r for r in reads if not r["final"]]
    assert len(trials) == 3 and len(search_logs) == 3
    assert len({r["seed"] for r in search_logs}) == 3  # different trials, different seeds
    rows = np.asarray(search_logs[0]["val_rows"])
    for r in search_logs:
        assert r["val_rows"] == search_logs[0]["val_rows"]
    videos = np.unique(data.video[rows])
    assert len(videos) == VAL_VIDEOS
    val = data.indices("val")
    assert set(val[np.isin(data.video[val], videos)]) == set(rows)  # whole videos only
    fingerprint = rows_fingerprint(data, rows)
    scored = trials[trials["status"] != "FAIL"]
    assert len(scored) >= 2 and set(scored["val_set"]) == {fingerprint}
    assert set(scored["dataset"]) == {"sbi"} and not scored["val_is_test"].any()


def test_no_search_trial_reads_a_test_row(run, demo_data) -> None:
    _, reads, _ = run
    test_rows = set(open_dataset(demo_data).indices("test").tolist())
    for r in reads:
        touched = set(r["reads"]) & test_rows
        if r["final"]:  # the guard sees test reads: the final stage reads every test row
            assert touched == test_rows
        else:
            assert not touched, f"search trial (seed {r['seed']}) read {len(touched)} test rows"


def test_final_rows_weights_and_summary(run) -> None:
    from search.stages.final import final_seeds

    exp, reads, out = run
    rows = results.read_final(exp)
    trials = results.read_trials(exp)
    best = trials.sort_values("final_value", ascending=False).iloc[0]
    assert len(rows) == 2 and set(rows["status"]) == {"COMPLETE"}
    assert set(rows["trial_id"]) == {best["trial_id"]} and set(rows["rank"]) == {1}
    assert sorted(rows["seed"]) == sorted(final_seeds(0, 2))
    assert not set(rows["seed"]) & set(trials["seed"])
    for _, r in rows.iterrows():
        assert r["run_id"] == f"{r['trial_id']}-s{r['seed']}"
        assert (exp / "final" / f"{r['run_id']}.parquet").is_file()
        assert (exp / r["weights"]).is_file() and r["val_set"] == best["val_set"]
        for key in ("test_auc", "test_video_auc", "demo2_auc", "demo2_video_auc"):
            assert r[f"{key}_ci_low"] <= r[key] <= r[f"{key}_ci_high"]
        assert r["test_auc"] == pytest.approx(r["demo2_auc"])  # the same split of the same data
        assert r["test_units"] == 60 and r["test_rows"] == 480 and "val_auc" in r  # 30 faces
        assert json.loads(r["eval_sets"])["demo2"]["split"] == "test"
    assert "test_auc" in out["final"] and "(n=2 seeds)" in out["final"]
    assert "0 runs" not in out["again"] and "final stage:" not in out["again"]
    assert len(results.read_final(exp)) == 2  # --resume ran nothing again


def test_evaluate_reproduces_the_final_numbers(run, demo_data, tmp_path) -> None:
    from search.evaluate import main

    exp, _, _ = run
    row = results.read_final(exp).iloc[0]
    out = tmp_path / "m.json"
    argv = [str(exp / row["weights"]), "--data", str(demo_data), "--name", "demo2",
            "--seed", str(row["seed"]), "--n-resamples", str(RESAMPLES), "--out", str(out),
            "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    got = json.loads(out.read_text())
    for key in ("demo2_auc", "demo2_video_auc", "demo2_auc_ci_low", "demo2_auc_ci_high"):
        assert got[key] == pytest.approx(row[key], abs=1e-6), key


def test_report_headline_is_the_heldout_test_value(run) -> None:
    from analysis.data import load_results
    from analysis.heldout import headline

    exp, _, _ = run
    lines, table = headline(load_results(exp))
    rows = results.read_final(exp)
    assert len(lines) == 1 and "held-out test_auc = " in lines[0] and "n = 2 seeds" in lines[0]
    # one line per analysis unit (task/dataset), so two deepfake sets are never merged into one
    assert lines[0].startswith("deepfake/sbi: held-out"), lines[0]
    assert f"{rows['test_auc'].mean():.4f} ± {rows['test_auc'].std(ddof=1):.4f}" in lines[0]
    assert "demo2_auc" in lines[0] and "a selection number" in lines[0]
    assert set(table["set"]) == {"test", "demo2"}


def test_per_backbone_confirmation_stage_keeps_items(per) -> None:
    from analysis.data import load_results
    from analysis.sections import Options, build_sections
    from search.results.selection import select_per

    exp, out = per
    trials = results.read_trials(exp)
    best, _ = select_per(trials, "max", "backbone")
    rows = results.read_final(exp)
    conf = rows[rows["final_mode"] == "per"]
    assert set(conf["trial_id"]) == set(best["trial_id"]) and len(conf) == 2 * len(best)
    assert set(conf["group"]) == set(best["group"]) and set(conf["group_param"]) == {"backbone"}
    top = conf[conf["rank"] == 1]
    assert set(top["trial_id"]) == {best["trial_id"].iloc[0]}  # the top-1 runs, tagged
    items = results.read_items(exp)
    for _, r in conf.iterrows():
        mine = items[(items["run_id"] == r["run_id"]) & (items["set"] == "test")]
        assert len(mine) == r["test_rows"] == 480 and (exp / r["items"]).is_file()
        assert mine["unit"].nunique() == r["test_units"]
    if len(best) > 1:
        assert "the best per backbone" in out
    res = load_results(exp)
    secs = {s.key: s for s in build_sections(res, Options(n_resamples=RESAMPLES))}
    (c,) = secs["confirmation"].data["answers"].values()
    assert c.basis == "confirmation" and c.chosen.name == best["group"].iloc[0]
    for lv in c.levels:  # recomputed from items = the recorded test values
        mine = conf[conf["group"] == lv.name]["test_auc"]
        assert lv.value == pytest.approx(mine.mean(), abs=1e-9)
