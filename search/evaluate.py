"""``python -m search.evaluate FINAL_WEIGHTS --data PREPARED_DIR [--name NAME]``: score a
model kept by the final stage on any prepared set (its test split, or every row when it has
none), with the final stage's metrics and 95 % bootstrap intervals; bad input: one sentence,
exit code 2. The scoring lives in :mod:`search.execution.heldout`, the stage in
:mod:`search.stages.evaluate`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from search.cli import Parser, run_cli
from search.execution.heldout import N_RESAMPLES
from search.stages.evaluate import EvaluateRequest, evaluate_weights


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m search.evaluate",
        description="Score a model kept by the final stage on a prepared dataset: the task's "
        "metrics with 95%% bootstrap intervals over videos (images where there are none).",
    )
    p.add_argument("weights", help="final/<trial_id>-s<seed>.safetensors of an experiment")
    p.add_argument("--data", required=True, help="prepared dataset folder to score on")
    p.add_argument("--name", default="eval", help="column prefix of the metrics (default eval)")
    p.add_argument("--split", help="test, val, train or all (default: test, else all rows)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--n-resamples", type=int, help="bootstrap resamples (default: the final "
                   f"run's, from the weights file; {N_RESAMPLES} when it has none)")  # fmt: skip
    p.add_argument("--seed", type=int, help="seed of the bootstrap (default: the final run's, "
                   "from the weights file; 0 when it has none)")  # fmt: skip
    p.add_argument("--out", help="also write the metrics as JSON to this file")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The command line as an :class:`EvaluateRequest`, scored."""
    return evaluate_weights(
        EvaluateRequest(
            weights=args.weights, data=args.data, name=args.name, split=args.split,
            device=args.device, n_resamples=args.n_resamples, seed=args.seed, out=args.out,
        )
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
