"""`make demo`'s path end to end on small budgets (#15): searches of two embedded tasks on one
Ray, the report with every section filled, a second run that redoes nothing, and the report
rendered by headless Chromium (skipped where Chromium is missing)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TASKS = "sbi,faces"  # two kinds of task: deepfake and face vs non-face
# answers that would mean the demo left a research question without data
UNANSWERED = ("cannot be answered", "cannot be judged", "Too few trials", "Only one")


RESAMPLES = 100  # bootstrap resamples of the report and the final stage: not what is checked


def _demo(root: Path, cache: Path, in_process) -> str:
    """``python -m search.demo``'s main() in this process (cwd ``root``, cache ``cache``):
    what it printed."""
    from search.demo import main

    argv = ["--results", str(root / "results"), "--out", str(root / "report"), "--tasks",
            TASKS, "--trials", "8", "--epochs", "1", "--final-seeds", "1", "--n-resamples",
            str(RESAMPLES), "--final-resamples", str(RESAMPLES)]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LSSAT_CACHE", str(cache))
        mp.chdir(root)
        code, out = in_process(main, argv)
    assert code == 0, out[-6000:]
    return out


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory, demo_data: Path, in_process
) -> tuple[Path, str]:
    """One small `python -m search.demo` (2 tasks x 8 trials x 1 epoch, 1 final-stage seed
    where search.final exists): (folder, output)."""
    root = tmp_path_factory.mktemp("demo-e2e")
    return root, _demo(root, demo_data.parent, in_process)


@pytest.mark.slow
def test_demo_report_answers_from_data(demo_run: tuple[Path, str]) -> None:
    from analysis.data import load_results
    from analysis.sections import Options, build_sections

    root, out = demo_run
    assert out.count("starting Ray") == 1  # one Ray for every task
    report = root / "report" / "report.html"
    assert f"report: {report}" in out and report.stat().st_size > 50_000
    for key in ("deepfake/sbi", "classify/faces"):
        assert f"  {key} " in out  # its winner line
    assert sum(line.startswith("RQ") for line in out.splitlines()) == 3
    from search.demo import final_available

    if final_available():  # the held-out stage ran for each task's best configuration
        for metric in ("test_auc", "test_acc"):
            assert metric in out, out

    exps = [root / "results" / "deepfake" / "sbi", root / "results" / "classify" / "faces"]
    res = load_results(exps)
    assert res.tasks == ["classify/faces", "deepfake/sbi"]  # keyed by task and dataset
    for key in res.tasks:
        ranked = res.task(key).groupby("backbone").size()
        assert len(ranked) >= 2 and (ranked >= 2).sum() >= 2, ranked
    sections = build_sections(res, Options(n_resamples=RESAMPLES))
    html = report.read_text()
    for s in sections:
        content = s.text or s.headed or s.figures or s.tables
        assert content, f"section {s.key!r} is empty: {s.notes}"
        assert f'id="{s.key}"' in html
    answers = next(s for s in sections if s.key == "answers")
    assert len(answers.headed) == 3
    for question, lines in answers.headed.items():
        text = " ".join(lines)
        assert lines and not any(u in text for u in UNANSWERED), (question, text)
    importance = next(s for s in sections if s.key == "importance")
    assert importance.tables, importance.notes  # 8 trials per task: enough for fANOVA
    fairness = next(s for s in sections if s.key == "fairness")
    assert fairness.tables or fairness.figures, fairness.notes  # the lighting groups


@pytest.mark.slow
def test_second_demo_run_redoes_nothing(
    demo_run: tuple[Path, str], demo_data: Path, in_process
) -> None:
    root, _ = demo_run
    trials = sorted((root / "results").rglob("trials/*.parquet"))
    before = {p: p.stat().st_mtime_ns for p in trials}
    out = _demo(root, demo_data.parent, in_process)
    assert "starting Ray" not in out and "searching" not in out, out
    assert {p: p.stat().st_mtime_ns for p in trials} == before
    assert sorted((root / "results").rglob("trials/*.parquet")) == trials
    assert "winners" in out and "deepfake/sbi" in out


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(demo_run: tuple[Path, str], tmp_path: Path) -> None:
    import cv2

    root, _ = demo_run
    shot = tmp_path / "report.png"
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--screenshot={shot}", "--window-size=1300,3000",
           (root / "report" / "report.html").as_uri()]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    image = cv2.imread(str(shot), cv2.IMREAD_GRAYSCALE)
    assert image is not None and image.shape == (3000, 1300)
    ink = image < 200  # text, figures, table borders
    assert ink.mean() > 0.02, f"only {ink.mean():.2%} of the page is not white"
    rows = ink.any(axis=1)
    assert rows[:1000].mean() > 0.3 and rows[1000:].mean() > 0.3  # filled, not one header
    assert np.unique(image).size > 50  # figures, not just black text on white
