"""The stages after (or around) a search: the held-out final stage, scoring saved weights
(``search.evaluate``), pretrained-weight tables and fetching, and the end-of-search summary.

Imports ``search.execution``, ``search.optimize``, ``search.results`` and ``lssat``; never the
driver (``search.driver``), the replay or ``analysis``.
"""
