"""``python -m search.final EXPERIMENT_DIR``: the held-out stage of a finished search.

Takes the top-k COMPLETE configurations by the value the search optimised (what Optuna was
told), or with ``--per backbone`` the best configuration of each backbone (the confirmation
stage), retrains each with ``--seeds`` new seeds derived from the search seed for the full epoch
budget, and evaluates every run once, after its last epoch, on the held-out test split and on
every ``--eval-data NAME=PREPARED_DIR`` set, with 95 % bootstrap intervals over videos. Runs
are Ray Tune trials with the search's resources and failure handling; each writes
``final/<trial_id>-s<seed>.parquet`` (schema: ``search.results.FINAL_COLUMNS``) and keeps its
weights as ``final/<trial_id>-s<seed>.safetensors`` (score them later with
``python -m search.evaluate``). Ctrl-C stops; the same command plus ``--resume`` continues.
Exit codes: 0 done, 1 every run failed, 2 bad input (nothing written), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from search.cli import RESUME, Parser, run_cli
from search.execution.ray_init import RayOptions
from search.stages.final import DEFAULT_SEEDS, DEFAULT_TOP_K, FinalRequest, run_final


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m search.final",
        description="Retrain the search's top configurations with new seeds and score them "
        "once on the held-out test split (and extra sets), with 95%% bootstrap intervals.",
    )
    p.add_argument("experiment", help="experiment folder of search.run (RESULTS/TASK/NAME)")
    p.add_argument("--top-k", type=int, help=f"configurations to retrain (default "
                   f"{DEFAULT_TOP_K}, or the space's final.top_k)")  # fmt: skip
    p.add_argument("--seeds", type=int, help=f"seeds per configuration (default {DEFAULT_SEEDS}, "
                   "or the space's final.seeds)")  # fmt: skip
    p.add_argument("--front", action="store_true",
                   help="retrain every COMPLETE trial on the Pareto front of a multi-objective "
                   "search (instead of the top-k by the first objective)")  # fmt: skip
    p.add_argument("--per", metavar="PARAM",
                   help="the confirmation stage: retrain the best configuration of each level "
                   "of PARAM (e.g. backbone) by the selection rule, so levels are compared on "
                   "test with paired intervals (instead of --top-k)")  # fmt: skip
    p.add_argument("--eval-data", action="append", metavar="NAME=PREPARED_DIR",
                   help="an extra held-out set (cross-dataset); repeat for several")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue or extend an earlier run")
    p.add_argument("--n-resamples", type=int, default=1000, help="bootstrap resamples (1000)")
    p.add_argument("--max-concurrent", type=int, help="runs at once (default: what fits)")
    p.add_argument("--max-failures", type=int, default=0,
                   help="restarts of a crashed run from its checkpoint (default 0)")  # fmt: skip
    p.add_argument("--address", help="Ray cluster to join (default: a local Ray)")
    p.add_argument("--no-dashboard", action="store_true", help="no Ray dashboard")
    p.add_argument("--verbose", action="store_true", help="show Ray's and the workers' logs")
    return p


def request_from_args(args: argparse.Namespace) -> FinalRequest:
    """The command line as a typed :class:`FinalRequest`."""
    return FinalRequest(
        experiment=args.experiment, top_k=args.top_k, seeds=args.seeds, front=bool(args.front),
        per=args.per,
        eval_data=tuple(args.eval_data or ()), resume=bool(args.resume),
        n_resamples=args.n_resamples, max_concurrent=args.max_concurrent,
        max_failures=args.max_failures,
        ray=RayOptions(address=args.address, verbose=bool(args.verbose),
                       dashboard=not args.no_dashboard),
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    return run_final(request_from_args(args))


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), run, argv, interrupted=RESUME)


if __name__ == "__main__":
    sys.exit(main())
