"""A trial's failure, classified once: the keys a trial reports its own error under, the
picklable stand-in for an exception that cannot cross processes, disk-full detection, and the
one-line text and reason (``non_finite_loss`` | ``out_of_memory`` | ``error``) of a failure."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from lssat.errors import causes

ERROR_KEY = "lssat_error"  # in a trial's last result: its error raised inside run_trial
REASON_KEY = "lssat_error_reason"  # non_finite_loss | out_of_memory | error


class TrialFailed(RuntimeError):
    """A trial's exception that could not cross processes as itself (it does not pickle).

    ``kind`` is the original class name, kept so the driver classifies it (e.g.
    ``NonFiniteLossError``) and shows ``kind: message``.
    """

    def __init__(self, kind: str, message: str):
        super().__init__(kind, message)
        self.kind, self.message = kind, message

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling (Ray sends it to the driver), else a TrialFailed."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return TrialFailed(type(exc).__name__, str(exc))
    return exc


DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})
DISK_TEXTS = (
    "no space left on device",
    "disk quota exceeded",
    "read-only file system",
    "file too large",
)


def disk_error(exc: BaseException | None, text: str = "") -> str | None:
    """The reason (``strerror``) when ``exc``, its causes or ``text`` say a disk refused a
    write (full, over quota, read-only); ``None`` for any other error."""
    for err in causes(exc, context=True):
        if isinstance(err, OSError) and err.errno in DISK_ERRNOS:
            return os.strerror(err.errno)
        text += f" {err}"
    low = text.lower()
    return next((t.capitalize() for t in DISK_TEXTS if t in low), None)



def classify_error(exc: BaseException | None, text: str) -> str:
    """``non_finite_loss`` | ``out_of_memory`` | ``error`` from the exception chain and text."""
    names: list[str] = []
    for err in causes(exc):
        names.extend(c.__name__ for c in type(err).__mro__)
        if getattr(err, "kind", None):  # search.execution.trainable.TrialFailed
            names.append(str(err.kind))
    low = text.lower()
    if "NonFiniteLossError" in names or "nonfinitelosserror" in low:
        return "non_finite_loss"
    if "OutOfMemoryError" in names or "out of memory" in low or "outofmemoryerror" in low:
        return "out_of_memory"
    return "error"


def error_text(trial: Any) -> tuple[str, str]:
    """One-line error of a failed Tune trial and its stop reason."""
    exc = None
    # Tune writes the error files into the trial's driver-side folder first and syncs them to
    # storage later, so read the local copies (the storage ones as a fallback)
    try:
        local = trial.pickled_error_file
        if local and Path(local).is_file():
            import ray.cloudpickle as cloudpickle

            exc = cloudpickle.loads(Path(local).read_bytes())
        else:
            exc = trial.get_pickled_error()
    except Exception:  # unpicklable: fall back to the text trace
        exc = None
    cause = exc
    while cause is not None and getattr(cause, "cause", None) is not None:
        cause = cause.cause
    if cause is not None and getattr(cause, "kind", None):  # TrialFailed says "Kind: message"
        text = str(cause).strip()
    elif cause is not None:
        text = f"{type(cause).__name__}: {cause}".strip()
    else:
        trace = ""
        try:
            local = trial.error_file
            if local and Path(local).is_file():
                trace = Path(local).read_text(errors="replace")
            else:
                trace = trial.get_error() or ""
        except Exception:
            trace = ""
        lines = [ln for ln in str(trace).strip().splitlines() if ln.strip()]
        text = lines[-1].strip() if lines else "the trial failed without an error message"
    return text[:4000], classify_error(exc, text)
