"""``python -m search.run --task TASK``: Optuna-guided search over Ray Tune with early stopping.

See ``--help`` and docs/search.md. Exit codes: 0 done, 1 every trial failed or an unexpected
error, 2 bad command line / space file / data, 130 interrupted (continue with ``--resume``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from lssat.errors import ConfigError, DataError, LssatError, ResultsWriteError
from search.cli import RESUME, Parser, run_cli

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
    from search.warm import check_k

    check_k(getattr(args, "warm_start_k", None), getattr(args, "warm_start", None) is not None)
    if args.name is not None and not NAME_RE.match(args.name):
        _fail(f"--name is {args.name!r}; use letters, digits, '.', '_' and '-' only")
    if args.address is not None and not args.address.strip():
        _fail("--address is empty; give 'auto' or ray://HOST:PORT")
    if args.storage is not None:
        from search.study import check_storage_url

        check_storage_url(args.storage)
    from lssat.descriptors import get_backend

    try:
        get_backend()  # $LSSAT_DESCRIPTOR_BACKEND, passed on to every trial
    except ValueError as exc:
        _fail(str(exc))


def _ray_init(args: argparse.Namespace) -> Any:
    """Join ``--address`` or start a local Ray whose servers all listen on 127.0.0.1."""
    if args.address is None:
        # Read by Ray when it is imported: a local node then binds every server (GCS, raylet,
        # object manager, dashboard agent) to the loopback address instead of the host's IP.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # a reused actor waits this long for the previous trial's thread to end; Ray's 2 s default
    # runs out on a loaded machine, and the next trial then errors before it starts (the
    # Recorder never sees it): read by the trial actors, which inherit this environment
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", "120")
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"  # a missing metric is a FAIL
    # our Recorder writes the results and the TensorBoard runs: no CSV/JSON/TBX copies from Ray
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    # Tune's own progress tables stay quiet (the Recorder prints one line per event) unless
    # --verbose
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "1" if args.verbose else "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # a failed trial is one Recorder line (its traceback stays in the trial folder's error.txt)
    os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "1" if args.verbose else "0")
    import ray

    if ray.is_initialized():  # the caller started Ray (search.demo) and will shut it down
        return ray
    level = logging.INFO if args.verbose else logging.WARNING
    kwargs: dict[str, Any] = {"logging_level": level, "log_to_driver": bool(args.verbose)}
    if args.address is None:
        ray.init(
            include_dashboard=not args.no_dashboard,
            dashboard_host="127.0.0.1",
            _node_ip_address="127.0.0.1",
            **kwargs,
        )
    else:
        try:
            ray.init(address=args.address, **kwargs)
        except Exception as exc:  # ConnectionError, ValueError, RuntimeError, gRPC errors
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"--address {args.address!r}: cannot join a Ray cluster ({first})"
            ) from exc
    if not args.verbose:  # Tune looks for its own result files, which the Recorder replaces
        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
        # a state snapshot that cannot be written (full disk): one line, not a traceback
        logging.getLogger("ray.tune.execution.experiment_state").addFilter(_one_line)
    return ray


def ray_connected() -> bool:
    """True when this process is already connected to Ray (without importing Ray)."""
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def _one_line(record: logging.LogRecord) -> bool:
    """Logging filter: keep the record, drop its traceback, append the exception's last line."""
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        record.msg = f"{record.getMessage()} {type(exc).__name__}: {exc}"
        record.args, record.exc_info, record.exc_text = None, None, None
    return True


