"""One session of a search, carried out from its :class:`~search.driver.plan.Plan`: the study,
``search.json``, the Tune run, the final stage and the summary. Returns the exit code."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from lssat.errors import ConfigError, DataError, LssatError
from search.driver.plan import Plan


def run_search(plan: Plan) -> int:
    """The search itself (after :func:`search.driver.plan.resolve`), holding the experiment
    folder (:mod:`search.results.lock`: one driver per folder); returns the exit code."""
    from search.results.lock import hold_experiment

    check_writable(plan.exp_dir)
    with hold_experiment(plan.exp_dir, "search.run"):
        if not plan.resume and _holds_search(plan.exp_dir):
            raise ConfigError(  # another driver started it after this one's plan was made
                f"experiment folder {plan.exp_dir} already holds a search; add --resume to "
                "continue it or pick another --name"
            )
        return _run_search(plan)


def _holds_search(exp_dir: Path) -> bool:
    from search import results
    from search.optimize.study import STUDY_FILE

    return (
        (exp_dir / "search.json").is_file()
        or (exp_dir / STUDY_FILE).exists()
        or any((exp_dir / results.TRIALS_DIR).glob("*.parquet"))
    )


def _run_search(plan: Plan) -> int:
    t_start = time.time()
    from search.execution.ray_init import ray_connected, ray_init
    from search.execution.resources import cluster, concurrency
    from search.optimize.pretrained import describe
    from search.optimize.study import (
        StudyRef,
        derive_seed,
        reconcile,
        save_settings,
        storage_label,
        study_name,
    )
    from search.results.redact import redact_url

    space, exp_dir, budget = plan.space, plan.exp_dir, plan.budget
    session = len(plan.sessions)
    ref = StudyRef(
        str(exp_dir),
        study_name(plan.task, plan.name),
        space.mode,
        plan.storage,
        sampler_seed=derive_seed(plan.seed, session),
        sampler_opts=space.sampler_kwargs(),
        metric=space.metric,
        objectives=dict(space.objectives),
        # a multi-objective study gets the enqueued configurations but no single-value prior
        prior=plan.warm.prior if plan.warm and not space.multi_objective else [],
        balance=space.balance_levels(),
    )
    if plan.resume:
        state = reconcile(ref)
        finished, pending = state.finished, state.pending
        if state.repaired:
            print(f"repaired the study from Parquet for trials {state.repaired}", flush=True)
    else:
        finished, pending = 0, []
        if plan.storage:
            import optuna

            if ref.name in optuna.study.get_all_study_names(storage=ref.storage):
                where = storage_label(exp_dir, plan.storage)
                raise ConfigError(f"study {ref.name!r} already exists at {where}; pick another "
                                  "--name")  # fmt: skip
    new = max(0, budget - finished - len(pending))
    num_samples = len(pending) + new
    aim = (
        ", ".join(f"{k} ({v})" for k, v in space.objectives.items())
        + f"; early stopping on {space.metric}"
        if space.multi_objective
        else f"{space.metric} ({space.mode})"
    )
    print(
        f"search {plan.task}/{plan.name}: {budget} trials x {space.epochs} epochs, {aim}; "
        f"data {plan.data}",
        flush=True,
    )
    print(describe(space, plan.weights_dir, plan.weights), flush=True)
    if plan.resume:
        print(f"resuming: {finished} finished, {len(pending)} to run again, {new} new", flush=True)
    ray_was_up = ray_connected()  # e.g. search.demo: one Ray for several searches, kept up
    ray = ray_init(plan.ray) if num_samples > 0 else None  # a bad --address fails before writes
    try:
        shape = concurrent = None
        if ray is not None:  # an impossible request stops here, before anything is written
            shape = cluster(ray, plan.ray.address)
            concurrent = concurrency(shape, plan.resources, plan.ray.local)
        if not plan.resume:
            exp_dir.mkdir(parents=True, exist_ok=True)
            for params in space.enqueue:
                ref.study.enqueue_trial(params, skip_if_exists=True)
            if plan.warm:  # after the space's own enqueue; never again on --resume
                from search.optimize.warm import ATTR_WARM

                for params in plan.warm.enqueue:
                    ref.study.enqueue_trial(params, user_attrs={ATTR_WARM: plan.warm.source})
            space.dump(exp_dir / "space.yaml")
        session_info = {
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "sampler_seed": ref.sampler_seed,
            "resumed": len(pending),
            "new": new,
        }
        res = plan.resources
        save_settings(
            exp_dir,
            {
                "task": plan.task,
                "name": plan.name,
                "space_file": str(plan.space_path),
                "data": str(plan.data),
                "demo": plan.demo,
                "demo_data": plan.demo_data,
                "trials": budget,
                "seed": plan.seed,
                "metric": space.metric,
                "mode": space.mode,
                # a list keeps the objectives' order (this file is written with sorted keys)
                "objectives": [f"{k}:{v}" for k, v in space.objectives.items()] or None,
                "epochs": space.epochs,
                "storage": redact_url(plan.storage),  # never the password
                "cpus_per_trial": res.cpus,
                "gpus_per_trial": res.gpus,
                "workers_per_trial": res.workers,
                "allow_test_selection": plan.allow_test_selection,
                "weights_dir": str(plan.weights_dir) if plan.weights_dir else None,
                "warm_start": _warm_settings(plan),
                "sessions": [*plan.sessions, session_info],
            },
        )
        if ray is not None:
            from search.driver.tune import run_tune

            run_tune(ray, plan, ref, finished, pending, num_samples, session, shape, concurrent)
        if plan.final is not None and len(finished_numbers(exp_dir)) >= budget:
            ray = _run_final(ray, plan)
    finally:
        if ray is not None and not ray_was_up:
            ray.shutdown()
    from search.stages.summary import summarise

    code = summarise(exp_dir, ref, budget, time.time() - t_start)
    done = len(finished_numbers(exp_dir))
    if done < budget:
        print(
            f"note: {done}/{budget} trials finished; run the same command with --resume to "
            "finish the search",
            flush=True,
        )
    return code


def _warm_settings(plan: Plan) -> dict[str, Any] | None:
    """``search.json``'s record of the warm start (kept as first written on --resume)."""
    if plan.resume:
        return plan.saved_warm
    warm = plan.warm
    if warm is None:
        return None
    return {
        "from": warm.source,
        "enqueued": warm.enqueue,
        "skipped": warm.skipped,
        "prior_trials": len(warm.prior),
        "shared": warm.shared,
    }


