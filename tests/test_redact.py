"""Issue 24, item 3: any password of a ``--storage`` URL is masked, parsed the way SQLAlchemy
parses it (so ``/``, ``?``, ``#``, ``@`` and %-encoded characters in it are the password too),
in ``search.json``, the summary, error messages, pickles and reprs.

No database server runs here: the error path is the real one of this machine (no PostgreSQL
driver installed), the settings file and the summary are written by their own functions.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from search.optimize.study import StudyRef, storage_label
from search.results.redact import password, redact_text, redact_url
from search.results.settings import save_settings
from search.run import main

# (the password as written in the URL, what it is)
PASSWORDS = [
    "Zx9/k+Q2",  # the example
    "qu?ery#frag",
    "at@sign",  # not %-encoded: the user-info ends at the last '@'
    "p%40ss%2Fw%3Fo%23rd",  # %-encoded '@', '/', '?', '#'
    "co:lon",
]
TAIL = "db.example:5432/opt?sslmode=require"


def _secrets(raw: str) -> set[str]:
    plain = unquote(raw)
    return {raw, plain, quote(plain, safe=""), plain.split("@")[-1], plain.split("/")[-1]}


@pytest.mark.parametrize("raw", PASSWORDS)
def test_every_password_is_masked_everywhere(
    raw: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://bob:{raw}@{TAIL}"
    secrets = _secrets(raw)

    def clean(text: str | bytes) -> bool:
        data = text if isinstance(text, bytes) else text.encode()
        return not any(s.encode() in data for s in secrets)

    assert redact_url(url) == f"postgresql://bob:***@{TAIL}"
    assert password(url) == unquote(raw)
    error = f"FATAL: password authentication failed for bob ({unquote(raw)}) at {url}"
    assert clean(redact_text(error, url))
    ref = StudyRef(str(tmp_path), "deepfake/x", "max", url)
    blob = pickle.dumps(ref)
    assert clean(blob) and clean(repr(ref)) and clean(storage_label(tmp_path, url))
    assert pickle.loads(blob).url == url  # this process keeps the full URL
    save_settings(tmp_path, {"storage": redact_url(url)})  # what search.run saves
    assert clean((tmp_path / "search.json").read_bytes())
    assert json.loads((tmp_path / "search.json").read_text())["storage"] == redact_url(url)
    # the command line's error (no PostgreSQL driver here): one sentence, no password
    results = tmp_path / "r"
    argv = ["--task", "deepfake", "--results", str(results), "--no-pretrained"]
    assert main([*argv, "--storage", url]) == 2
    out, err = capsys.readouterr()
    assert clean(out + err) and err.count("\n") == 1 and "bob:***@db.example" in err
    assert not results.exists()


def test_query_passwords_and_urls_without_one() -> None:
    assert redact_url("postgresql://h/db?password=s%2Fx&x=1") == "postgresql://h/db?password=***&x=1"
    assert redact_url("postgresql://bob@h/db") == "postgresql://bob@h/db"
    assert redact_url("sqlite:////tmp/a b/study.db") == "sqlite:////tmp/a b/study.db"
    assert redact_url(None) is None and password("sqlite:///x.db") is None