def _concurrency(shape: Any, args: argparse.Namespace, local: bool) -> int:
    """Trials at once: what the cluster can hold at its largest (``shape``, see
    :mod:`search.capacity`), or ``--max-concurrent``; never today's free resources.

    A trial holds ``--workers-per-trial`` x (``--cpus-per-trial``, ``--gpus-per-trial``), plus a
    0.01-CPU coordinator when it has several workers. A trial no node (type) can ever hold is
    refused with one sentence, except on a joined cluster whose autoscaler is unknown to the
    driver and where ``--max-concurrent`` is given (nodes may still join).
    """
    from search.capacity import describe, trial_bundles, trials_that_fit

    n = max(1, int(getattr(args, "workers_per_trial", 1) or 1))
    bundles = trial_bundles(args.cpus_per_trial, args.gpus_per_trial, n)
    fits = trials_that_fit(shape.nodes, bundles)
    if fits < 1 and (local or shape.autoscaling or args.max_concurrent is None):
        where = (
            "no node type of the autoscaler can ever hold it"
            if shape.autoscaling
            else "this machine cannot hold it"
            if local
            else "no node of this cluster can hold it (if it autoscales, run the search on "
            "its head node, where the autoscaler runs, or give --max-concurrent)"
        )
        _fail(
            f"a trial asks for {describe(bundles)}, but {where}: {shape.largest()}"
            f"{_fit_hint(shape, args, n)}"
        )
    fits = max(fits, 1)
    if args.max_concurrent is None:
        return fits
    if args.max_concurrent > fits and local:
        print(
            f"note: --max-concurrent {args.max_concurrent} lowered to {fits}: more would wait "
            "for resources",
            flush=True,
        )
        return fits
    return args.max_concurrent


def _fit_hint(shape: Any, args: argparse.Namespace, n: int) -> str:
    """'; use --cpus-per-trial 0.99 or less' when only the coordinator's share is missing."""
    from search.capacity import COORDINATOR_CPU, trial_bundles, trials_that_fit

    if n < 2:
        return ""
    lower = math.floor((args.cpus_per_trial * n - COORDINATOR_CPU) / n * 100) / 100
    if lower <= 0 or lower >= args.cpus_per_trial:
        return ""
    if trials_that_fit(shape.nodes, trial_bundles(lower, args.gpus_per_trial, n)) < 1:
        return ""
    return (
        f"; its {n} workers fill the CPUs and the coordinator needs {COORDINATOR_CPU:g} more: "
        f"use --cpus-per-trial {lower:g} or less"
    )


def _space_path(args: argparse.Namespace) -> Path:
    from search.space import default_space_path

    return Path(args.space) if args.space else default_space_path(args.task)


