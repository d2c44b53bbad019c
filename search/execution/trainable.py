"""The Ray Tune function trainable: one ``lssat.train.run_trial`` call per Tune trial.

It runs in a Ray worker. ``config["trial"]`` is the flat ``TrialConfig`` dict and
``config["lssat"]`` the search's bookkeeping (see :mod:`search.optimize.searcher`): data path,
TensorBoard run folder, threads, and the checkpoint to resume from. Each epoch's metrics go to
``ray.tune.report`` with the epoch's checkpoint (Ray persists it into the experiment folder).
Errors propagate, so Tune marks the trial ERROR and the Recorder records it as FAIL.

With ``meta["workers"] > 1`` the trial only coordinates: it runs Ray Train workers through
:func:`search.execution.distributed.run_distributed_trial` (run ``<exp>/ray/train/trial_<number>``).
Every report carries the reporting process's placement (``node_id``, ``gpu_ids``).
``meta["trial_fn"]`` (test-only, from ``LSSAT_TRIAL_FN``) replaces ``lssat.train.run_trial``.

Retries: an exception raised by the trial's own code (non-finite loss, out of memory, a config
or data error, any other) cannot be fixed by running it again, so it never reaches Tune as an
error (which ``--max-failures`` would retry): the trial reports one last result holding
``ERROR_KEY`` (its one-line error) and ``REASON_KEY`` and returns; the Recorder records FAIL at
once. Only a lost process reaches Tune as an error and is retried from the last checkpoint: the
Tune trial's own actor dying (killed, memory monitor, lost node, preempted instance) or, for a
multi-worker trial, a Ray Train worker dying, its node preempted or its Train controller failing
(:class:`search.execution.distributed.WorkersLost`; Ray Train's own limits are all 0, see
:func:`search.execution.distributed.failure_config`, so there is one retry layer and every
retry counts in ``attempts``). Everything the trainable does before training (building the
config, the trial function, the descriptor backend) sits inside the same classification.
"""

from __future__ import annotations

import functools
import gc
import importlib
import math
from collections.abc import Callable, Mapping
from typing import Any

from lssat.errors import ConfigError
from search.execution.errors import (  # noqa: F401  (TrialFailed, _portable: re-exported)
    ERROR_KEY,
    REASON_KEY,
    TrialFailed,
    _portable,
    classify_error,
)
from search.optimize.searcher import CONFIG_KEY, META_KEY


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers, strings and booleans only (Tune results must not hold tensors)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()
        if isinstance(value, bool | int | float | str):
            out[key] = value
    return out


def train_trial(config: dict[str, Any]) -> None:
    """Tune entry point: build the TrialConfig, resume if asked, run it, report every epoch.

    ``meta["workers"] > 1`` runs the trial data-parallel under Ray Train
    (:func:`search.execution.distributed.run_distributed_trial`); otherwise in this process.
    """
    import torch
    from ray import tune

    from lssat.config import TrialConfig
    from lssat.descriptors import set_backend

    meta = config[META_KEY]
    try:  # everything before training too: a deterministic error is FAIL at once
        use_weights_dir(meta.get("weights_dir"))
        use_hub(bool(meta.get("hub_offline")))
        cfg = TrialConfig.from_dict(dict(config[CONFIG_KEY]))
        threads = int(meta.get("threads") or 0)
        if threads > 0:
            torch.set_num_threads(threads)
        set_backend(meta.get("descriptor_backend") or "eager")  # the driver's, on every node
        trial_fn = load_trial_fn(meta.get("trial_fn"), meta.get("trial_fn_args"))
        if meta.get("final"):  # a held-out run (search.final): test after the last epoch
            from search.execution.heldout import heldout_trial

            trial_fn = functools.partial(heldout_trial, trial_fn, meta["final"])
        elif meta.get("latency"):  # objective latency_ms (search.optimize.objectives)
            from lssat.latency import final_eval

            trial_fn = functools.partial(trial_fn, final_eval=final_eval(cfg.img_size))
        workers = int(meta.get("workers") or 1)
        if workers > 1:
            _run_distributed(cfg, meta, workers, trial_fn)
        else:
            _run_plain(cfg, meta, trial_fn, tune)
    except Exception as exc:
        from search.execution.distributed import WorkersLost

        if isinstance(exc, WorkersLost):
            raise  # a lost process: Tune retries it (--max-failures) from its checkpoint
        report_own_error(exc, tune)
    finally:
        # the actor may be reused for the next trial: leave no model or cache behind
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def error_line(exc: BaseException) -> str:
    """``Kind: message`` of a trial's exception (the row's ``error``)."""
    if isinstance(exc, TrialFailed):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".strip()


def report_own_error(exc: BaseException, tune: Any) -> None:
    """End the trial with its own error as a last result (FAIL at once, never retried); the
    traceback goes to ``error.txt`` in the trial folder. A report that itself fails (e.g. a
    full disk) raises, and Tune handles the trial as errored."""
    import traceback


    text = error_line(exc)[:4000]
    try:
        trial_dir = tune.get_context().get_trial_dir()
        with open(f"{trial_dir}/error.txt", "a") as fh:
            fh.write("".join(traceback.format_exception(exc)))
    except Exception:  # the folder is a convenience; the row carries the error
        pass
    tune.report({ERROR_KEY: text, REASON_KEY: classify_error(exc, text), **placement()})


def demo_path(task: str, spec: object = None) -> str:
    """The embedded demo data on *this* node: found in (or built into) its own cache. The
    driver's path may exist only on the head, so a demo trial never uses it elsewhere.
    ``spec``: ``demo:NAME`` for a named demo (``--data demo:swap``), else the task's default."""
    from lssat.data import resolve_data

    return str(resolve_data(spec if isinstance(spec, str) else None, task))


