"""Scratch folders for checkpoints on their way to Ray, claimed by a lock, not by a PID.

A trial writes each checkpoint into ``<tmp>/lssat-ckpt-<token>/`` and hands it to Ray, which
copies it; the folder is removed after the report (:func:`release_scratch`). A trial killed in
between leaves its folder behind, so each new one first sweeps the folders nobody holds.

Ownership is an OS lock (``flock``) on ``lssat-ckpt-<token>.lock`` next to the folder, held
from creation to removal and released by the kernel when the process dies, however it dies. A
PID in the name would say nothing across PID namespaces that share one temporary folder
(containers, Ray workers in pods): there another process's PID may look dead, or be reused.
The lock file sits beside the folder, not in it, so Ray never copies it into a checkpoint.
Needs only the standard library (importable without torch).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import uuid
from pathlib import Path

SCRATCH_PREFIX = "lssat-ckpt-"
LOCK_SUFFIX = ".lock"
_HELD: dict[str, int] = {}  # folder -> descriptor of its held lock, this process


def _base(base: str | Path | None) -> Path:
    return Path(base or tempfile.gettempdir())


def scratch_dir(base: str | Path | None = None) -> str:
    """A new folder ``lssat-ckpt-<token>`` under ``base`` (default: the temp dir), claimed by
    this process until :func:`release_scratch`; unclaimed ones are swept first."""
    root = _base(base)
    sweep_scratch(root)
    while True:
        token = uuid.uuid4().hex
        lock = root / f"{SCRATCH_PREFIX}{token}{LOCK_SUFFIX}"
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # a sweeper may have removed the file between open and lock: then take another
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    folder = root / f"{SCRATCH_PREFIX}{token}"
    folder.mkdir()
    _HELD[str(folder)] = fd
    return str(folder)


def release_scratch(path: str | Path) -> None:
    """Remove a folder of :func:`scratch_dir` and its lock, and let the lock go."""
    folder = Path(path)
    shutil.rmtree(folder, ignore_errors=True)
    folder.with_name(folder.name + LOCK_SUFFIX).unlink(missing_ok=True)
    fd = _HELD.pop(str(folder), None)
    if fd is not None:
        os.close(fd)


def sweep_scratch(base: str | Path | None = None) -> list[Path]:
    """Remove the scratch folders under ``base`` whose lock no live process holds (another
    user's, which cannot be opened, are left alone); returns them."""
    removed = []
    for lock in sorted(_base(base).glob(f"{SCRATCH_PREFIX}*{LOCK_SUFFIX}")):
        folder = lock.with_name(lock.name[: -len(LOCK_SUFFIX)])
        if str(folder) in _HELD:
            continue
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: its process is alive (in whatever PID namespace)
                continue
            shutil.rmtree(folder, ignore_errors=True)
            lock.unlink(missing_ok=True)
            removed.append(folder)
        finally:
            os.close(fd)
    return removed
