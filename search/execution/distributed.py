"""One trial, data-parallel over several workers, under Ray Train's ``TorchTrainer``.

Called from inside a Ray Tune function trainable when a trial asks for more than one worker
(``--workers-per-trial N``); single-worker trials keep the lighter plain path. The Tune trial
itself only coordinates and needs a tiny CPU share (``{"cpu": 0.01}``); the training workers
get their own resources from ``ScalingConfig``. Metrics reach Tune through Ray's
``TuneReportCallback``, once per epoch, from rank 0.

Each worker runs ``lssat.train.run_trial`` with Ray's hooks: ``prepare_model`` (moves the
model to the worker's device, wraps it in DistributedDataParallel), ``prepare_loader``
(moves batches to the device and shards the data with a ``DistributedSampler``: each rank
sees a disjoint ``1 / world_size`` of every epoch). Backend: gloo on CPU, NCCL on GPU.

Checkpoints: ``report(metrics, checkpoint_dir)`` on rank 0 uploads ``checkpoint_dir`` to
``storage_path/name`` (the last ``keep_checkpoints`` are kept). A run restarted under the
same ``storage_path`` and ``name`` (Train's own worker retries, or a retried Tune trial)
resumes from its latest checkpoint: ``ray.train.get_checkpoint()`` hands it to
``run_trial(checkpoint_dir=...)``, which must load it with ``weights_only=True``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lssat.config import TrialConfig
from lssat.descriptors import get_backend, set_backend
from lssat.errors import ConfigError, LssatError, causes
from lssat.trial_data import TrialData

DataSource = TrialData | str | Path | Callable[[], TrialData]


class WorkersLost(RuntimeError):
    """A Ray Train worker died (killed process, lost node, preempted instance): nothing the
    trial's code did; running it again from its last checkpoint can succeed."""


