"""One download routine for everything ie-bench fetches (model weights, benchmark data).

``download(url, dest, sha256=..., size=...)`` streams ``url`` into ``<dest>.part``, resumes a
partial ``.part`` left by an interrupted run (HTTP ``Range``), checks the size and the SHA-256
(or the git blob id, for files that are only pinned that way), and only then renames the
``.part`` onto ``dest`` (``os.replace``: atomic on one file system). So ``dest`` either does not
exist or is complete and verified; a ``.part`` that failed its check is deleted, never kept.

The network is reached only through a ``Transport`` (``open(url, start) -> (stream, total)``),
so tests inject a fake one and no test ever touches the network. The default transport is
urllib with a ``Range`` header.

Errors are ``DownloadError`` with a one-line message naming the URL and the target path.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # 1 MiB: large enough that Python overhead is negligible, small enough for smooth progress
USER_AGENT = "ie-bench-downloader/1"


class DownloadError(RuntimeError):
    """A download that could not be completed or verified. ``str(err)`` is one line."""

    def __init__(self, url: str, dest: str | os.PathLike, reason: str):
        self.url = url
        self.dest = str(dest)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{url} -> {self.dest}: {self.reason}")


class Transport(Protocol):
    """How bytes are fetched. ``open`` returns a readable binary stream positioned at byte
    ``start`` of the resource, and the resource's *total* size in bytes (``None`` if unknown)."""

    def open(self, url: str, start: int = 0) -> tuple[BinaryIO, int | None]: ...


class UrllibTransport:
    """HTTP(S) with a ``Range: bytes=<start>-`` header when resuming.

    A server that ignores the range (answers 200 instead of 206) is handled by skipping the
    first ``start`` bytes of its answer, so the stream always begins at ``start``.
    """

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout

    def open(self, url: str, start: int = 0) -> tuple[BinaryIO, int | None]:
        headers = {"User-Agent": USER_AGENT}
        if start > 0:
            headers["Range"] = f"bytes={start}-"
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.timeout)
        status = getattr(resp, "status", 200)
        total: int | None = None
        if status == 206:
            m = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
            if m is None or int(m.group(1)) != start:
                resp.close()
                raise OSError(f"server answered an unexpected Content-Range {resp.headers.get('Content-Range')!r}")
            total = int(m.group(3)) if m.group(3) != "*" else None
        else:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            skip = start
            while skip > 0:  # range ignored: discard what we already have
                got = resp.read(min(CHUNK, skip))
                if not got:
                    break
                skip -= len(got)
        return resp, total


def default_transport() -> Transport:
    return UrllibTransport()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def git_blob_sha1(path: str | os.PathLike) -> str:
    """The id ``git hash-object`` gives a file: sha1 of ``b"blob <size>\\0" + content``."""
    p = Path(path)
    h = hashlib.sha1(b"blob %d\0" % p.stat().st_size)
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock so two processes never write the same ``.part`` at once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process lock, still atomic rename
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _progress_bar(enabled: bool, total: int | None, initial: int, desc: str):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False)


def verify_file(path: str | os.PathLike, *, sha256: str | None = None, size: int | None = None,
                git_blob: str | None = None) -> str | None:
    """Why ``path`` does not match the given size / SHA-256 / git blob id, or ``None`` if it does."""
    p = Path(path)
    if not p.is_file():
        return "file not found"
    actual = p.stat().st_size
    if size is not None and actual != size:
        return f"size {actual} bytes, expected {size}"
    if sha256 is not None:
        got = sha256_file(p)
        if got != sha256.lower():
            return f"sha256 {got}, expected {sha256.lower()}"
    if git_blob is not None:
        got = git_blob_sha1(p)
        if got != git_blob.lower():
            return f"git blob id {got}, expected {git_blob.lower()}"
    return None


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, size: int | None = None,
             transport: Transport | None = None, progress: bool = True, git_blob: str | None = None,
             retries: int = 3, backoff: float = 1.0) -> Path:
    """Fetch ``url`` to ``dest``, verified; resume ``<dest>.part`` if present; atomic rename.

    ``sha256`` / ``size`` / ``git_blob`` are checked when given (a ``size`` also lets a resume
    detect a ``.part`` that is already complete). A connection that breaks mid-way is retried
    ``retries`` times (waiting ``backoff`` × 1, 2, 4… s), each time resuming from the bytes
    already on disk. A file that fails its
    check is deleted and ``DownloadError`` raised. If ``dest`` already exists and matches the
    given hash, nothing is fetched.
    """
    dest = Path(dest)
    transport = transport or default_transport()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    lock = dest.with_name(dest.name + ".lock")

    with _lock(lock):
        if dest.is_file() and (sha256 or git_blob) and verify_file(dest, sha256=sha256, size=size, git_blob=git_blob) is None:
            return dest
        attempt = 0
        while True:
            start = part.stat().st_size if part.is_file() else 0
            if size is not None and start > size:  # a stale .part from some other file: start over
                part.unlink()
                start = 0
            try:
                if size is None or start < size:
                    _fetch_into(url, part, start, size, transport, progress, dest)
                break
            except DownloadError:
                raise
            except (OSError, urllib.error.URLError, TimeoutError) as exc:
                attempt += 1
                if attempt > retries:
                    have = part.stat().st_size if part.is_file() else 0
                    if have == 0:
                        part.unlink(missing_ok=True)
                    kept = f"{have} bytes kept in {part.name}; run again to resume" if have else "nothing downloaded"
                    raise DownloadError(url, dest, f"{exc.__class__.__name__}: {exc} ({kept})") from None
                log.warning("download of %s interrupted (%s); resuming (%d/%d)", url, exc, attempt, retries)
                time.sleep(backoff * min(2.0 ** (attempt - 1), 10.0))

        problem = verify_file(part, sha256=sha256, size=size, git_blob=git_blob)
        if problem is not None:
            part.unlink(missing_ok=True)
            raise DownloadError(url, dest, f"downloaded file rejected: {problem}; the partial file was deleted")
        os.replace(part, dest)
    # The empty ``.lock`` stays: deleting it would let a process that is waiting on the old
    # inode and one that creates a new file both believe they hold the lock.
    return dest


def _fetch_into(url: str, part: Path, start: int, size: int | None, transport: Transport, progress: bool,
                dest: Path) -> None:
    stream, total = transport.open(url, start)
    try:
        if size is not None and total is not None and total != size:
            part.unlink(missing_ok=True)
            raise DownloadError(url, dest, f"server reports {total} bytes, expected {size}")
        bar = _progress_bar(progress, total if total is not None else size, start, dest.name)
        try:
            with open(part, "ab") as out:
                while True:
                    block = stream.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    if bar is not None:
                        bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    expected = size if size is not None else total
    got = part.stat().st_size if part.is_file() else 0
    if expected is not None and got < expected:
        raise ConnectionError(f"connection closed after {got} of {expected} bytes")
