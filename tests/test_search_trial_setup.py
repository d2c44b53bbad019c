"""Issue 24, item 4: retries only for dead processes.

- everything the trainable does before training (the config, the trial function, the
  descriptor backend) is inside the failure classification: an invalid config under
  ``--max-failures 2`` is FAIL after one attempt (it used to reach Tune as an error and run
  three times);
- Ray Train's failure limits are all explicit: Train V2's defaults leave preemptions and
  controller failures unlimited, a second retry layer ``attempts`` never saw.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tune_events import CONFIG, dataset

from search import results


def test_ray_train_failure_limits_are_explicit() -> None:
    from search.execution.distributed import failure_config

    fc = failure_config(0)
    assert (fc.max_failures, fc.max_preemption_failures, fc.controller_failure_limit) == (0, 0, 0)
    assert failure_config(3).max_failures == 3


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_an_invalid_config_fails_once_under_max_failures(tmp_path: Path, local_ray) -> None:
    from ray import tune

    from search.execution.recorder import Recorder
    from search.execution.trainable import train_trial
    from search.optimize.searcher import CONFIG_KEY, META_KEY
    from search.optimize.study import StudyRef

    exp = tmp_path / "deepfake" / "bad"
    data = dataset(tmp_path / "data")
    ref = StudyRef(str(exp), "bad", "max", None, metric="val_auc")
    ref.study.ask()
    recorder = Recorder(exp, task="deepfake", experiment="bad", metric="val_auc", mode="max",
                        ref=ref, budget=1, finished_before=0,
                        provenance={"versions": {}, "git_commit": "test"})  # fmt: skip
    meta = {"number": 0, "trial_id": "bad0", "params": {}, "data": str(data), "threads": 1,
            "tb_dir": str(exp / "tensorboard" / "bad0")}  # fmt: skip
    tuner = tune.Tuner(
        tune.with_resources(train_trial, {"cpu": 1}),
        param_space={CONFIG_KEY: {**CONFIG, "img_size": "abc"}, META_KEY: meta},
        tune_config=tune.TuneConfig(num_samples=1),
        run_config=tune.RunConfig(
            storage_path=str(exp / "ray"), callbacks=[recorder], verbose=0,
            failure_config=tune.FailureConfig(max_failures=2),
        ),
    )  # fmt: skip
    tuner.fit()
    recorder.close()
    row = results.read_trials(exp).iloc[0]
    assert row["status"] == "FAIL" and row["attempts"] == 1, row["error"]
    assert "img_size" in row["error"] and "\n" not in row["error"]