def _prepare(args: argparse.Namespace) -> dict[str, Any]:
    """Resolve the space, the data and the experiment folder; fresh start or resume."""
    from lssat.data import resolve_data
    from search import results
    from search.space import load_space
    from search.study import STUDY_FILE, check_resumable, load_settings

    space_path = _space_path(args)
    name = args.name or space_path.stem
    exp_dir = Path(args.results).expanduser().resolve() / args.task / name
    settings = load_settings(exp_dir)
    exists = (
        settings is not None
        or (exp_dir / STUDY_FILE).exists()
        or any((exp_dir / results.TRIALS_DIR).glob("*.parquet"))
    )
    resume = bool(args.resume and exists)
    if exists and not args.resume:
        _fail(
            f"experiment folder {exp_dir} already holds a search; add --resume to continue "
            "it or pick another --name"
        )
    if args.resume and not exists:
        print(f"note: nothing to resume in {exp_dir}; starting a new search", flush=True)
    if resume and settings is None:
        _fail(f"experiment folder {exp_dir} has no search.json; it cannot be resumed")
    if resume:
        check_resumable(exp_dir, settings)

    if resume:
        saved = exp_dir / "space.yaml"
        space = load_space(saved, args.task)
        if args.space:
            given = load_space(space_path, args.task)
            given.fixed["epochs"] = space.epochs  # --epochs overrides are compared below
            ignore = {"trials": 0, "final": None}  # the budget and final stage may change
            if given.to_dict() | ignore != space.to_dict() | ignore:
                _fail(
                    f"--space {space_path} differs from the space this search started with "
                    f"({saved}); resume without --space or pick another --name"
                )
        if args.epochs is not None and args.epochs != space.epochs:
            _fail(
                f"--epochs is {args.epochs}, but this search runs {space.epochs} epochs per "
                "trial; it cannot change on --resume"
            )
        if (
            args.data is not None
            and str(resolve_data(args.data, args.task).resolve()) != settings["data"]
        ):
            _fail(
                f"--data is {args.data}, but this search trains on {settings['data']}; it "
                "cannot change on --resume"
            )
        data = Path(settings["data"])
        if not data.is_dir():
            again = settings.get("demo_data") or (None if settings.get("demo") else data)
            data = resolve_data(again, args.task).resolve()
        budget = args.trials or int(settings["trials"])
        seed = int(settings["seed"])
        storage = _resume_storage(args, exp_dir, settings.get("storage"))
        sessions = list(settings.get("sessions", []))
    else:
        space = load_space(space_path, args.task)
        if args.epochs is not None:
            space.fixed["epochs"] = args.epochs
            from search.space import check_space

            check_space(space)
        if args.trials is not None:
            space.trials = args.trials
        data = resolve_data(args.data, args.task).resolve()
        budget = space.trials
        seed = args.seed
        storage = args.storage
        sessions = []
        settings = {}
    from search.objectives import check_device

    check_device(space, args.gpus_per_trial, str(space_path))
    if getattr(args, "final_front", False):
        if getattr(args, "final_top_k", None) is not None:
            _fail("--final-front and --final-top-k exclude each other")
        if not space.multi_objective:
            _fail(f"--final-front needs a multi-objective space, but {space_path} has one metric")
    allow = bool(
        getattr(args, "allow_test_selection", False) or settings.get("allow_test_selection")
    )
    check_protocol(data, allow, final_wanted(args, space) is not None)
    warm = _warm_plan(args, space, budget, settings if resume else None)
    return {
        "warm": warm,
        "space": space,
        "space_path": space_path,
        "name": name,
        "exp_dir": exp_dir,
        "resume": resume,
        "data": data,
        "budget": budget,
        "seed": seed,
        "storage": storage,
        "sessions": sessions,
        "settings": settings,
        "allow_test_selection": allow,
    }


def _warm_plan(
    args: argparse.Namespace, space: Any, budget: int, settings: dict[str, Any] | None
) -> Any:
    """The warm start (:mod:`search.warm`) of a new search, or the prior of a resumed one
    (nothing is enqueued again on --resume); None without one."""
    from search.warm import check_k, plan, read_source

    given = getattr(args, "warm_start", None)
    if settings is not None:  # resume: the saved source, if any, only as TPE's prior
        saved = (settings.get("warm_start") or {}).get("from")
        if given is not None and (saved is None or Path(given).resolve() != Path(saved)):
            _fail(
                f"--warm-start is {given}, but this search started "
                + (f"from {saved}" if saved else "without one")
                + "; it cannot change on --resume"
            )
        if saved is None:
            return None
        try:
            warm = plan(space, read_source(saved), 0)
        except LssatError as exc:
            print(f"note: no TPE prior on this resume: {exc}", flush=True)
            return None
        warm.enqueue, warm.skipped = [], []
        return warm
    if given is None:
        return None
    if space.sampler_name == "grid":
        _fail(
            f"--warm-start cannot be combined with sampler grid in {space.path} (the grid "
            "trains every configuration once)"
        )
    k = check_k(getattr(args, "warm_start_k", None), True)
    room = max(0, budget - len(space.enqueue))
    warm = plan(space, read_source(given), min(k, room))
    for line in warm.describe(k):
        print(line, flush=True)
    if k > room:
        print(f"note: --warm-start-k {k} lowered to {room}: the trial budget is {budget}")
    if space.sampler_name != "tpe":
        print(f"note: sampler {space.sampler_name} uses no prior observations", flush=True)
    elif space.multi_objective:
        print("note: a multi-objective study runs the enqueued configurations but uses no "
              "prior observations (they carry one value each)", flush=True)
    return warm


