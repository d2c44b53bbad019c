"""The notebooks run headless (nbclient, kernel python3) on hand-built multi-task results plus
the demo search's output (``demo_search`` in conftest.py), so they cannot rot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from analysis.synthetic import write_synthetic

NOTEBOOKS = sorted(
    p
    for p in (Path(__file__).resolve().parents[1] / "analysis").glob("*.ipynb")
    if p.name != "search_efficiency.ipynb"  # reads replay CSVs: tests/test_replay.py
)


def _results(root: Path, demo_search: Path) -> str:
    bases = {"vit_small_patch16_224": 0.85, "resnet18": 0.8, "convnext_tiny": 0.78}
    write_synthetic(root, {"attributes": bases, "emotion": {**bases, "resnet18": 0.9}},
                    trials_per_backbone=4)
    return os.pathsep.join([str(root), str(demo_search)])


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path: Path, demo_search: Path, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LSSAT_RESULTS", _results(tmp_path / "results", demo_search))
    monkeypatch.setenv("LSSAT_N_RESAMPLES", "200")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/html", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "Traceback" not in text  # a cell error raises above; this catches logged ones
    assert "RQ1." in text and "RQ3." in text
    assert "emotion: resnet18" in text  # the planted winner of the emotion task
    images = sum("image/png" in o.get("data", {}) for c in nb.cells
                 if c.cell_type == "code" for o in c.outputs)
    assert images >= 8