def trial_data(cfg: Any, meta: Mapping[str, Any]) -> str:
    """The data folder of a plain trial: ``meta["data"]``, or the demo resolved here."""
    return demo_path(cfg.task, meta["demo"]) if meta.get("demo") else str(meta["data"])


def train_final_run(config: dict[str, Any]) -> None:
    """Tune entry point of a final-stage run (:mod:`search.final`): ``config["run"]`` holds
    what :func:`train_trial` takes, with ``meta["final"]`` set."""
    train_trial(config["run"])


def _run_plain(cfg: Any, meta: Mapping[str, Any], trial_fn: Callable[..., Any], tune: Any) -> None:
    """One process: ``trial_fn`` (``run_trial``) reports to Tune with its checkpoints."""

    def report(metrics: Mapping[str, Any], checkpoint_dir: str | None = None) -> None:
        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report({**scalar_metrics(metrics), **placement()}, checkpoint=ckpt)

    data = trial_data(cfg, meta)
    restored = tune.get_checkpoint()  # set when Tune itself restarts the trial
    if restored is not None:
        with restored.as_directory() as resume_dir:
            trial_fn(cfg, data, report, checkpoint_dir=resume_dir, tb_dir=meta.get("tb_dir"))
    else:
        trial_fn(
            cfg,
            data,
            report,
            checkpoint_dir=meta.get("resume_from"),
            tb_dir=meta.get("tb_dir"),
        )


def _run_distributed(
    cfg: Any, meta: Mapping[str, Any], workers: int, trial_fn: Callable[..., Any]
) -> None:
    """``workers`` Ray Train workers, each holding the trial's CPUs/GPUs; rank 0 reports.

    The Train run is named by the Optuna trial number under ``<exp>/ray/train``, so a trial run
    again (Tune retry or ``--resume``) continues from that run's latest checkpoint.
    """
    from search.execution.distributed import run_distributed_trial

    resources = {"CPU": float(meta.get("cpus") or 1.0)}
    if float(meta.get("gpus") or 0.0) > 0:
        resources["GPU"] = float(meta["gpus"])
    demo = meta.get("demo")
    data = functools.partial(demo_path, cfg.task, demo) if demo else meta["data"]
    run_distributed_trial(
        cfg,
        data,  # the demo: resolved on each worker's node
        num_workers=workers,
        use_gpu=float(meta.get("gpus") or 0.0) > 0,
        resources_per_worker=resources,
        storage_path=str(meta["train_dir"]),
        name=train_run_name(int(meta["number"])),
        checkpoint=meta.get("resume_from"),
        tb_dir=meta.get("tb_dir"),
        max_failures=0,  # one retry layer: Tune's (a lost worker raises WorkersLost)
        trial_fn=functools.partial(_placed, trial_fn, meta.get("weights_dir")),
    )


def _placed(
    trial_fn: Callable[..., Any],
    weights_dir: str | None,
    config: Any,
    data: Any,
    report: Any,
    **kw: Any,
) -> Any:
    """``trial_fn`` whose reports carry this worker's placement (runs on each Train worker,
    with the search's weights folder)."""
    use_weights_dir(weights_dir)

    def placed_report(metrics: Mapping[str, Any], checkpoint_dir: str | None = None) -> None:
        report({**metrics, **placement()}, checkpoint_dir)

    return trial_fn(config, data, placed_report, **kw)


def use_weights_dir(folder: str | None) -> None:
    """Point ``lssat.weights`` at the search's weights folder in this process (a reused actor
    or a node's own ``$LSSAT_WEIGHTS`` must not change what a trial loads)."""
    import os

    from lssat.weights import ENV

    if folder:
        os.environ[ENV] = folder
    else:
        os.environ.pop(ENV, None)


def use_hub(offline: bool) -> None:
    """With every pretrained backbone in the local cache (the driver's pre-flight), timm loads
    it without asking the hub, which may be unreachable and slow to say so."""
    if not offline:
        return
    import os
    import sys

    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # read at import: set the live value too
        constants.HF_HUB_OFFLINE = True


def train_run_name(number: int) -> str:
    """Ray Train run folder (under ``<exp>/ray/train``) of the trial with Optuna ``number``."""
    return f"trial_{number}"


def placement() -> dict[str, str]:
    """Where this process runs: ``node_id`` (Ray node, hex) and ``gpu_ids`` (comma-separated
    Ray GPU ids assigned to it, "" for none; with fractional GPUs several trials share one)."""
    import ray

    ctx = ray.get_runtime_context()
    try:
        gpus = ctx.get_accelerator_ids().get("GPU", [])
    except Exception:  # outside a Ray worker
        gpus = []
    return {"node_id": str(ctx.get_node_id()), "gpu_ids": ",".join(str(g) for g in gpus)}


def load_trial_fn(spec: str | None, args: Mapping[str, Any] | None = None) -> Callable[..., Any]:
    """The per-trial training function: ``lssat.train.run_trial``, or ``module:function``.

    TEST-ONLY hook (``LSSAT_TRIAL_FN`` / ``LSSAT_TRIAL_FN_ARGS`` read by the driver, see
    :mod:`search.testing.faults`): a stand-in called like ``run_trial`` (plus ``args`` as keywords),
    e.g. to sleep or kill its own process at a given epoch.
    """
    if not spec:
        from lssat.train import run_trial

        return run_trial
    module, _, name = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"LSSAT_TRIAL_FN is {spec!r}; it must name an importable module:function ({exc})"
        ) from exc
    return functools.partial(fn, **dict(args or {})) if args else fn


def threads_for(cpus: float) -> int:
    """Torch threads for a trial holding ``cpus`` CPUs (at least one)."""
    return max(1, int(math.floor(cpus + 1e-9)))