def _resume_storage(args: argparse.Namespace, exp_dir: Path, saved: str | None) -> str | None:
    """The study URL of a resumed search: ``search.json`` keeps it without its password, so a
    password-protected one comes again from ``--storage`` or ``$LSSAT_STORAGE_URL``."""
    from search.redact import ENV_VAR, MASK, redact_url
    from search.study import check_storage_url, storage_label

    given = args.storage or (os.environ.get(ENV_VAR) or None if saved else None)
    if given is not None and saved is not None:
        check_storage_url(given)
    if given is None:
        if saved and MASK in saved:
            _fail(
                f"this search's study is at {saved}, whose password is not saved; give the "
                f"full URL again with --storage or the environment variable {ENV_VAR}"
            )
        return saved
    if saved is None or redact_url(given) != redact_url(saved):
        _fail(
            f"--storage differs from the study storage this search started with "
            f"({storage_label(exp_dir, saved)})"
        )
    return given


def check_protocol(data: Path, allow_test_selection: bool, final: bool) -> None:
    """Refuse a dataset that would select on its test split (unless allowed), and a final
    stage on a dataset without test rows, before anything is written."""
    from lssat.data.selection import val_is_test
    from lssat.data.shards import META_FILE, read_json

    meta = read_json(data / META_FILE, "dataset meta file")
    if val_is_test(meta) and not allow_test_selection:
        _fail(
            f"dataset {data} validates on its test split (it has no val rows), so the search "
            "would select on the numbers it reports; prepare it with a val split or pass "
            "--allow-test-selection"
        )
    if final and not meta.get("counts", {}).get("test", {}).get("rows", 0):
        _fail(f"dataset {data} has no test rows, so the final stage has nothing to test on")


def final_wanted(args: argparse.Namespace, space: Any) -> tuple[int, int] | None:
    """(top_k, seeds) of the final stage to run after the search, or None; top_k 0 = the
    Pareto front (``--final-front``)."""
    if getattr(args, "final_front", False):
        return 0, int(getattr(args, "final_seeds", None) or space.final.get("seeds", 3))
    top_k = getattr(args, "final_top_k", None) or space.final.get("top_k")
    if not top_k:
        return None
    return int(top_k), int(getattr(args, "final_seeds", None) or space.final.get("seeds", 3))


def _run_final(ray: Any, args: argparse.Namespace, exp_dir: Path, want: tuple[int, int]) -> Any:
    """The held-out stage (:mod:`search.final`) on this search; returns the Ray in use."""
    from search import final
    from search.results import FINAL_DIR

    ns = argparse.Namespace(
        experiment=str(exp_dir), top_k=want[0] or None, seeds=want[1], eval_data=None,
        front=want[0] == 0,
        resume=(exp_dir / FINAL_DIR / final.SETTINGS_FILE).is_file(), n_resamples=1000,
        max_concurrent=args.max_concurrent, max_failures=args.max_failures,
        address=args.address, verbose=args.verbose, no_dashboard=args.no_dashboard,
    )  # fmt: skip
    try:
        ctx = final.prepare(ns)
    except LssatError as exc:
        print(f"note: no final stage: {exc}", flush=True)
        return ray
    if ctx["note"]:
        print(f"note: {ctx['note']}", flush=True)
    if ctx["todo"]:
        ray = ray or _ray_init(args)
        final.run_stage(ray, ctx, ns)
    return ray


