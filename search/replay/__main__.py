"""``python -m search.replay EXPERIMENT_DIR``: see :mod:`search.replay.cli`."""

import sys

from search.replay.cli import main

sys.exit(main())