def run_distributed_trial(
    config: TrialConfig,
    data: DataSource,
    *,
    num_workers: int,
    use_gpu: bool,
    storage_path: str,
    name: str,
    resources_per_worker: dict[str, float] | None = None,
    checkpoint: str | None = None,
    tb_dir: str | None = None,
    max_failures: int = 0,
    keep_checkpoints: int = 2,
    placement_strategy: str = "PACK",
    report_to_tune: bool | None = None,
    trial_fn: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Train one trial on ``num_workers`` data-parallel workers; block until it ends.

    Args:
        config: the trial's validated config; its ``batch_size`` is per worker.
        data: what ``run_trial`` accepts - a ``TrialData`` (pickled to every worker: fine
            for small sets) or a prepared-dataset folder every node can read (opened on
            each worker; preferred for real data sets) - or a zero-argument callable that
            builds the ``TrialData`` on each worker.
        num_workers: training workers (one process each; one GPU each with ``use_gpu``).
        use_gpu: NCCL on GPUs when True, gloo on CPUs when False (then ``device="cpu"``).
        storage_path: shared folder or URI every node can reach (``/mnt/efs/...``,
            ``s3://...``); Ray Train writes checkpoints under ``storage_path/name``.
        name: this run's folder name, unique per trial (e.g. the Tune trial id); reusing
            it resumes from that run's latest checkpoint.
        resources_per_worker: Ray resources per worker, e.g. ``{"CPU": 4, "GPU": 1}``;
            default: Ray's (``{"CPU": 1}``, or ``{"GPU": 1}`` with ``use_gpu``).
        checkpoint: a checkpoint folder to start from when the run has none of its own.
        tb_dir: TensorBoard folder; rank 0 writes curves and reconstructions there.
        max_failures: Ray Train's own worker-group restarts (from the latest checkpoint);
            ``-1`` = unlimited. The search passes 0: a lost worker raises ``WorkersLost`` and
            Tune's ``--max-failures`` retries the whole trial (one retry layer).
        keep_checkpoints: how many of the latest checkpoints Ray Train keeps.
        placement_strategy: "PACK" (workers on as few nodes as possible: NCCL stays
            inside a machine) or "SPREAD".
        report_to_tune: forward each report to the enclosing Tune trial; default: when
            called inside one.
        trial_fn: the per-worker training function, called like ``run_trial``; default
            ``lssat.train.run_trial`` (tests inject stand-ins, e.g. to crash on purpose).

    Returns:
        ``{"metrics": last rank-0 metrics, "checkpoint_path": latest checkpoint folder or
        None, "run_path": storage folder of the run}``.

    Raises:
        ConfigError: bad arguments. An exception raised by ``run_trial`` on a worker (e.g.
        ``NonFiniteLossError``, a CUDA out-of-memory error) is re-raised as itself; a worker
        that died (process killed, node lost) raises ``WorkersLost``; anything else Ray
        Train's ``TrainingFailedError``.
    """
    if num_workers < 1:
        raise ConfigError(f"num_workers is {num_workers}; it must be at least 1")
    if placement_strategy not in ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"):
        raise ConfigError(
            f"placement_strategy is {placement_strategy!r}; allowed: PACK, SPREAD, "
            "STRICT_PACK, STRICT_SPREAD"
        )
    if not name or "/" in name:
        raise ConfigError(f"run name is {name!r}; it must be a non-empty folder name")

    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    if report_to_tune is None:
        report_to_tune = _in_tune_session()
    callbacks = []
    if report_to_tune:
        from ray.tune.integration.ray_train import TuneReportCallback

        callbacks.append(TuneReportCallback())

    trainer = TorchTrainer(
        _train_loop_per_worker,
        train_loop_config={
            "config": config.to_dict(),
            "data": data,
            "use_gpu": use_gpu,
            "initial_checkpoint": str(checkpoint) if checkpoint else None,
            "tb_dir": str(tb_dir) if tb_dir else None,
            "trial_fn": trial_fn,
            "descriptor_backend": get_backend(),
        },
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=num_workers,
            use_gpu=use_gpu,
            resources_per_worker=resources_per_worker,
            placement_strategy=placement_strategy,
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=storage_path,
            failure_config=failure_config(max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=keep_checkpoints),
            callbacks=callbacks,
        ),
    )
    try:
        result = trainer.fit()
    except ray.train.WorkerGroupError as err:
        cause = _lssat_cause(err) or _user_error(err)
        if cause is not None:
            raise cause from None
        raise WorkersLost(f"a Ray Train worker of run {name} died ({_first_line(err)})") from None
    except (ray.train.PreemptionError, ray.train.ControllerError) as err:
        # a preempted node or a failed Train controller: no fault of the trial's code; Tune
        # retries it under --max-failures and the retry counts in `attempts`
        raise WorkersLost(f"Ray Train run {name} was interrupted ({_first_line(err)})") from None
    return {
        "metrics": dict(result.metrics or {}),
        "checkpoint_path": result.checkpoint.path if result.checkpoint else None,
        "run_path": result.path,
    }


def failure_config(max_failures: int = 0) -> Any:
    """Ray Train's ``FailureConfig`` with every retry limit explicit: ``max_failures``
    worker-group restarts, and none of the layers Train V2 leaves unlimited by default
    (``max_preemption_failures=-1``, ``controller_failure_limit=-1``), so a preemption or a
    controller failure reaches Tune, whose ``--max-failures`` counts it (one retry layer)."""
    import ray.train

    return ray.train.FailureConfig(
        max_failures=max_failures, max_preemption_failures=0, controller_failure_limit=0
    )


def _train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Body of every training worker: ``run_trial`` with Ray Train's hooks."""
    import ray.train
    import ray.train.torch

    run_trial = loop_config["trial_fn"]
    if run_trial is None:
        from lssat.train import run_trial
    set_backend(loop_config.get("descriptor_backend") or "eager")

    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    config = TrialConfig.from_dict(loop_config["config"])
    if not loop_config["use_gpu"]:
        config = config.replace(device="cpu")
    data = loop_config["data"]
    if callable(data):
        data = data()
    tb_dir = loop_config["tb_dir"] if rank == 0 else None

    def report(metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        # Every rank must call ray.train.report equally often (it is a barrier); only
        # rank 0's metrics and checkpoint are kept.
        checkpoint = None
        if checkpoint_dir is not None and rank == 0:
            checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir)
        ray.train.report({**metrics, "world_size": world_size}, checkpoint=checkpoint)

    # DDP must tolerate parameters a config leaves unused (e.g. the decoder when
    # aux_weight = 0, or backbone parts a classify-on-descriptor config skips).
    prepare_model = functools.partial(
        ray.train.torch.prepare_model,
        parallel_strategy_kwargs={"find_unused_parameters": True},
    )
    hooks = {
        "tb_dir": tb_dir,
        "prepare_model": prepare_model,
        "prepare_loader": ray.train.torch.prepare_data_loader,
    }
    resume = ray.train.get_checkpoint()
    if resume is None and loop_config["initial_checkpoint"]:
        resume = ray.train.Checkpoint(loop_config["initial_checkpoint"])
    if resume is None:
        run_trial(config, data, report, checkpoint_dir=None, **hooks)
        return
    with resume.as_directory() as checkpoint_dir:
        run_trial(config, data, report, checkpoint_dir=str(checkpoint_dir), **hooks)


def _in_tune_session() -> bool:
    """True inside a Ray Tune trial (private Ray helper; False if it moved)."""
    try:
        from ray.tune.trainable.trainable_fn_utils import _in_tune_session as in_tune
    except ImportError:  # pragma: no cover - Ray moved it
        return False
    return bool(in_tune())


def _user_error(err: BaseException) -> BaseException | None:
    """The first exception a worker's own code raised (Ray Train wraps it with its traceback
    in ``UserExceptionWithTraceback``); None when every worker died instead."""
    failures = getattr(err, "worker_failures", None) or {}
    for rank in sorted(failures):
        for exc in causes(failures[rank]):
            base = getattr(exc, "_base_exc", None)
            if isinstance(base, BaseException):
                return base
    return None


def _first_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return lines[-1][:300] if lines else type(err).__name__


def _lssat_cause(err: BaseException) -> LssatError | None:
    """The first ``LssatError`` a worker raised, unwrapped from Ray's error types."""
    failures = getattr(err, "worker_failures", None) or {}
    for rank in sorted(failures):
        for exc in causes(failures[rank]):
            if isinstance(exc, LssatError):
                return exc
    return None