def run(args: argparse.Namespace) -> int:
    """The search itself; returns the exit code."""
    t_start = time.time()
    check_args(args)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.INFO if args.verbose else optuna.logging.WARNING)
    ctx = _prepare(args)
    space, exp_dir = ctx["space"], ctx["exp_dir"]
    from lssat.weights import ENV as WEIGHTS_ENV
    from search.weights import describe, weights_table

    saved_weights = ctx["settings"].get("weights_dir") if ctx["resume"] else None
    given_weights = args.weights_dir or os.environ.get(WEIGHTS_ENV) or saved_weights
    ctx["weights"] = weights_table(space, given_weights, str(ctx["space_path"]))  # before writes
    if args.dry_run:
        return _dry_run(args, ctx)
    check_writable(exp_dir)
    name, budget, seed = ctx["name"], ctx["budget"], ctx["seed"]
    from search.redact import redact_url
    from search.study import (
        StudyRef,
        derive_seed,
        reconcile,
        save_settings,
        storage_label,
        study_name,
    )

    session = len(ctx["sessions"])
    ref = StudyRef(
        str(exp_dir),
        study_name(args.task, name),
        space.mode,
        ctx["storage"],
        sampler_seed=derive_seed(seed, session),
        sampler_opts=space.sampler_kwargs(),
        metric=space.metric,
        objectives=dict(space.objectives),
        # a multi-objective study gets the enqueued configurations but no single-value prior
        prior=ctx["warm"].prior if ctx["warm"] and not space.multi_objective else [],
    )
    if ctx["resume"]:
        state = reconcile(ref)
        finished, pending = state.finished, state.pending
        if state.repaired:
            print(f"repaired the study from Parquet for trials {state.repaired}", flush=True)
    else:
        finished, pending = 0, []
        if ctx["storage"]:
            import optuna

            if ref.name in optuna.study.get_all_study_names(storage=ref.storage):
                where = storage_label(exp_dir, ctx["storage"])
                _fail(f"study {ref.name!r} already exists at {where}; pick another --name")
    new = max(0, budget - finished - len(pending))
    num_samples = len(pending) + new
    aim = (
        ", ".join(f"{k} ({v})" for k, v in space.objectives.items())
        + f"; early stopping on {space.metric}"
        if space.multi_objective
        else f"{space.metric} ({space.mode})"
    )
    print(
        f"search {args.task}/{name}: {budget} trials x {space.epochs} epochs, {aim}; "
        f"data {ctx['data']}",
        flush=True,
    )
    print(describe(space, *ctx["weights"]), flush=True)
    if ctx["resume"]:
        print(f"resuming: {finished} finished, {len(pending)} to run again, {new} new", flush=True)
    ray_was_up = ray_connected()  # e.g. search.demo: one Ray for several searches, kept up
    ray = _ray_init(args) if num_samples > 0 else None  # a bad --address fails before any write
    try:
        if ray is not None:  # an impossible request stops here, before anything is written
            ctx["shape"] = _shape(ray, args)
            ctx["concurrent"] = _concurrency(ctx["shape"], args, args.address is None)
        if not ctx["resume"]:
            exp_dir.mkdir(parents=True, exist_ok=True)
            for params in space.enqueue:
                ref.study.enqueue_trial(params, skip_if_exists=True)
            if ctx["warm"]:  # after the space's own enqueue; never again on --resume
                from search.warm import ATTR_WARM

                for params in ctx["warm"].enqueue:
                    ref.study.enqueue_trial(params, user_attrs={ATTR_WARM: ctx["warm"].source})
            space.dump(exp_dir / "space.yaml")
        demo_data = (
            ctx["settings"].get("demo_data")
            if ctx["resume"]
            else (args.data if str(args.data).startswith("demo:") else None)
        )
        demo = bool(ctx["settings"].get("demo")) if ctx["resume"] else demo_data is not None
        demo = demo or (not ctx["resume"] and args.data is None)
        ctx["demo"] = demo_data or demo  # "demo:swap" (resolved by name on each node), or bool
        session_info = {
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "sampler_seed": ref.sampler_seed,
            "resumed": len(pending),
            "new": new,
        }
        save_settings(
            exp_dir,
            {
                "task": args.task,
                "name": name,
                "space_file": str(ctx["space_path"]),
                "data": str(ctx["data"]),
                "demo": demo,
                "demo_data": demo_data,
                "trials": budget,
                "seed": seed,
                "metric": space.metric,
                "mode": space.mode,
                # a list keeps the objectives' order (this file is written with sorted keys)
                "objectives": [f"{k}:{v}" for k, v in space.objectives.items()] or None,
                "epochs": space.epochs,
                "storage": redact_url(ctx["storage"]),  # never the password
                "cpus_per_trial": args.cpus_per_trial,
                "gpus_per_trial": args.gpus_per_trial,
                "workers_per_trial": args.workers_per_trial,
                "allow_test_selection": ctx["allow_test_selection"],
                "weights_dir": str(ctx["weights"][0]) if ctx["weights"][0] else None,
                "warm_start": _warm_settings(ctx),
                "sessions": ctx["sessions"] + [session_info],
            },
        )
        if ray is not None:
            _tune(ray, args, ctx, ref, finished, pending, num_samples, session)
        want = final_wanted(args, space)
        if want is not None and len(_finished_numbers(exp_dir)) >= budget:
            ray = _run_final(ray, args, exp_dir, want)
    finally:
        if ray is not None and not ray_was_up:
            ray.shutdown()
    from search.summary import summarise

    code = summarise(exp_dir, ref, budget, time.time() - t_start)
    done = len(_finished_numbers(exp_dir))
    if done < budget:
        print(
            f"note: {done}/{budget} trials finished; run the same command with --resume to "
            "finish the search",
            flush=True,
        )
    return code


