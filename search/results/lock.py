"""One driver per experiment folder: ``search.run`` (new or ``--resume``) and ``search.final``
hold ``<experiment>/.driver.lock`` while they run.

The lock is an OS lock (``flock``) on that file: the kernel releases it when the process ends,
however it ends (Ctrl-C, SIGKILL, a crashed node), so a killed driver's lock is taken over by
the next command without a flag. The file also says who holds it (command, host, pid, since
when) for the one sentence a second command stops with. It is emptied on a clean exit, so a
takeover after a crash is noted. On a shared filesystem the lock is as good as the
filesystem's locks: NFSv4 and Lustre/GPFS honour ``flock`` across hosts (Linux maps it to a
POSIX lock on NFS); where locks are not supported, opening the lock fails with one sentence.
A process that already holds a folder may enter it again (``search.run``'s final stage).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from lssat.errors import ConfigError, DataError

LOCK_FILE = ".driver.lock"
_HELD: dict[str, int] = {}  # experiment folder -> times entered, this process


def _holder(path: Path) -> dict[str, object]:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    return info if isinstance(info, dict) else {}


def _describe(info: dict[str, object]) -> str:
    if not info:
        return "another command that is just starting"
    since = info.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(float(since))) if isinstance(
        since, int | float) else "an unknown time"  # fmt: skip
    return (
        f"{info.get('command', 'another command')} on host {info.get('host', '?')}, "
        f"pid {info.get('pid', '?')}, running since {when}"
    )


def _acquire(folder: Path, path: Path) -> tuple[int, bool]:
    """Open and lock ``path`` (non-blocking): (fd, whether this call created the file). A file
    unlinked by its previous holder between our open and our lock is opened again, so two
    processes never hold two different files."""
    for _ in range(20):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fresh = not path.exists()
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DataError(
                f"experiment folder {folder} cannot be locked ({exc.strerror or exc}); fix its "
                "permissions or pick another --results"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise DataError(
                    f"experiment folder {folder} cannot be locked ({exc.strerror or exc}); its "
                    "filesystem may not support locks"
                ) from None
            raise ConfigError(
                f"experiment folder {folder} is in use by {_describe(_holder(path))}; wait for "
                "it to end (or stop it), then run this command again"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd, fresh
        os.close(fd)  # the holder removed it while we opened it: take the new one
    raise DataError(f"experiment folder {folder} cannot be locked (its lock file keeps changing)")


@contextlib.contextmanager
def hold_experiment(exp_dir: str | Path, command: str, create: bool = True) -> Iterator[None]:
    """Hold ``exp_dir`` for ``command`` (e.g. ``search.run``) while the block runs; a folder a
    live process holds is a ``ConfigError`` naming it (host, pid, since when). ``create``: make
    the folder first (removed again on exit when it held nothing but the lock); without it a
    missing folder is not held (the command's own checks say why it is missing)."""
    folder = Path(exp_dir).expanduser().resolve()
    key = str(folder)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    made = create and not folder.exists()
    top = folder  # the highest folder this call creates (removed again if left empty)
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    if not folder.is_dir() and not create:
        yield
        return
    path = folder / LOCK_FILE
    fd, fresh = _acquire(folder, path)
    before = _holder(path)
    if before and before.get("pid") != os.getpid():
        print(f"note: {folder} was held by {_describe(before)}, which is no longer running; "
              "taking it over", file=sys.stderr, flush=True)  # fmt: skip
    info = {"command": command, "host": socket.gethostname(), "pid": os.getpid(),
            "since": time.time()}  # fmt: skip
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # a clean exit: nothing to take over
            if fresh:  # this call made the file: leave the folder as it was (still locked)
                path.unlink()
            if made and not any(folder.iterdir()):
                for d in [folder, *folder.parents]:
                    d.rmdir()
                    if d == top:
                        break
        os.close(fd)
