"""One writer per output folder: an advisory ``fcntl.flock`` lock on a file inside it.

The lock belongs to the open file, so the operating system releases it when the process dies,
however it dies (SIGKILL included): a stale lock file never blocks the next run. A second
process asking for the same folder gets ``FolderLocked`` at once (non-blocking), with the
holder's pid when it wrote one. ``run`` (app/run.py ``_exclusive``) uses the same scheme.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from interactive_eyes.app.errors import FolderLocked


@contextlib.contextmanager
def exclusive(folder: str | os.PathLike, lock_name: str, what: str = "ie-bench process") -> Iterator[Path]:
    """Hold ``folder/lock_name`` exclusively for the ``with`` block, or raise ``FolderLocked``."""
    import fcntl

    folder = Path(folder)
    path = folder / lock_name
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            raise FolderLocked(f"{folder}: another {what}{holder} is writing to this folder "
                               f"(lock {lock_name}); wait for it or use another output folder") from None
        # informational only (the lock itself is the flock): who holds it
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        pid = int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return ""
    return f" (pid {pid})"
