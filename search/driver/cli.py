"""``python -m search.run``'s command line: the parser, the one-sentence checks of its values,
and the one conversion of the parsed namespace into a typed :class:`Request`.

Nothing below this module sees ``argparse.Namespace``: :func:`request_from_args` is the only
reader of it, and :func:`run` hands the request to :mod:`search.driver.plan`.
"""

from __future__ import annotations

import argparse
import math
import re
from typing import NoReturn

from lssat.errors import ConfigError
from search.cli import RESUME, Parser, run_cli
from search.driver.plan import Request

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SESSION_PREFIX = "session-"

EPILOG = """\
examples:
  python -m search.run --task deepfake --space spaces/demo.yaml      # embedded demo data
  python -m search.run --task emotion --data data/affectnet --trials 50 --gpus-per-trial 0.5
  python -m search.run --task deepfake --space spaces/demo.yaml --resume   # after a crash
  ray start --head ...; python -m search.run --task attributes --data /nfs/celeba --address auto

The experiment folder RESULTS/TASK/NAME holds the study (study.journal), trials/*.parquet,
epochs/*.parquet, tensorboard/, Ray Tune's state (ray/) and the resolved space (space.yaml).
"""




def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m search.run",
        description="Search backbones and hyperparameters of L-SSAT for one face-analysis task: "
        "Optuna TPE proposes configs, Ray Tune runs them (ASHA stops weak ones early), every "
        "finished trial is written to Parquet and TensorBoard.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--task",
        required=True,
        help="deepfake | attributes | emotion | classify (any prepared folder)",
    )
    p.add_argument("--space", help="search-space YAML (default: spaces/TASK.yaml)")
    p.add_argument(
        "--data",
        help="prepared dataset folder, or demo:NAME for an embedded demo (demo:sbi, demo:swap "
        "for deepfake; demo:faces, demo:digits for classify); default: demo:sbi for deepfake, "
        "other tasks need one, see `python -m lssat.data.prepare`",
    )
    p.add_argument(
        "--trials",
        type=int,
        help="trial budget (default: the space's 'trials'); on --resume it may grow",
    )
    p.add_argument(
        "--max-concurrent",
        type=int,
        help="trials running at once (default: as many as the cluster can hold at its "
        "largest: the autoscaler's node types at their max_workers, else the live nodes)",
    )
    p.add_argument(
        "--cpus-per-trial",
        type=float,
        default=1.0,
        help="CPUs per trial, fractions allowed (default: 1)",
    )
    p.add_argument(
        "--gpus-per-trial",
        type=float,
        default=0.0,
        help="GPUs per trial, fractions share a GPU, e.g. 0.25 (default: 0)",
    )
    p.add_argument(
        "--workers-per-trial",
        type=int,
        default=1,
        help="data-parallel workers per trial under Ray Train, each holding --cpus-per-trial "
        "and --gpus-per-trial (default: 1 = a plain trial)",
    )
    p.add_argument(
        "--max-failures",
        type=int,
        default=0,
        help="times a trial whose process died (killed, out of host memory, lost or "
        "preempted node) is restarted from its last checkpoint before it is recorded FAIL; "
        "-1 = no limit (default: 0). An exception of the trial's own code is FAIL at once",
    )
    p.add_argument(
        "--wait-warning",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="print one line when a trial has waited this long for resources (default: 60)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved space, the trials at once the cluster allows, the budget and "
        "a rough GPU-hour estimate, then exit without running anything",
    )
    p.add_argument(
        "--epoch-minutes",
        type=float,
        help="--dry-run: minutes one epoch of one trial takes, for the GPU-hour estimate "
        "(default: measured from the experiment's epochs when resuming, else 1)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        help="epochs per trial (default: the space's fixed 'epochs'); also ASHA's horizon",
    )
    p.add_argument("--name", help="experiment name (default: the space file's name)")
    p.add_argument("--results", default="results", help="results root (default: results)")
    p.add_argument(
        "--storage",
        help="Optuna RDB URL, e.g. postgresql://user@host/db "
        "(default: a journal file in the experiment folder)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the search in the experiment folder up to its trial budget",
    )
    p.add_argument(
        "--address",
        help="Ray cluster to join: 'auto' (after `ray start`) or "
        "ray://HOST:PORT (default: start a local Ray bound to 127.0.0.1)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the sampler and of trial i (seed + i); default 0",
    )
    p.add_argument(
        "--grace-period",
        type=int,
        help="ASHA: epochs every trial runs before it can be stopped (default: space "
        "'scheduler', else ceil(0.33 x epochs))",
    )
    p.add_argument(
        "--reduction-factor",
        type=int,
        help="ASHA: keep the top 1/N at each rung (default: space, else 2)",
    )
    p.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep each finished trial's last checkpoint (default: delete them)",
    )
    p.add_argument(
        "--no-dashboard",
        action="store_true",
        help="do not start the Ray dashboard of a local cluster",
    )
    p.add_argument(
        "--allow-test-selection",
        action="store_true",
        help="search a dataset whose validation split is its test split (no val rows); the "
        "trial rows and the report then say so (default: refused)",
    )
    p.add_argument(
        "--final-top-k",
        type=int,
        help="after the search, retrain the top K configurations and score them on the "
        "held-out test split (search.final; default: the space's final.top_k, else no final)",
    )
    p.add_argument(
        "--final-front",
        action="store_true",
        help="multi-objective search: after it, retrain every configuration on the Pareto "
        "front (search.final --front) instead of the top K",
    )
    p.add_argument(
        "--final-per",
        metavar="PARAM",
        help="after the search, the confirmation stage: retrain the best configuration of "
        "each level of PARAM (e.g. backbone) and score them on the test split "
        "(search.final --per PARAM)",
    )
    p.add_argument(
        "--final-seeds",
        type=int,
        help="seeds per configuration of that final stage (default: the space's "
        "final.seeds, else 3)",
    )
    p.add_argument(
        "--weights-dir",
        help="folder of <backbone>.safetensors pretrained weights for 'pretrained: true' "
        "(default: $LSSAT_WEIGHTS, else timm downloads them; fill it with "
        "`python -m search.weights fetch`)",
    )
    p.add_argument(
        "--no-pretrained",
        action="store_true",
        help="train every backbone from scratch (pretrained: false), e.g. on a machine "
        "without the weights and without internet",
    )
    p.add_argument(
        "--warm-start",
        metavar="EXPERIMENT_DIR",
        help="start from another search's results (another task, or another dataset of this "
        "one): its top configurations run first and TPE uses its trials as prior observations "
        "(see docs/search.md, Warm start)",
    )
    p.add_argument(
        "--warm-start-k",
        type=int,
        help="configurations of --warm-start to enqueue first (default: 5)",
    )
    p.add_argument("--verbose", action="store_true", help="show Ray's and the workers' logs")
    return p


