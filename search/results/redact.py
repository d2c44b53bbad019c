"""Passwords in ``--storage`` URLs never reach a file or the screen.

``postgresql://user:secret@host/db`` is saved and shown as ``postgresql://user:***@host/db``:
in ``search.json``, the summary, every error message, and Ray Tune's own pickled experiment
state (the searcher and the Recorder hold a :class:`search.optimize.study.StudyRef`, whose
pickled form carries the redacted URL; the real one stays in this process's memory, see
:func:`remember`). A ``--resume`` takes the full URL again from ``--storage`` or from the
environment variable ``LSSAT_STORAGE_URL``.

The URL is parsed the way the database layer parses it (SQLAlchemy's ``make_url``, which Optuna's
``RDBStorage`` uses), so whatever SQLAlchemy takes as the password is masked, whatever it holds
(``/``, ``?``, ``#``, ``:``, %-encoded characters). One safety net on top: a password with an
un-encoded ``@`` (which SQLAlchemy would split into the host) ends at the *last* ``@`` of the
user-info, and a ``password=`` query argument is masked too.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, quote_plus, unquote

ENV_VAR = "LSSAT_STORAGE_URL"
MASK = "***"
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][\w+.-]*://[^:/@?#]*:)(?P<pw>.*)(?P<at>@)[^@]*$")
_QUERY_PW = re.compile(r"(?P<head>[?&](?:password|passwd|pwd)=)(?P<pw>[^&#]*)", re.IGNORECASE)
_REAL: dict[str, str] = {}  # redacted URL -> full URL, this process only


def _parse(url: str) -> Any | None:
    """SQLAlchemy's ``URL`` of ``url`` (an un-encoded ``@`` kept in the password), or None."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - not a database URL: the fallback below masks it
        return None
    host = parsed.host or ""
    if parsed.password is not None and "@" in host:
        extra, host = host.rsplit("@", 1)
        parsed = parsed.set(password=f"{parsed.password}@{extra}", host=host)
    return parsed


def _query_password(url: str) -> str | None:
    m = _QUERY_PW.search(url)
    return unquote(m.group("pw")) if m and m.group("pw") else None


def password(url: str | None) -> str | None:
    """The password in ``url`` (user-info or a ``password=`` query argument), decoded."""
    if not url:
        return None
    parsed = _parse(url)
    if parsed is not None:
        secret = parsed.password
    else:
        m = _USERINFO.match(url)
        secret = unquote(m.group("pw")) if m else None
    return secret or _query_password(url)


def redact_url(url: str | None) -> str | None:
    """``url`` with its password replaced by ``***`` (None stays None; a URL without a password
    comes back unchanged)."""
    if not url:
        return url
    parsed = _parse(url)
    out = url
    if parsed is not None and parsed.password:
        out = parsed.render_as_string(hide_password=True)
    elif parsed is None:
        out = _USERINFO.sub(lambda m: f"{m['head']}{MASK if m['pw'] else ''}{m['at']}", url)
    return _QUERY_PW.sub(lambda m: f"{m['head']}{MASK}", out)


def _forms(url: str) -> list[str]:
    """Every way ``url``'s passwords can be spelled in a text, longest first."""
    forms: set[str] = set()
    for secret in (password(url), _query_password(url)):
        if secret:
            forms |= {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    m = _USERINFO.match(url)
    if m and m.group("pw"):
        forms.add(m.group("pw"))  # as typed in the URL
    m = _QUERY_PW.search(url)
    if m and m.group("pw"):
        forms.add(m.group("pw"))
    return sorted((f for f in forms if f), key=len, reverse=True)


def redact_text(text: str, url: str | None) -> str:
    """``text`` with ``url`` (redacted) and its password, in any spelling, replaced by ``***``."""
    if not url:
        return text
    text = text.replace(url, str(redact_url(url)))
    for form in _forms(url):
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
