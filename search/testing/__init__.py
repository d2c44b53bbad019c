"""Test-only trial functions (``LSSAT_TRIAL_FN=search.testing.faults:...``): injected faults,
slow epochs and a recording trial, used by the test suite and ``bench/`` only.

Imports ``lssat`` only; nothing in ``search`` imports it.
"""
