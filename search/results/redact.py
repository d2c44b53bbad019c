"""Passwords in ``--storage`` URLs never reach a file or the screen.

``postgresql://user:secret@host/db`` is saved and shown as ``postgresql://user:***@host/db``:
in ``search.json``, the summary, every error message, and Ray Tune's own pickled experiment
state (the searcher and the Recorder hold a :class:`search.optimize.study.StudyRef`, whose
pickled form carries the redacted URL; the real one stays in this process's memory, see
:func:`remember`).
A ``--resume`` takes the full URL again from ``--storage`` or from the environment variable
``LSSAT_STORAGE_URL``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

ENV_VAR = "LSSAT_STORAGE_URL"
MASK = "***"
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][\w+.-]*://[^:/@?#]*:)(?P<pw>[^@/?#]*)(?P<at>@)")
_QUERY_PW = re.compile(r"(?P<head>[?&](?:password|passwd|pwd)=)(?P<pw>[^&#]*)", re.IGNORECASE)
_REAL: dict[str, str] = {}  # redacted URL -> full URL, this process only


def password(url: str | None) -> str | None:
    """The password in ``url`` (user-info or a ``password=`` query argument), if any."""
    if not url:
        return None
    m = _USERINFO.match(url) or _QUERY_PW.search(url)
    return m.group("pw") if m and m.group("pw") else None


def redact_url(url: str | None) -> str | None:
    """``url`` with its password replaced by ``***`` (None stays None)."""
    if not url:
        return url
    out = _USERINFO.sub(lambda m: f"{m['head']}{MASK if m['pw'] else ''}{m['at']}", url)
    return _QUERY_PW.sub(lambda m: f"{m['head']}{MASK}", out)


def redact_text(text: str, url: str | None) -> str:
    """``text`` with ``url``'s password (raw and URL-decoded) replaced by ``***``."""
    secret = password(url)
    if not secret:
        return text
    for form in {secret, unquote(secret)}:
        if len(form) >= 1:
            text = text.replace(form, MASK)
    return text


def remember(url: str | None) -> str | None:
    """Keep ``url`` in this process (for objects unpickled here); returns its redacted form."""
    safe = redact_url(url)
    if url and safe != url:
        _REAL[safe] = url
    return safe


def recall(url: str | None) -> str | None:
    """The full URL remembered for a redacted one (else ``url`` itself)."""
    return _REAL.get(url, url) if url else url
