"""Shared pytest setup: quiet, bounded, and isolated from the user's caches."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="ray-tests-"))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory):
    """The embedded deepfake demo set, built once per test session in a temp cache."""
    from lssat.data import demo_dataset

    return demo_dataset(tmp_path_factory.mktemp("demo-cache"))
