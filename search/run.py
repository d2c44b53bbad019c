"""``python -m search.run --task TASK``: Optuna-guided search over Ray Tune with early stopping.

See ``--help`` and docs/search.md. Exit codes: 0 done, 1 every trial failed or an unexpected
error, 2 bad command line / space file / data, 130 interrupted (continue with ``--resume``).
The command line is parsed once into a typed plan (:mod:`search.driver`).
"""

from __future__ import annotations

import sys

from search.driver.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
