"""``python -m search.replay_mo EXPERIMENT_DIR``: multi-objective replays on a recorded table;
the engine is :mod:`search.replay.mo`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from search.cli import Parser, run_cli
from search.replay.mo import run_mo
from search.replay.simulate import SEARCHERS


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m search.replay_mo",
        description="Replay multi-objective searches on a recorded grid: the hypervolume of "
        "the front found at a fraction of the grid's cost, relative to the grid's true front.",
    )
    p.add_argument("experiment", help="recorded experiment folder (e.g. bench/curves/sbi)")
    p.add_argument("--objectives", help="NAME:max|min,... starting with the table's metric "
                   "(default: METRIC:max,gflops:min)")  # fmt: skip
    p.add_argument("--searchers", default=",".join(SEARCHERS),
                   help=f"comma-separated subset of {', '.join(SEARCHERS)}")  # fmt: skip
    p.add_argument("--seeds", type=int, default=20, help="replays per searcher (default: 20)")
    p.add_argument("--concurrency", type=int, default=4, help="trials at once (default: 4)")
    p.add_argument("--space", help="take TPE's and ASHA's settings (and its objectives, unless "
                   "--objectives) from this space file")  # fmt: skip
    p.add_argument("--n-startup-trials", type=int, help="override TPE's n_startup_trials")
    p.add_argument("--grace-period", type=int, help="override ASHA's grace period")
    p.add_argument("--reduction-factor", type=int, help="override ASHA's reduction factor")
    p.add_argument("--out", help="output folder (default: EXPERIMENT/replay)")
    return p


def run(args: argparse.Namespace) -> int:
    from search.replay.cli import request_from_args

    return run_mo(request_from_args(args))


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), run, list(argv) if argv is not None else None)


if __name__ == "__main__":
    sys.exit(main())
