"""Durable result files: per_clip.jsonl appended line by line, JSON written atomically.

``per_clip.jsonl`` is append-only. Each record is one line written on a file opened with
``O_APPEND`` (``os.write`` is repeated until every byte is written: a write may be short) and
then fsync'ed, so a killed process leaves at most one partial last line; ``ResultStore`` drops
such a line (truncating the file back to the last newline) before appending again, so a resumed
run never glues a new record onto a torn one. The last record for a cache key wins.

A full disk (ENOSPC, EDQUOT) is ``errors.DiskFull``, a one-line message naming the file, and
leaves nothing torn: a record that could not be written completely is cut off again, a JSON or
.npz file is written to a temporary name and only renamed over the old one when complete.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from interactive_eyes.app.errors import DiskFull

log = logging.getLogger(__name__)

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _disk_full(path, exc: OSError) -> DiskFull:
    return DiskFull(f"{path}: cannot write ({exc.strerror or exc}); free some space and run again, "
                    f"the results so far are kept")


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a write may be short, e.g. on a nearly full disk)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:  # no progress: treat as a full device rather than spinning
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


def _json_default(obj):
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any, **kwargs) -> str:
    return json.dumps(obj, default=_json_default, allow_nan=False, **kwargs)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write JSON to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (dumps(obj, indent=2, sort_keys=False) + "\n").encode()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise _disk_full(path, exc) from None
        raise
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            raise _disk_full(path, exc) from None
        raise
    return path


def save_npz_atomic(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz", dir=path.parent)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise _disk_full(path, exc) from None
        raise
    os.close(fd)
    try:
        np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            raise _disk_full(path, exc) from None
        raise
    return path


class ResultStore:
    """The per-clip records of one output folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()

    def _repair(self) -> None:
        """Cut a torn last line (a process killed mid-write) so appends start on a fresh line."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            log.warning("%s: dropping a partial last record (%d bytes) left by an interrupted run", self.path, len(data) - keep)
            with open(self.path, "r+b") as f:
                f.truncate(keep)

    def records(self) -> Iterator[dict]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s:%d: unreadable record skipped", self.path, lineno)

    def by_key(self) -> dict[str, dict]:
        """Records by cache key (records of unreadable files have none and are not resumable)."""
        return {r["cache_key"]: r for r in self.records() if r.get("cache_key")}

    def append(self, record: dict) -> None:
        """Append one record as one complete line, or raise and leave the file as it was."""
        line = (dumps(record, sort_keys=True) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise _disk_full(self.path, exc) from None
            raise
        try:
            start = os.fstat(fd).st_size  # one writer per folder (app/lock.py): the record starts here
            try:
                write_all(fd, line)
                os.fsync(fd)
            except OSError as exc:
                try:  # never leave a torn record behind
                    os.ftruncate(fd, start)
                except OSError:
                    pass
                if exc.errno in _NO_SPACE:
                    raise _disk_full(self.path, exc) from None
                raise
        finally:
            os.close(fd)