def _warm_settings(ctx: dict[str, Any]) -> dict[str, Any] | None:
    """``search.json``'s record of the warm start (kept as first written on --resume)."""
    if ctx["resume"]:
        return ctx["settings"].get("warm_start")
    warm = ctx["warm"]
    if warm is None:
        return None
    return {
        "from": warm.source,
        "enqueued": warm.enqueue,
        "skipped": warm.skipped,
        "prior_trials": len(warm.prior),
        "shared": warm.shared,
    }


def _dry_run(args: argparse.Namespace, ctx: dict[str, Any]) -> int:
    """``--dry-run``: what the search would do, from a read-only look; nothing is written."""
    import yaml

    from search.capacity import describe, rough_gpu_hours, trial_bundles

    space, exp_dir, budget = ctx["space"], ctx["exp_dir"], ctx["budget"]
    done = len(_finished_numbers(exp_dir)) if ctx["resume"] else 0
    print(f"dry run: {args.task}/{ctx['name']} in {exp_dir} (nothing is run or written)")
    print("resolved space:")
    print(yaml.safe_dump(space.to_dict(), sort_keys=False).rstrip())
    ray = _ray_init(args)
    try:
        shape = _shape(ray, args)
        concurrent = _concurrency(shape, args, args.address is None)
    finally:
        ray.shutdown()
    n = args.workers_per_trial
    bundles = trial_bundles(args.cpus_per_trial, args.gpus_per_trial, n)
    print(
        f"trials at once: {concurrent}{_why(shape, args) or ' (the live nodes)'}; "
        f"each asks for {describe(bundles)}; {shape.largest()}"
    )
    left = max(0, budget - done)
    print(f"trial budget: {budget} x {space.epochs} epochs ({done} finished, {left} to run)")
    measured = _epoch_minutes(exp_dir) if ctx["resume"] else None
    minutes = args.epoch_minutes or measured or 1.0
    source = (
        "--epoch-minutes"
        if args.epoch_minutes
        else "measured in this experiment"
        if measured
        else "assumed; set --epoch-minutes"
    )
    grace, rf = _asha_settings(args, space)
    gpus = args.gpus_per_trial * n
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


def _epoch_minutes(exp_dir: Path) -> float | None:
    """Median minutes per epoch of the experiment's epoch rows, if any."""
    from search import results

    if not (exp_dir / results.EPOCHS_DIR).is_dir():
        return None
    epochs = results.read_epochs(exp_dir)
    if epochs.empty or "epoch_time_s" not in epochs:
        return None
    value = epochs["epoch_time_s"].dropna().median()
    return float(value) / 60.0 if math.isfinite(value) and value > 0 else None


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


def _finished_numbers(exp_dir: Path) -> set[int]:
    from search import results

    trials = results.read_trials(exp_dir)
    return set() if trials.empty else {int(n) for n in trials["number"]}


