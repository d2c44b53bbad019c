"""Replays of recorded learning-curve tables (``python -m search.replay``, ``search.replay_mo``):
table I/O, the simulated clock with the real TPE and ASHA, and their figures.

Imports ``search.execution`` (ASHA), ``search.optimize`` and ``search.results``; never the
driver, the stages, the demo or ``analysis``.
"""

from search.replay.cli import (  # noqa: F401, E402
    ReplayRequest,
    asha_settings,
    build_parser,
    check_request,
    main,
    request_from_args,
    run_replay,
    settings_for,
)
from search.replay.figures import (  # noqa: F401
    _q,  # noqa: F401, E402
    curves_frame,
    fmt_reach,
    last_line,
    plot_curves,
    runs_frame,
    summary_frame,
)
from search.replay.scale import make_trainable  # noqa: F401
from search.replay.simulate import (  # noqa: F401
    FRACTIONS,
    NEVER,
    SEARCHERS,
    Settings,
    Trace,
    TrialEnd,
    replay,
    simulate,
    tables_tau,
    trial_ends,
    warm_plan,
)
from search.replay.table import Config, Table, key, load_table, write_table  # noqa: F401