def _run_final(ray: Any, plan: Plan) -> Any:
    """The held-out stage (:mod:`search.stages.final`) on this search; returns the Ray in use."""
    from search.execution.ray_init import ray_init
    from search.results import FINAL_DIR
    from search.stages import final

    assert plan.final is not None
    req = final.FinalRequest(
        experiment=str(plan.exp_dir), top_k=plan.final.top_k or None, seeds=plan.final.seeds,
        front=plan.final.top_k == 0 and not plan.final.per, per=plan.final.per,
        resume=(plan.exp_dir / FINAL_DIR / final.SETTINGS_FILE).is_file(),
        max_concurrent=plan.resources.max_concurrent, max_failures=plan.resources.max_failures,
        ray=plan.ray,
    )  # fmt: skip
    try:
        stage = final.prepare(req)
    except LssatError as exc:
        print(f"note: no final stage: {exc}", flush=True)
        return ray
    if stage.note:
        print(f"note: {stage.note}", flush=True)
    if stage.todo:
        ray = ray or ray_init(plan.ray)
        final.run_stage(ray, stage, req)
    return ray


def check_writable(exp_dir: Path) -> None:
    """DataError unless ``exp_dir`` (or its nearest existing parent, so nothing is created here)
    takes a small file: a read-only or full disk, or a file in the way, is found before the
    search changes anything."""
    base = exp_dir
    while not base.exists() and base.parent != base:
        base = base.parent
    probe = base / f".write-probe-{os.getpid()}"
    try:
        if not base.is_dir():
            raise NotADirectoryError(20, f"{base} is a file, not a folder")
        with open(probe, "wb") as fh:
            fh.write(b"\0" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise DataError(
            f"results folder {exp_dir} is not writable ({exc.strerror or exc}); free space, "
            "fix its permissions or pick another --results"
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def finished_numbers(exp_dir: Path) -> set[int]:
    """Trial numbers with a row in ``trials/``."""
    from search import results

    trials = results.read_trials(exp_dir)
    return set() if trials.empty else {int(n) for n in trials["number"]}
