"""One process at a time in a run directory: an ``fcntl`` lock on ``DIR/run.lock``, which names its holder.

``metamers run``, ``validate`` and ``transfer`` hold it while they write; a second one on the same directory is
refused at once with the holder's pid and host (two runs would synthesize the same jobs and race in the catalog).
The lock is the kernel's: a holder killed with ``kill -9`` releases it, and the file left behind is only a note.
Within a process it is reentrant (a run's validation step takes it again).  The Ray executor's tasks run under the
lock of their driver and do not take it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["DirectoryBusy", "run_lock"]

LOCK_NAME = "run.lock"
_held: dict[str, list] = {}
"""Per process: the directories whose lock it holds, with the open file and how many times it was taken."""


class DirectoryBusy(RuntimeError):
    """Another process holds the run directory's lock; the message names it."""


@contextmanager
def run_lock(directory: str | os.PathLike, what: str = "metamers run") -> Iterator[None]:
    """Hold ``directory``'s lock for the block.

    Raises
    ------
    DirectoryBusy
        When another process holds it (its pid and host are in the message).
    PermissionError
        When the directory cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with run_lock(d), run_lock(d):  # reentrant in one process
    ...     print(open(f"{d}/run.lock").read().split()[1] == str(os.getpid()))
    True
    """
    directory = Path(directory)
    key = str(directory.resolve())
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    path = directory / LOCK_NAME
    try:
        fh = open(path, "a+")
    except PermissionError as e:
        raise PermissionError(f"cannot write in {directory} ({e.strerror}): a run directory must be writable.") from e
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise DirectoryBusy(
            f"{directory} is in use by {holder}; wait for it to finish (or stop it), then run {what} again."
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {socket.gethostname()} ({what})\n")
    fh.flush()
    _held[key] = [fh, 1]
    try:
        yield
    finally:
        del _held[key]
        fh.truncate(0)
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