def _tune(
    ray: Any,
    args: argparse.Namespace,
    ctx: dict[str, Any],
    ref: Any,
    finished: int,
    pending: list,
    num_samples: int,
    session: int,
) -> None:
    """Run this session's Tune experiment on the joined/started Ray."""
    space, exp_dir = ctx["space"], ctx["exp_dir"]
    from ray import tune

    from lssat.descriptors import get_backend
    from search.asha import restore_rungs, resumed_hook
    from search.capacity import describe, trial_bundles
    from search.provenance import git_commit, versions
    from search.recorder import Recorder, StopOnWriteError, disk_error
    from search.searcher import META_KEY, OptunaAskSearcher
    from search.trainable import threads_for, train_trial
    from search.waits import WaitWatch

    shape = ctx.get("shape") or _shape(ray, args)
    concurrent = ctx.get("concurrent") or _concurrency(shape, args, args.address is None)
    scheduler = make_scheduler(space, args)
    asha = space.early_stopping  # else Tune's FIFOScheduler: no rungs to restore
    if ctx["resume"] and asha:
        restored = restore_rungs(scheduler, exp_dir, space.metric, space.mode)
        if restored:
            print(f"ASHA: rung records of {restored} finished trials restored", flush=True)
    meta = {
        "data": str(ctx["data"]),
        "demo": ctx.get("demo") or False,  # resolved (built if needed) on the trial's own node
        "threads": threads_for(args.cpus_per_trial),
        "cpus": args.cpus_per_trial,
        "gpus": args.gpus_per_trial,
        "workers": args.workers_per_trial,
        "max_failures": args.max_failures,
        "train_dir": str(exp_dir / "ray" / "train"),
        "session": session,
        "descriptor_backend": get_backend(),
        "weights_dir": str(ctx["weights"][0]) if ctx["weights"][0] else None,
        "weights": ctx["weights"][1],
        "latency": "latency_ms" in space.objectives,
        **trial_fn_meta(),
    }
    searcher = OptunaAskSearcher(
        space,
        ref,
        seed=ctx["seed"],
        meta=meta,
        tb_root=str(exp_dir / "tensorboard"),
        pending=pending,
    )
    if asha:
        searcher.on_resumed = resumed_hook(scheduler, exp_dir, space.metric, space.mode)
    recorder = Recorder(
        exp_dir,
        task=args.task,
        experiment=ctx["name"],
        metric=space.metric,
        mode=space.mode,
        ref=ref,
        budget=ctx["budget"],
        finished_before=finished,
        provenance={"versions": versions(), "git_commit": git_commit()},
        keep_checkpoints=args.keep_checkpoints,
        objectives=space.objectives or None,
    )
    resources = trial_resources(args)
    workers = (
        f" on {args.workers_per_trial} Ray Train workers" if args.workers_per_trial > 1 else ""
    )
    concurrent = min(concurrent, num_samples)
    print(
        f"running {num_samples} trials, {concurrent} at a time{_why(shape, args)}, "
        f"{args.cpus_per_trial:g} CPU + {args.gpus_per_trial:g} GPU each{workers} "
        f"(Ray {ray.__version__})",
        flush=True,
    )
    bundles = trial_bundles(args.cpus_per_trial, args.gpus_per_trial, args.workers_per_trial)
    watch = WaitWatch(args.wait_warning, describe(bundles), shape.largest())
    tuner = tune.Tuner(
        tune.with_resources(train_trial, resources),
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
            verbose=2 if args.verbose else 0,
            # no num_to_keep: with it, Tune writes its whole experiment state (every trial) after
            # each checkpoint, O(trials) per epoch (issue 16, scale); the Recorder deletes a
            # trial's superseded checkpoint instead, and resume reads Parquet + the study
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            failure_config=tune.FailureConfig(max_failures=args.max_failures),
        ),
    )
    try:
        tuner.fit()
    except Exception as exc:  # Tune's own state files on a full disk end up here
        why = recorder.stopped or disk_error(exc)
        if why is None:
            raise
        recorder.stop(why if recorder.stopped else f"writing to {exp_dir} failed ({why})")
    finally:
        recorder.close()  # the epoch rows still queued reach the disk
    if recorder.stopped:
        raise ResultsWriteError(
            f"the search stopped: {recorder.stopped}; finished trials are kept in {exp_dir}: "
            "free space (or fix the folder) and run the same command with --resume"
        )


