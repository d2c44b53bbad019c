"""lssat-search: the distributed search over backbones and L-SSAT settings.

Packages by job, imports pointing down only (docs/architecture.md draws it):
``results`` (the Parquet format and plain writers) <- ``optimize`` (Optuna side) <-
``execution`` (Ray side) <- ``stages`` (final, evaluate, weights, summary) <- ``driver``
(``search.run``'s plan and session); ``replay`` sits beside the stages; ``demo`` is the
whole-loop orchestrator and the only module that may import ``analysis``. The commands
(``python -m search.run``, ``search.final``, ``search.evaluate``, ``search.weights``,
``search.replay``, ``search.replay_mo``, ``search.demo``) are thin modules at the top.
"""
