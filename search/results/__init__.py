"""The results format and its plain writers: the Parquet schema (one owner), epoch and final
rows, TensorBoard runs, provenance, URL redaction and the Pareto/agreement readings of results.

Imports only ``lssat`` and third-party libraries: never Optuna, Ray or another ``search``
package, so ``analysis`` and notebooks can read results through it alone.
``from search import results`` gives the schema's API (``results.read_trials`` ...).
"""

from search.results.items import items_path, read_items, write_items  # noqa: F401, E402
from search.results.schema import *  # noqa: F403
from search.results.schema import __all__  # noqa: F401
