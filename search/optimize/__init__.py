"""The Optuna side: search-space files, objectives, the study and its storage, the Tune
searcher that asks Optuna, and warm starts from another search.

Imports ``search.results`` and ``lssat``; never Ray's execution side (``search.execution``),
the stages after a search, the driver or ``analysis``.
"""
