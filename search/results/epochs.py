"""Epoch Parquet writes off the Tune driver's event loop (issue 16, the scale simulation).

A Tune function trainable's ``report`` blocks until the driver asks for the next result, so
every millisecond the driver spends on one result is a millisecond that trial's GPU idles, and
the driver handles one event at a time, so the other trials' results queue behind it. The
Recorder therefore hands each trial's epoch rows to an :class:`EpochWriter`, which rewrites
``epochs/<trial_id>.parquet`` (atomically, with :func:`search.results.write_epochs`, as before)
on its own thread. When a trial reports again before its previous rows are on disk, only the
newest rows are written (they hold the older ones). Folders handed over as ``drop`` or to
:meth:`EpochWriter.discard` (a trial's superseded checkpoints) are deleted only once rows that
no longer need them are on disk, so after a crash the newest checkpoint the epoch file names
still exists.

:meth:`EpochWriter.flush` waits until one trial's (or every) pending rows are on disk: the
Recorder calls it before writing a trial row, so a trial row never exists without its epochs,
and when the search ends. A failed write is kept and raised again by the next ``submit``,
``flush`` or ``check``, where the Recorder's guard turns it into a stopped search.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from search import results


class EpochWriter:
    """One background thread writing each trial's newest epoch rows, in submission order."""

    def __init__(self, exp_dir: str | Path):
        self.exp_dir = Path(exp_dir)
        self._pending: dict[str, tuple[dict[str, Any], list[dict[str, Any]], set[str]]] = {}
        self._writing: str | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.submitted = 0  # submit() calls
        self.written = 0  # files written (fewer when a trial's rows were superseded)
        self.metrics: tuple[str, ...] | None = None  # the experiment's declared metric columns
        self._after: dict[str, set[str]] = {}  # folders to delete once the write in progress ends

    # Tune pickles its callbacks (the Recorder) into tuner.pkl: a copy starts empty
    def __getstate__(self) -> dict[str, Any]:
        return {"exp_dir": self.exp_dir, "metrics": self.metrics}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["exp_dir"])
        self.metrics = state.get("metrics")

    def submit(
        self,
        ident: Mapping[str, Any],
        rows: Iterable[Mapping[str, Any]],
        drop: Iterable[str] = (),
    ) -> None:
        """Queue ``rows`` (all epochs so far) of the trial ``ident`` names, and the folders to
        delete once they are written; returns at once."""
        self.check()
        trial_id = str(ident["trial_id"])
        with self._cond:
            if self._closed:
                raise RuntimeError("the epoch writer is closed")
            old = self._pending.pop(trial_id, None)  # superseded: the new rows hold the old ones
            folders = set(drop) | (old[2] if old else set())
            self._pending[trial_id] = (dict(ident), [dict(r) for r in rows], folders)
            self.submitted += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lssat-epoch-writer", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def discard(self, trial_id: str, folders: Iterable[str]) -> None:
        """Delete ``folders`` of trial ``trial_id`` once its rows now queued or being written
        are on disk (at once when none are)."""
        folders = set(folders)
        if not folders:
            return
        with self._cond:
            if trial_id in self._pending:
                self._pending[trial_id][2].update(folders)
                return
            if self._writing == trial_id:
                self._after.setdefault(trial_id, set()).update(folders)
                return
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return  # closed and drained
                trial_id = next(iter(self._pending))
                ident, rows, drop = self._pending.pop(trial_id)
                self._writing = trial_id
            error: BaseException | None = None
            named: list[str] = []
            try:
                results.write_epochs(self.exp_dir, ident, rows, self.metrics)
                named = [r["checkpoint"] for r in rows if r.get("checkpoint")]
                for folder in drop - set(named[-1:]):  # never the newest the rows name
                    shutil.rmtree(folder, ignore_errors=True)
            except BaseException as exc:  # kept for the driver's thread
                error = exc
            with self._cond:
                self._writing = None
                later = self._after.pop(trial_id, set())
                self.written += error is None
                if error is not None and self._error is None:
                    self._error = error
                self._cond.notify_all()
            if error is None:
                for folder in later - set(named[-1:]):
                    shutil.rmtree(folder, ignore_errors=True)

    def _busy(self, trial_id: str | None) -> bool:
        if trial_id is None:
            return bool(self._pending) or self._writing is not None
        return trial_id in self._pending or self._writing == trial_id

    def flush(self, trial_id: str | None = None) -> None:
        """Wait until ``trial_id``'s pending rows (default: all) are written; raise a failed
        write's error."""
        with self._cond:
            while self._busy(trial_id) and self._thread is not None and self._thread.is_alive():
                self._cond.wait(timeout=1.0)
        self.check()

    def check(self) -> None:
        """Raise the first failed write's error, if any."""
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Write everything pending, end the thread, raise a failed write's error."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        self.check()
