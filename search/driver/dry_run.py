"""``search.run --dry-run``: the plan, the resolved space, the trials the cluster holds at once,
the budget and a rough GPU-hour estimate, from a read-only look; nothing is run or written."""

from __future__ import annotations

import math
from pathlib import Path

from search.driver.plan import Plan


def dry_run(plan: Plan) -> int:
    """Print what the search would do; returns 0."""
    import yaml

    from search.driver.session import finished_numbers
    from search.execution.capacity import describe, rough_gpu_hours
    from search.execution.ray_init import ray_init
    from search.execution.resources import cluster, concurrency, why

    space, exp_dir, budget, res = plan.space, plan.exp_dir, plan.budget, plan.resources
    done = len(finished_numbers(exp_dir)) if plan.resume else 0
    print(f"dry run: {plan.task}/{plan.name} in {exp_dir} (nothing is run or written)")
    for line in plan.describe():
        print(line)
    print("resolved space:")
    print(yaml.safe_dump(space.to_dict(), sort_keys=False).rstrip())
    ray = ray_init(plan.ray)
    try:
        shape = cluster(ray, plan.ray.address)
        concurrent = concurrency(shape, res, plan.ray.local)
    finally:
        ray.shutdown()
    print(
        f"trials at once: {concurrent}{why(shape, res) or ' (the live nodes)'}; "
        f"each asks for {describe(res.bundles())}; {shape.largest()}"
    )
    left = max(0, budget - done)
    print(f"trial budget: {budget} x {space.epochs} epochs ({done} finished, {left} to run)")
    given = plan.request.epoch_minutes
    measured = epoch_minutes(exp_dir) if plan.resume else None
    minutes = given or measured or 1.0
    source = (
        "--epoch-minutes"
        if given
        else "measured in this experiment"
        if measured
        else "assumed; set --epoch-minutes"
    )
    grace, rf = plan.grace_period, plan.reduction_factor
    gpus = res.gpus * res.workers
    full, asha = rough_gpu_hours(left, space.epochs, gpus, grace, rf, minutes)
    stopping = (
        f"about {asha:.1f} with ASHA (grace {grace}, keeps 1/{rf} per rung)"
        if space.early_stopping
        else "no early stopping (scheduler: none)"
    )
    print(
        f"rough GPU-hours: {full:.1f} if every trial runs all epochs, {stopping}; "
        f"{gpus:g} GPU per trial x {minutes:g} min per epoch ({source})"
    )
    return 0


def epoch_minutes(exp_dir: Path) -> float | None:
    """Median minutes per epoch of the experiment's epoch rows, if any."""
    from search import results

    if not (exp_dir / results.EPOCHS_DIR).is_dir():
        return None
    epochs = results.read_epochs(exp_dir)
    if epochs.empty or "epoch_time_s" not in epochs:
        return None
    value = epochs["epoch_time_s"].dropna().median()
    return float(value) / 60.0 if math.isfinite(value) and value > 0 else None
