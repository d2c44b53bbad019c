"""One trial: train an L-SSAT model, evaluate every epoch, hand metrics to ``report``.

``run_trial(config, data, report)`` is a plain function (no Ray, no Optuna): the search wraps
it, tests call it directly. AdamW (no weight decay on norms, biases, position embeddings and
mask tokens), per-iteration warm-up + cosine, bf16 autocast where supported, gradient clipping,
seeded and deterministic on the CPU, full-state checkpoints loadable with ``weights_only``.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.optim import param_groups_weight_decay
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from lssat.checkpoint import (
    STATE_FILE,
    config_json,
    load_checkpoint,
    release_scratch,
    save_checkpoint,
    scratch_dir,
    set_rng_state,
)
from lssat.errors import DataError, NonFiniteLogitsError, NonFiniteLossError
from lssat.model import LSSATModel, build
from lssat.schedule import warmup_cosine
from lssat.tasks import TaskSpec, get_task
from lssat.trial_data import TrialData

log = logging.getLogger("lssat")

Report = Callable[[dict[str, float | int], str | None], None]
# the final stage's held-out evaluation: (model, device, autocast dtype) -> metrics
FinalEval = Callable[[nn.Module, torch.device, "torch.dtype | None"], dict[str, Any]]
RESUME_KEYS = ("model", "optimizer", "scheduler", "epoch", "rng")  # what a resume reads
IDENTITY_KEYS = ("dataset", "dataset_hash", "val_set", "val_is_test")  # reported every epoch
VIS_IMAGES = 8  # images in the TensorBoard reconstruction picture


def unwrap(model: nn.Module) -> LSSATModel:
    """The L-SSAT model inside a DDP (or similar ``.module``) wrapper."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model  # type: ignore[return-value]


def resolve_device(config: Any) -> torch.device:
    """``device`` field -> torch device (``auto``: CUDA when available, else CPU)."""
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from lssat.errors import ConfigError

            raise ConfigError("config field 'device' is 'cuda', but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")


