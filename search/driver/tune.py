"""The Tune experiment of one search session: searcher, scheduler, Recorder and wait watch
wired from the plan, then ``Tuner.fit``."""

from __future__ import annotations

from typing import Any

from lssat.errors import ResultsWriteError
from search.driver.plan import Plan

SESSION_PREFIX = "session-"


def run_tune(
    ray: Any,
    plan: Plan,
    ref: Any,
    finished: int,
    pending: list[Any],
    num_samples: int,
    session: int,
    shape: Any,
    concurrent: int,
) -> None:
    """Run this session's Tune experiment on the joined/started Ray."""
    from ray import tune

    from lssat.descriptors import get_backend
    from search.execution.asha import make_scheduler, restore_rungs, resumed_hook
    from search.execution.capacity import describe
    from search.execution.recorder import Recorder, StopOnWriteError, disk_error
    from search.execution.resources import trial_fn_meta, why
    from search.execution.trainable import threads_for, train_trial
    from search.execution.waits import WaitWatch
    from search.optimize.searcher import ASK_AHEAD, META_KEY, OptunaAskSearcher
    from search.results.provenance import git_commit, versions

    space, exp_dir, res = plan.space, plan.exp_dir, plan.resources
    scheduler = make_scheduler(space, plan.grace_period, plan.reduction_factor)
    asha = space.early_stopping  # else Tune's FIFOScheduler: no rungs to restore
    if plan.resume and asha:
        restored = restore_rungs(scheduler, exp_dir, space.metric, space.mode)
        if restored:
            print(f"ASHA: rung records of {restored} finished trials restored", flush=True)
    meta = {
        "data": str(plan.data),
        # resolved (built if needed) on the trial's own node: "demo:swap", or a bool
        "demo": plan.demo_data or plan.demo,
        "threads": threads_for(res.cpus),
        "cpus": res.cpus,
        "gpus": res.gpus,
        "workers": res.workers,
        "max_failures": res.max_failures,
        "train_dir": str(exp_dir / "ray" / "train"),
        "session": session,
        "descriptor_backend": get_backend(),
        "weights_dir": str(plan.weights_dir) if plan.weights_dir else None,
        "weights": plan.weights,
        "hub_offline": plan.hub_offline,
        "latency": "latency_ms" in space.objectives,
        **trial_fn_meta(),
    }
    concurrent = min(concurrent, num_samples)
    searcher = OptunaAskSearcher(
        space,
        ref,
        seed=plan.seed,
        meta=meta,
        tb_root=str(exp_dir / "tensorboard"),
        pending=pending,
        ask_ahead=ASK_AHEAD,
        new_trials=max(0, num_samples - len(pending)),
        first_wave=max(0, concurrent - len(pending)),
    )
    searcher.start()  # the first wave is asked while Tune starts the trial processes
    if asha:
        searcher.on_resumed = resumed_hook(scheduler, exp_dir, space.metric, space.mode)
    recorder = Recorder(
        exp_dir,
        task=plan.task,
        experiment=plan.name,
        metric=space.metric,
        mode=space.mode,
        ref=ref,
        budget=plan.budget,
        finished_before=finished,
        provenance={"versions": versions(), "git_commit": git_commit()},
        keep_checkpoints=plan.request.keep_checkpoints,
        objectives=space.objectives or None,
    )
    workers = f" on {res.workers} Ray Train workers" if res.workers > 1 else ""
    print(
        f"running {num_samples} trials, {concurrent} at a time{why(shape, res)}, "
        f"{res.cpus:g} CPU + {res.gpus:g} GPU each{workers} (Ray {ray.__version__})",
        flush=True,
    )
    watch = WaitWatch(plan.request.wait_warning, describe(res.bundles()), shape.largest())
    tuner = tune.Tuner(
        tune.with_resources(train_trial, res.tune_resources()),
        param_space={},
        tune_config=tune.TuneConfig(
            metric=space.metric,
            mode=space.mode,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=num_samples,
            max_concurrent_trials=concurrent,
            reuse_actors=True,
            trial_name_creator=lambda t: f"trial_{t.config[META_KEY]['number']}",
            trial_dirname_creator=lambda t: t.trial_id,
        ),
        run_config=tune.RunConfig(
            name=f"{SESSION_PREFIX}{session}",
            storage_path=str(exp_dir / "ray"),
            callbacks=[recorder, watch],
            stop=StopOnWriteError(recorder),
            verbose=2 if plan.ray.verbose else 0,
            # no num_to_keep: with it, Tune writes its whole experiment state (every trial) after
            # each checkpoint, O(trials) per epoch (issue 16, scale); the Recorder deletes a
            # trial's superseded checkpoint instead, once Tune registered its successor, and
            # resume reads Parquet + the study
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            failure_config=tune.FailureConfig(max_failures=res.max_failures),
        ),
    )
    try:
        tuner.fit()
    except Exception as exc:  # Tune's own state files on a full disk end up here
        stopped = recorder.stopped or disk_error(exc)
        if stopped is None:
            raise
        recorder.stop(stopped if recorder.stopped else f"writing to {exp_dir} failed ({stopped})")
    finally:
        searcher.close()
        recorder.close()  # the epoch rows still queued reach the disk
    if searcher.ask_seconds:
        asks = sorted(searcher.ask_seconds)
        p95 = asks[min(len(asks) - 1, int(0.95 * len(asks)))]
        print(f"sampler: {len(asks)} asks, p95 {p95 * 1000:.0f} ms, asked {ASK_AHEAD} ahead "
              f"(the first wave of {searcher.first_wave} before Tune started); "
              f"{searcher.waited} trial start(s) waited on an ask", flush=True)  # fmt: skip
    if recorder.stopped:
        raise ResultsWriteError(
            f"the search stopped: {recorder.stopped}; finished trials are kept in {exp_dir}: "
            "free space (or fix the folder) and run the same command with --resume"
        )
