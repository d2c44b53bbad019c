"""Bad command lines and bad space files: one sentence on stderr, exit code 2, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from search.run import main

ROOT = Path(__file__).resolve().parents[1]
GOOD_SPACE = """\
task: deepfake
trials: 2
fixed: {epochs: 1, img_size: 32}
params:
  lr: {low: 1.0e-4, high: 1.0e-2, log: true}
"""


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    err = capsys.readouterr().err.strip()
    return code, err


def _one_sentence(err: str) -> None:
    assert err.startswith("error: ")
    assert "\n" not in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "culprit"),
    [
        (["--task", "deepfakes"], "--task is 'deepfakes'"),
        (["--task", "deepfake", "--trials", "0"], "--trials is 0"),
        (["--task", "deepfake", "--max-concurrent", "-1"], "--max-concurrent is -1"),
        (["--task", "deepfake", "--cpus-per-trial", "0"], "--cpus-per-trial is 0"),
        (["--task", "deepfake", "--gpus-per-trial", "-0.5"], "--gpus-per-trial is -0.5"),
        (["--task", "deepfake", "--gpus-per-trial", "1.5"], "whole number"),
        (["--task", "deepfake", "--epochs", "0"], "--epochs is 0"),
        (["--task", "deepfake", "--name", "a/b"], "--name is 'a/b'"),
        (["--task", "deepfake", "--reduction-factor", "1"], "--reduction-factor is 1"),
        (["--task", "deepfake", "--storage", "study.db"], "--storage is 'study.db'"),
        (["--task", "deepfake", "--trials", "many"], "--trials: invalid int value"),
        (["--trials", "3"], "--task"),
        (["--task", "emotion"], "prepare a dataset first"),
    ],
)
def test_bad_values_exit_2_with_one_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], culprit: str
) -> None:
    code, err = _run(capsys, *argv, "--results", str(tmp_path))
    assert code == 2
    _one_sentence(err)
    assert culprit in err
    assert not (tmp_path / "deepfake").exists() or not any((tmp_path / "deepfake").iterdir())


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        (GOOD_SPACE.replace("params:", "parms:"), "unknown key 'parms' (did you mean 'params'?)"),
        (GOOD_SPACE.replace("lr: {low", "lrr: {low"), "unknown key 'lrr' (did you mean 'lr'?)"),
        (GOOD_SPACE.replace("1.0e-2", "20.0"), "key 'params.lr' value 20.0 is invalid"),
        (GOOD_SPACE.replace("img_size: 32", "img_size: 30"), "key 'fixed' is invalid"),
        (GOOD_SPACE.replace("task: deepfake", "task: emotion"), "but --task is 'deepfake'"),
        (GOOD_SPACE + "  x: [1\n", "not valid YAML at line"),
    ],
)
def test_bad_space_files_exit_2_naming_file_and_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, culprit: str
) -> None:
    space = tmp_path / "bad.yaml"
    space.write_text(text)
    code, err = _run(
        capsys, "--task", "deepfake", "--space", str(space), "--results", str(tmp_path / "r")
    )
    assert code == 2
    _one_sentence(err)
    assert str(space) in err and culprit in err


def test_missing_data_and_existing_experiment(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:  # fmt: skip
    space = tmp_path / "ok.yaml"
    space.write_text(GOOD_SPACE)
    base = ["--task", "deepfake", "--space", str(space), "--results", str(tmp_path / "r")]
    code, err = _run(capsys, *base, "--data", str(tmp_path / "nowhere"))
    assert code == 2
    _one_sentence(err)
    assert "nowhere" in err
    exp = tmp_path / "r" / "deepfake" / "ok"
    exp.mkdir(parents=True)
    (exp / "search.json").write_text("{}")
    code, err = _run(capsys, *base)
    assert code == 2
    _one_sentence(err)
    assert "already holds a search; add --resume" in err


def test_help_and_real_exit_code() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "search.run", "--help"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0
    for flag in ("--task", "--space", "--data", "--trials", "--max-concurrent", "--cpus-per-trial",
                 "--gpus-per-trial", "--epochs", "--name", "--results", "--storage", "--resume",
                 "--address", "--seed"):  # fmt: skip
        assert flag in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "search.run", "--task", "deepfake", "--cpus-per-trial", "-1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --cpus-per-trial is -1.0; it must be above 0"


def test_bad_descriptor_backend_env_exits_2_with_one_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LSSAT_DESCRIPTOR_BACKEND", "fused")
    code, err = _run(capsys, "--task", "deepfake", "--results", str(tmp_path))
    assert code == 2
    _one_sentence(err)
    assert "$LSSAT_DESCRIPTOR_BACKEND 'fused' is unknown; allowed: eager, compiled" in err


@pytest.mark.parametrize(
    ("text", "culprit"),
    [('{"data": "/x", "tri', "cannot be read"), ('{"data": "/x"}', "lacks trials, seed")],
)
def test_torn_search_json_stops_resume_with_one_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, culprit: str
) -> None:
    exp = tmp_path / "deepfake" / "torn"
    exp.mkdir(parents=True)
    (exp / "search.json").write_text(text)
    code, err = _run(capsys, "--task", "deepfake", "--name", "torn", "--resume",
                     "--results", str(tmp_path))  # fmt: skip
    assert code == 2
    _one_sentence(err)
    assert f"settings file '{exp / 'search.json'}' " in err and culprit in err
    assert (exp / "search.json").read_text() == text  # nothing rewritten
