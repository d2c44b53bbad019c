"""What every ``python -m search.*`` command shares: one-line errors with exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

from lssat.errors import LssatError

RESUME = "continue with the same command plus --resume"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def run_cli(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], object],
    argv: list[str] | None = None,
    *,
    interrupted: str | None = None,
) -> int:
    """Parse ``argv`` and call ``run``; its int is the exit code (anything else: 0).
    An :class:`LssatError` becomes one ``error:`` line and exit 2; Ctrl-C prints
    ``interrupted`` (how to continue) and exits 130 when it is given."""
    args = parser.parse_args(argv)
    try:
        code = run(args)
        return code if isinstance(code, int) else 0  # e.g. evaluate returns its metrics
    except LssatError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        print(f"interrupted; {interrupted}", file=sys.stderr)
        return 130