def _fail(message: str) -> NoReturn:
    raise ConfigError(message)


def check_args(args: argparse.Namespace) -> None:
    """One-sentence ConfigError for each bad value (before anything starts)."""
    from lssat.tasks import TASKS

    if args.task not in TASKS:
        _fail(f"--task is {args.task!r}; allowed: {', '.join(sorted(TASKS))}")
    for flag, value, low in (
        ("--trials", args.trials, 1),
        ("--max-concurrent", args.max_concurrent, 1),
        ("--epochs", args.epochs, 1),
        ("--grace-period", args.grace_period, 1),
        ("--reduction-factor", args.reduction_factor, 2),
        ("--workers-per-trial", args.workers_per_trial, 1),
        ("--max-failures", args.max_failures, -1),
        ("--final-top-k", getattr(args, "final_top_k", None), 1),
        ("--final-seeds", getattr(args, "final_seeds", None), 1),
    ):
        if value is not None and value < low:
            _fail(f"{flag} is {value}; it must be at least {low}")
    wait = getattr(args, "wait_warning", 60.0)
    if wait is not None and not (math.isfinite(wait) and wait >= 0):
        _fail(f"--wait-warning is {wait}; it must be 0 or more seconds")
    minutes = getattr(args, "epoch_minutes", None)
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        _fail(f"--epoch-minutes is {minutes}; it must be above 0")
    if not (math.isfinite(args.cpus_per_trial) and args.cpus_per_trial > 0):
        _fail(f"--cpus-per-trial is {args.cpus_per_trial}; it must be above 0")
    if not (math.isfinite(args.gpus_per_trial) and args.gpus_per_trial >= 0):
        _fail(f"--gpus-per-trial is {args.gpus_per_trial}; it must be 0 or more")
    if args.gpus_per_trial > 1 and not float(args.gpus_per_trial).is_integer():
        _fail(f"--gpus-per-trial is {args.gpus_per_trial}; above 1 it must be a whole number")
    if args.workers_per_trial > 1 and 0 < args.gpus_per_trial < 1:
        _fail(
            f"--gpus-per-trial is {args.gpus_per_trial} with --workers-per-trial "
            f"{args.workers_per_trial}; data-parallel workers need whole GPUs (NCCL)"
        )
    if args.seed < 0:
        _fail(f"--seed is {args.seed}; it must be 0 or more")
    from search.optimize.warm import check_k

    check_k(getattr(args, "warm_start_k", None), getattr(args, "warm_start", None) is not None)
    if args.name is not None and not NAME_RE.match(args.name):
        _fail(f"--name is {args.name!r}; use letters, digits, '.', '_' and '-' only")
    if args.address is not None and not args.address.strip():
        _fail("--address is empty; give 'auto' or ray://HOST:PORT")
    if args.storage is not None:
        from search.optimize.study import check_storage_url

        check_storage_url(args.storage)
    from lssat.descriptors import get_backend

    try:
        get_backend()  # $LSSAT_DESCRIPTOR_BACKEND, passed on to every trial
    except ValueError as exc:
        _fail(str(exc))