def autocast_dtype(config: Any, device: torch.device) -> torch.dtype | None:
    """bf16 for ``precision`` bf16, or ``auto`` on a CUDA device that supports it; else None."""
    if config.precision == "bf16":
        return torch.bfloat16
    if config.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_worker(_worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


@contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


def _videos(ds: Dataset) -> np.ndarray:
    """Video id per item ``[N]`` (-1 = none): ``ds.videos`` when it has one, else the items'."""
    videos = getattr(ds, "videos", None)
    if videos is not None:
        return np.asarray(videos, dtype=np.int64)
    with torch.random.fork_rng(devices=[]):  # an augmenting set must not shift the RNG
        return np.asarray(
            [int(ds[i].get("video", -1)) for i in range(len(ds))],  # type: ignore[arg-type]
            dtype=np.int64,
        )


def _subset(ds: Dataset, n: int, split: str) -> Dataset:
    """``n`` whole videos of ``ds`` (items where there are no video ids), the same for every
    trial and seed (:func:`lssat.data.selection.unit_subset`); ``ds`` itself when it has no
    more than ``n`` (0 = all)."""
    from lssat.data.selection import STREAMS, unit_subset

    if n <= 0 or n >= len(ds):  # type: ignore[arg-type]
        return ds
    videos = _videos(ds)
    keep = unit_subset(np.arange(len(videos)), videos, n, STREAMS[split])
    return ds if len(keep) == len(videos) else Subset(ds, keep.tolist())


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


def _loader(ds: Dataset, config: Any, train: bool, device: torch.device) -> DataLoader:
    size = len(ds)  # type: ignore[arg-type]
    return DataLoader(
        ds,
        batch_size=config.batch_size,
        shuffle=train,
        drop_last=train and size > config.batch_size,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_seed_worker,
        generator=torch.Generator().manual_seed(config.seed),
    )


def eval_loader(ds: Dataset, config: Any, device: torch.device) -> DataLoader:
    """An evaluation loader (no shuffling, every item) as the engine builds it."""
    return _loader(ds, config, False, device)


def measure_gflops(model: LSSATModel, images: torch.Tensor) -> float:
    """Forward GFLOPs per image of the full (evaluation) pass, counted by torch; NaN on failure."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model({"image": images})
        return counter.get_total_flops() / 1e9 / images.shape[0]
    except Exception as err:  # noqa: BLE001 - a metric, never a reason to stop the trial
        log.warning("FLOP count failed: %s", err)
        return math.nan
    finally:
        model.train(was_training)


def predict(
    model: nn.Module, loader: DataLoader, device: torch.device, dtype: torch.dtype | None
) -> dict[str, Any]:
    """Full-pass outputs over a loader: ``logits`` ``[N, K]``, ``labels``, ``video`` ``[N]``
    (or None), ``groups`` ``[N, G]`` (or None) as numpy arrays, and ``loss`` (mean primary)."""
    model.eval()
    logits, labels, videos, groups = [], [], [], []
    loss_sum, count = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            batch = _to_device(batch, device)
            with _autocast(device, dtype):
                out = model(batch)
            n = batch["image"].shape[0]
            loss_sum += float(out["loss_primary"]) * n
            count += n
            logits.append(out["logits"].float().cpu())
            labels.append(batch["label"].cpu())
            if "video" in batch:
                videos.append(batch["video"].cpu().reshape(-1))
            if "groups" in batch:
                groups.append(batch["groups"].cpu().reshape(n, -1))
    if count == 0:
        raise DataError("the validation set is empty")
    return {
        "logits": torch.cat(logits).numpy(),
        "labels": torch.cat(labels).numpy(),
        "video": torch.cat(videos).numpy() if videos else None,
        "groups": torch.cat(groups).numpy() if groups else None,
        "loss": loss_sum / count,
    }


def check_finite(out: dict[str, Any], split: str, epoch: int | None) -> None:
    """:class:`NonFiniteLogitsError` naming ``epoch`` when any of :func:`predict`'s logits
    ``[N, K]`` is NaN/inf: nothing is scored from them (a NaN is never counted as a class)."""
    logits = np.asarray(out["logits"])
    bad = ~np.isfinite(logits.reshape(len(logits), -1)).all(axis=1)
    if bad.any():
        raise NonFiniteLogitsError(epoch, split, int(bad.sum()), len(bad))


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    task: TaskSpec,
    meta: dict[str, Any],
    device: torch.device,
    dtype: torch.dtype | None,
    prefix: str = "val_",
    epoch: int | None = None,
) -> dict[str, float]:
    """Full-pass evaluation of one split: task metrics plus ``<prefix>loss`` (primary loss).
    Non-finite logits raise :class:`NonFiniteLogitsError` naming ``epoch``."""
    out = predict(model, loader, device, dtype)
    check_finite(out, prefix.rstrip("_"), epoch)
    metrics = task.evaluate(
        out["logits"], out["labels"], out["video"], out["groups"], meta, prefix=prefix
    )
    metrics[f"{prefix}loss"] = out["loss"]
    return metrics


def run_trial(
    config: Any,
    data: TrialData | str | Path,
    report: Report,
    *,
    checkpoint_dir: str | Path | None = None,
    tb_dir: str | Path | None = None,
    prepare_model: Callable[[nn.Module], nn.Module] | None = None,
    prepare_loader: Callable[[DataLoader], DataLoader] | None = None,
    final_eval: FinalEval | None = None,
) -> dict[str, float | int]:
    """Train ``config`` on ``data`` for ``config.epochs`` epochs; returns the last metrics.

    ``report(metrics, checkpoint_dir)`` is called once per epoch after evaluation; the
    checkpoint directory (every ``checkpoint_every`` epochs and at the last one, else None) is
    deleted when ``report`` returns. ``checkpoint_dir`` resumes from such a directory at the next
    epoch. ``prepare_model`` / ``prepare_loader`` (e.g. Ray Train's) wrap the model and the
    training loader; the validation loader is not sharded, so every worker evaluates the whole
    validation set. Every epoch's metrics carry ``data.extra``'s ``dataset``, ``dataset_hash``,
    ``val_set`` and ``val_is_test`` when it has them. ``final_eval(model, device, dtype)`` (the
    held-out stage's) runs once, after the last epoch's validation; its metrics join that
    epoch's report. ``data.test`` is never read here.
    """
    if not isinstance(data, TrialData):
        from lssat.data import load_trial_data

        data = load_trial_data(data, config)
    device = resolve_device(config)
    with _deterministic(device.type == "cpu"):
        return _run(config, data, report, device, checkpoint_dir, tb_dir, prepare_model,
                    prepare_loader, final_eval)  # fmt: skip


def _run(
    config: Any,
    data: TrialData,
    report: Report,
    device: torch.device,
    checkpoint_dir: str | Path | None,
    tb_dir: str | Path | None,
    prepare_model: Callable[[nn.Module], nn.Module] | None,
    prepare_loader: Callable[[DataLoader], DataLoader] | None,
    final_eval: FinalEval | None = None,
) -> dict[str, float | int]:
    task = get_task(config.task)
    meta = dict(data.meta)
    task.check_meta(meta)
    seed_everything(config.seed)
    train_ds = _subset(data.train, config.train_subset, "train")
    val_ds = _subset(data.val, config.val_subset, "val")
    if len(train_ds) == 0 or len(val_ds) == 0:  # type: ignore[arg-type]
        raise DataError("the training or validation set is empty")
    # what the trial is scored on (from load_trial_data), unless this cut the val set further
    ident = {k: data.extra[k] for k in IDENTITY_KEYS if k in data.extra}
    if val_ds is not data.val:
        ident.pop("val_set", None)

    model: nn.Module = build(config, task.num_outputs(meta)).to(device)
    if prepare_model is not None:
        model = prepare_model(model)
    core = unwrap(model)
    device = next(core.parameters()).device
    dtype = autocast_dtype(config, device)

    train_loader = _loader(train_ds, config, True, device)
    if prepare_loader is not None:
        train_loader = prepare_loader(train_loader)
    val_loader = _loader(val_ds, config, False, device)
    steps_per_epoch = len(train_loader)

    groups = param_groups_weight_decay(
        core, config.weight_decay, no_weight_decay_list=core.no_weight_decay()
    )
    optimizer = torch.optim.AdamW(groups, lr=config.lr, foreach=True)
    scheduler = warmup_cosine(
        optimizer,
        round(config.warmup_epochs * steps_per_epoch),
        config.epochs * steps_per_epoch,
        config.lr,
        config.min_lr,
    )
    start_epoch = 1
    if checkpoint_dir is not None:
        state = load_checkpoint(checkpoint_dir)  # on the CPU; load_state_dict moves tensors
        missing = [key for key in RESUME_KEYS if key not in state]
        if missing:
            raise DataError(
                f"checkpoint file {str(Path(checkpoint_dir) / STATE_FILE)!r} has no "
                f"{', '.join(map(repr, missing))} entry; it cannot resume a trial"
            )
        try:
            core.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start_epoch = int(state["epoch"]) + 1
        except (RuntimeError, ValueError, KeyError, TypeError) as err:
            raise DataError(
                f"checkpoint {str(checkpoint_dir)!r} does not fit this trial's config ({err})"
            ) from err
        log.info("resumed from %s at epoch %d", checkpoint_dir, start_epoch)

    with torch.random.fork_rng(devices=[]):  # an augmenting val set must not shift the RNG
        picks = torch.linspace(0, len(val_ds) - 1, min(VIS_IMAGES, len(val_ds))).long()
        vis = default_collate([val_ds[int(i)] for i in picks])
    vis_images = vis["image"].to(device)
    params_count = core.inference_parameters()
    gflops = measure_gflops(core, vis_images[:1])
    writer = None
    if tb_dir is not None:
        from lssat.tb import TrialWriter

        writer = TrialWriter(tb_dir)

    if checkpoint_dir is not None:
        set_rng_state(state["rng"])  # last, so nothing above shifts the random streams
    metrics: dict[str, float | int] = {}
    step = (start_epoch - 1) * steps_per_epoch
    try:
        for epoch in range(start_epoch, config.epochs + 1):
            t0 = time.perf_counter()
            sums, seen, step = _train_epoch(
                model, train_loader, optimizer, scheduler, config, device, dtype, epoch, step
            )
            train_time = time.perf_counter() - t0
            val = evaluate(model, val_loader, task, meta, device, dtype, epoch=epoch)
            metrics = {"epoch": epoch, "step": step}
            metrics.update({f"train_{k}": v / max(seen, 1) for k, v in sums.items()})
            metrics.update(
                lr=optimizer.param_groups[0]["lr"],
                samples_per_s=seen / max(train_time, 1e-9),
                epoch_time_s=time.perf_counter() - t0,
                params_count=params_count,
                gflops=gflops,
            )
            metrics.update(val)
            metrics.update(ident)
            if final_eval is not None and epoch == config.epochs:
                metrics.update(final_eval(core, device, dtype))
            if writer is not None:
                writer.scalars(metrics, epoch)
                gen = torch.Generator(device=device).manual_seed(config.seed)
                vis = core.visualise(vis_images, generator=gen)
                if vis is not None:
                    writer.reconstruction(vis, core, epoch)
            _log_epoch(config, task, metrics)
            last = epoch == config.epochs
            if last or epoch % config.checkpoint_every == 0:
                ckpt = scratch_dir()
                try:
                    save_checkpoint(
                        ckpt,
                        {
                            "model": core.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(),
                            "epoch": epoch,
                            "config": config_json(config),
                        },
                    )
                    report(dict(metrics), ckpt)
                finally:
                    release_scratch(ckpt)
            else:
                report(dict(metrics), None)
    finally:
        if writer is not None:
            writer.close()
    return metrics


def _train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: Any,
    device: torch.device,
    dtype: torch.dtype | None,
    epoch: int,
    step: int,
) -> tuple[dict[str, float], int, int]:
    """One pass over the training loader; returns (sample-weighted loss sums, samples, step)."""
    model.train()
    if isinstance(loader.generator, torch.Generator):
        loader.generator.manual_seed(config.seed * 1_000_003 + epoch)
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    params = [p for p in model.parameters() if p.requires_grad]
    sums: dict[str, float] = {}
    seen = 0
    for batch in loader:
        batch = _to_device(batch, device)
        with _autocast(device, dtype):
            out = model(batch)
        keys = [k for k, v in out.items() if k.startswith("loss") and v.ndim == 0]
        values = torch.stack([out[k].detach().float() for k in keys]).tolist()
        step += 1
        if not all(math.isfinite(v) for v in values):
            raise NonFiniteLossError(step, dict(zip(keys, values, strict=True)), epoch)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        n = batch["image"].shape[0]
        seen += n
        for k, v in zip(keys, values, strict=True):
            sums[k] = sums.get(k, 0.0) + v * n
    return sums, seen, step


def _log_epoch(config: Any, task: TaskSpec, m: dict[str, float | int]) -> None:
    log.info(
        "epoch %d/%d loss %.4f (primary %.4f, aux %.4f) %s %.4f | %.0f samples/s, %.1f s",
        m["epoch"],
        config.epochs,
        m.get("train_loss", math.nan),
        m.get("train_loss_primary", math.nan),
        m.get("train_loss_aux", math.nan),
        task.metric,
        m.get(task.metric, math.nan),
        m["samples_per_s"],
        m["epoch_time_s"],
    )