def _shape(ray: Any, args: argparse.Namespace) -> Any:
    from search.capacity import cluster_shape

    return cluster_shape(ray, joined=args.address is not None)


def _why(shape: Any, args: argparse.Namespace) -> str:
    """' (--max-concurrent)' or ' (what the autoscaler's node types hold at their largest)'."""
    if args.max_concurrent is not None:
        return " (--max-concurrent)"
    if shape.autoscaling:
        return " (what the autoscaler's node types hold at their max_workers)"
    return ""


# ASHA's defaults where neither the flags nor the space set them: tuned by replaying the
# learning-curve tables (bench/tune_replay.py, docs/search.md "Learning-curve tables")
GRACE_FRACTION = 0.33  # grace period = ceil(0.33 x the trial's epochs)
REDUCTION_FACTOR = 2


def grace_epochs(fraction: float, epochs: int) -> int:
    """Grace period of ``scheduler.grace_fraction``: ceil(fraction x epochs), 1..epochs."""
    return min(epochs, max(1, math.ceil(fraction * epochs - 1e-9)))


def _asha_settings(args: argparse.Namespace, space: Any) -> tuple[int, int]:
    """ASHA's grace period and reduction factor: the flags, else the space's (grace_period or
    grace_fraction x epochs), else GRACE_FRACTION x epochs and REDUCTION_FACTOR."""
    sched = space.scheduler
    grace = (
        getattr(args, "grace_period", None)
        or sched.get("grace_period")
        or grace_epochs(sched.get("grace_fraction", GRACE_FRACTION), space.epochs)
    )
    rf = getattr(args, "reduction_factor", None) or sched.get("reduction_factor", REDUCTION_FACTOR)
    return grace, rf


def make_scheduler(space: Any, args: argparse.Namespace) -> Any:
    """ASHA with the space's (or the flags') settings; under ``scheduler: none`` (recording
    mode) Tune's FIFOScheduler, so every trial runs all its epochs."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if not space.early_stopping:
        return FIFOScheduler()
    epochs = space.epochs
    grace, rf = _asha_settings(args, space)
    return ASHAScheduler(
        time_attr="epoch", max_t=epochs, grace_period=min(grace, epochs), reduction_factor=rf
    )


def trial_resources(args: argparse.Namespace) -> dict[str, float]:
    """Tune resources of one trial: its CPUs/GPUs, or a token CPU share when Ray Train
    workers (each with their own resources) do the work."""
    if args.workers_per_trial > 1:
        return {"cpu": 0.01}
    return {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial}


def trial_fn_meta() -> dict[str, Any]:
    """TEST-ONLY hook: ``LSSAT_TRIAL_FN=module:function`` (+ ``LSSAT_TRIAL_FN_ARGS`` JSON)
    replaces ``lssat.train.run_trial`` in every trial (see :mod:`search.faults`)."""
    import json

    spec = os.environ.get("LSSAT_TRIAL_FN", "").strip()
    if not spec:
        return {}
    if not re.match(r"^[\w.]+:\w+$", spec):
        _fail(f"LSSAT_TRIAL_FN is {spec!r}; it must be module:function")
    raw = os.environ.get("LSSAT_TRIAL_FN_ARGS", "").strip() or "{}"
    try:
        kwargs = json.loads(raw)
    except json.JSONDecodeError as exc:
        _fail(f"LSSAT_TRIAL_FN_ARGS is not a JSON object ({exc})")
    if not isinstance(kwargs, dict):
        _fail(f"LSSAT_TRIAL_FN_ARGS is {raw!r}; it must be a JSON object")
    print(f"note: test hook LSSAT_TRIAL_FN={spec} replaces run_trial", flush=True)
    return {"trial_fn": spec, "trial_fn_args": kwargs}


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), run, argv, interrupted=RESUME)


if __name__ == "__main__":
    sys.exit(main())