def request_from_args(args: argparse.Namespace) -> Request:
    """The checked command line as one frozen, typed request (the only reader of ``args``)."""
    from search.execution.ray_init import RayOptions
    from search.execution.resources import TrialResources

    check_args(args)
    return Request(
        task=args.task,
        space=args.space,
        data=args.data,
        trials=args.trials,
        epochs=args.epochs,
        name=args.name,
        results=args.results,
        storage=args.storage,
        resume=bool(args.resume),
        seed=args.seed,
        resources=TrialResources(
            cpus=float(args.cpus_per_trial),
            gpus=float(args.gpus_per_trial),
            workers=int(args.workers_per_trial),
            max_concurrent=args.max_concurrent,
            max_failures=int(args.max_failures),
        ),
        ray=RayOptions(
            address=args.address, verbose=bool(args.verbose), dashboard=not args.no_dashboard
        ),
        grace_period=args.grace_period,
        reduction_factor=args.reduction_factor,
        wait_warning=float(args.wait_warning),
        keep_checkpoints=bool(args.keep_checkpoints),
        allow_test_selection=bool(args.allow_test_selection),
        final_top_k=args.final_top_k,
        final_front=bool(args.final_front),
        final_seeds=args.final_seeds,
        final_per=args.final_per,
        weights_dir=args.weights_dir,
        warm_start=args.warm_start,
        warm_start_k=args.warm_start_k,
        dry_run=bool(args.dry_run),
        epoch_minutes=args.epoch_minutes,
        pretrained=not getattr(args, "no_pretrained", False),
    )


def run(args: argparse.Namespace) -> int:
    """``python -m search.run``: the request, its plan, then the dry run or the search."""
    req = request_from_args(args)
    import optuna

    from search.driver.dry_run import dry_run
    from search.driver.plan import resolve
    from search.driver.session import run_search

    optuna.logging.set_verbosity(optuna.logging.INFO if req.ray.verbose else optuna.logging.WARNING)
    plan = resolve(req)
    return dry_run(plan) if req.dry_run else run_search(plan)


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), run, argv, interrupted=RESUME)
