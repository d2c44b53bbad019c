"""A ``--storage`` URL's password reaches no file and no output (issue 13).

No database server runs here, so the full search runs against the URL
``postgresql://user:secret@host/db`` with Optuna's ``RDBStorage`` swapped, in this process, for
one on a SQLite file: every other part is real (Ray Tune pickling the searcher and Recorder,
``search.json``, the summary). Then every file of the experiment and every line printed must
be free of ``secret``; ``--resume`` must ask for the URL again (``--storage`` or
``LSSAT_STORAGE_URL``) and then finish. An unreachable URL fails in one sentence without it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import optuna
import pytest

from search.optimize.study import StudyRef
from search.results.redact import ENV_VAR, redact_text, redact_url
from search.run import main

URL = "postgresql://user:secret@host/db"
SPACE = """\
task: deepfake
trials: 1
fixed: {epochs: 1, img_size: 32, batch_size: 16, train_subset: 4, val_subset: 4,
        backbone: resnet18, patch_size: 8, aux_weight: 0.0, warmup_epochs: 0.0}
params:
  lr: {low: 3.0e-4, high: 3.0e-3, log: true}
"""


def test_redaction() -> None:
    assert redact_url(URL) == "postgresql://user:***@host/db"
    assert redact_url("postgresql://user@host/db") == "postgresql://user@host/db"
    assert (
        redact_url("mysql+pymysql://u:p%40ss@h:3306/d?x=1") == "mysql+pymysql://u:***@h:3306/d?x=1"
    )
    assert (
        redact_url("postgresql://h/db?password=secret&x=1") == "postgresql://h/db?password=***&x=1"
    )
    assert redact_url(None) is None
    assert "secret" not in redact_text("FATAL: password for user:secret@host failed", URL)
    ref = StudyRef("/x", "deepfake/x", "max", URL)
    blob = pickle.dumps(ref)
    assert b"secret" not in blob and b"user:***@host" in blob
    assert pickle.loads(blob).url == URL  # this process remembers the full URL
    assert "secret" not in repr(ref)


def test_unreachable_database_is_one_sentence_without_the_password(
    tmp_path: Path, demo_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--task", "deepfake", "--data", str(demo_data), "--results", str(tmp_path),
            "--no-pretrained"]  # no weights here: past the pre-flight to the storage  # fmt: skip
    assert main([*argv, "--storage", URL]) == 2
    out, err = capsys.readouterr()
    assert "secret" not in out + err
    assert (
        err.startswith("error: --storage 'postgresql://user:***@host/db'") and err.count("\n") == 1
    )
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_no_file_or_output_holds_the_password(
    tmp_path: Path,
    demo_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = f"sqlite:///{tmp_path / 'study.db'}"

    class OnSQLite(optuna.storages.RDBStorage):  # the URL's database, played by a file
        def __init__(self, url: str, **kw: object) -> None:
            assert url == URL
            super().__init__(db, **kw)

    monkeypatch.setattr(optuna.storages, "RDBStorage", OnSQLite)
    monkeypatch.delenv(ENV_VAR, raising=False)
    (tmp_path / "space.yaml").write_text(SPACE)
    argv = ["--task", "deepfake", "--space", str(tmp_path / "space.yaml"), "--data",
            str(demo_data), "--results", str(tmp_path / "r"), "--no-dashboard"]  # fmt: skip
    assert main([*argv, "--storage", URL]) == 0
    first = capsys.readouterr()
    assert "user:***@host" in first.out  # the summary names the study, redacted

    assert main([*argv, "--resume"]) == 2  # the password is not saved: ask for it
    missing = capsys.readouterr()
    assert ENV_VAR in missing.err and "--storage" in missing.err

    monkeypatch.setenv(ENV_VAR, URL)
    assert main([*argv, "--resume"]) == 0
    again = capsys.readouterr()
    exp = tmp_path / "r" / "deepfake" / "space"
    files = [p for p in exp.rglob("*") if p.is_file()]
    assert any(p.name == "search.json" for p in files)
    assert any(p.suffix == ".pkl" for p in files)  # Ray Tune's pickled experiment state
    leaks = [str(p) for p in files if b"secret" in p.read_bytes()]
    assert not leaks
    for text in (first, missing, again):
        assert "secret" not in text.out + text.err
