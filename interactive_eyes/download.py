"""One download routine for everything ie-bench fetches (model weights, benchmark data).

``download(url, dest, sha256=..., size=...)`` streams ``url`` into ``<dest>.part``, resumes a
partial ``.part`` left by an interrupted run (HTTP ``Range``), checks the size and the SHA-256
(or the git blob id, for files that are only pinned that way), and only then renames the
``.part`` onto ``dest`` (``os.replace``: atomic on one file system). So ``dest`` either does not
exist or is complete and verified; a ``.part`` that failed its check is deleted, never kept.

The network is reached only through a ``Transport`` (``open(url, start) -> (stream, total)``),
so tests inject a fake one and no test ever touches the network. The default transport is
urllib with a ``Range`` header.

**A stalled network costs tens of seconds, not minutes.** The transport has a connect timeout
(``CONNECT_TIMEOUT``, also covering the wait for the response headers) and a read timeout
(``READ_TIMEOUT``: that long without one byte fails the attempt). Retries resume from the bytes
on disk, but a download gives up once no byte has arrived for ``STALL_BUDGET`` seconds, however
many retries are left, and says so in a warning at each stall. Worst case for one URL whose
host accepts connections and then sends nothing: 15 s (first attempt) + 1 s (back-off) + 15 s
(second attempt) = 31 s, then ``DownloadError``; the previous code allowed 4 x 60 s per URL.
An HTTP 4xx answer (other than 408/429) is final at once: asking again does not help.

**No ``.lock`` is left behind.** The lock file is unlinked by its holder on every exit path
(success, ``DownloadError``, any exception, ``KeyboardInterrupt``) while it still holds the lock;
a process that was waiting on the now-unlinked file notices (its inode no longer is the path's)
and locks the new one, so two processes never both believe they hold it. An empty ``.part`` is
never left either; a non-empty one is kept on purpose so the next run resumes it.

Errors are ``DownloadError`` with a one-line message naming the URL and the target path.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Protocol

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # 1 MiB: large enough that Python overhead is negligible, small enough for smooth progress
USER_AGENT = "ie-bench-downloader/1"

# pip's default socket timeout is 15 s; a server that neither completes the TCP/TLS handshake and
# sends its headers, nor sends one byte of the body, within that long is treated as stalled.
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 15.0
# No byte for this long (across retries) ends the download of one URL: with the 15 s timeouts,
# a dead host costs two attempts (31 s), a flaky one that still delivers keeps resuming.
STALL_BUDGET = 30.0

# what ``download`` waits with unless given ``clock`` / ``sleep`` (module level, so tests of callers
# such as ``weights.fetch`` can substitute a fake clock)
_monotonic = time.monotonic
_sleep = time.sleep


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

    def __init__(self, timeout: float | None = None, *, connect_timeout: float = CONNECT_TIMEOUT,
                 read_timeout: float = READ_TIMEOUT):
        # ``timeout`` (kept for callers of the old signature) sets both.
        self.connect_timeout = timeout if timeout is not None else connect_timeout
        self.read_timeout = timeout if timeout is not None else read_timeout

    def open(self, url: str, start: int = 0) -> tuple[BinaryIO, int | None]:
        headers = {"User-Agent": USER_AGENT}
        if start > 0:
            headers["Range"] = f"bytes={start}-"
        # urllib applies this socket timeout to connecting and to reading the response headers
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=self.connect_timeout)
        _set_read_timeout(resp, self.read_timeout)
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


def _set_read_timeout(resp, seconds: float) -> None:
    """Give the body reads of an ``http.client.HTTPResponse`` their own socket timeout.

    urllib has one timeout for everything; the socket sits under ``resp.fp`` (a buffered
    ``SocketIO``). If that layout is not there (another opener), the connect timeout stays in
    force for the reads, which still bounds a stall.
    """
    sock = getattr(getattr(getattr(resp, "fp", None), "raw", None), "_sock", None)
    if sock is not None and hasattr(sock, "settimeout"):
        sock.settimeout(seconds)


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
    """An exclusive advisory lock so two processes never write the same ``.part`` at once.

    The holder unlinks the lock file before releasing it, on every exit path, so no ``*.lock``
    outlives a download. A waiter that then acquires the unlinked inode sees that the path no
    longer names it and starts over on the current file (the classic flock + unlink protocol).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process lock, still atomic rename
        yield
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for another process that is downloading %s", path.with_suffix(""))
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):
                break
            os.close(fd)  # we locked a file its holder has just unlinked: lock the live one
        except BaseException:
            _abandon_lock(fd, path)
            raise
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # while still holding it (see docstring)
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _abandon_lock(fd: int, path: Path) -> None:
    """Interrupted while taking the lock (e.g. Ctrl-C while waiting): if nobody holds the file,
    it is ours to remove; if someone does, they remove it."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _same_file(fd, path):
            os.unlink(path)
    except OSError:
        pass
    finally:
        os.close(fd)


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


_RETRYABLE = (OSError, urllib.error.URLError, TimeoutError, http.client.HTTPException)


def _is_final(exc: BaseException) -> bool:
    """An HTTP answer that asking again will not change (404, 403, 410...)."""
    code = getattr(exc, "code", None)
    return isinstance(exc, urllib.error.HTTPError) and code is not None and 400 <= code < 500 and code not in (408, 429)


class _Clock:
    """When the last byte arrived (monotonic seconds); the stall budget is measured from it."""

    def __init__(self, now: Callable[[], float]):
        self.now = now
        self.last_byte = now()

    def tick(self) -> None:
        self.last_byte = self.now()

    def idle(self) -> float:
        return self.now() - self.last_byte


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, size: int | None = None,
             transport: Transport | None = None, progress: bool = True, git_blob: str | None = None,
             retries: int = 3, backoff: float = 1.0, stall_budget: float = STALL_BUDGET,
             clock: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None) -> Path:
    """Fetch ``url`` to ``dest``, verified; resume ``<dest>.part`` if present; atomic rename.

    ``sha256`` / ``size`` / ``git_blob`` are checked when given (a ``size`` also lets a resume
    detect a ``.part`` that is already complete). A connection that breaks mid-way is retried
    at most ``retries`` times (waiting ``backoff`` x 1, 2, 4... s), each time resuming from the
    bytes already on disk, and never once no byte has arrived for ``stall_budget`` seconds
    (see the module docstring). A file that fails its check is deleted and ``DownloadError``
    raised. If ``dest`` already exists and matches the given hash, nothing is fetched.
    ``clock`` / ``sleep`` exist for tests.
    """
    dest = Path(dest)
    transport = transport or default_transport()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    lock = dest.with_name(dest.name + ".lock")

    with _lock(lock):
        try:
            if dest.is_file() and (sha256 or git_blob) and \
                    verify_file(dest, sha256=sha256, size=size, git_blob=git_blob) is None:
                return dest
            _fetch_with_retries(url, dest, part, size, transport, progress, retries, backoff, stall_budget,
                                _Clock(clock or _monotonic), sleep or _sleep)
            problem = verify_file(part, sha256=sha256, size=size, git_blob=git_blob)
            if problem is not None:
                part.unlink(missing_ok=True)
                raise DownloadError(url, dest, f"downloaded file rejected: {problem}; the partial file was deleted")
            os.replace(part, dest)
        finally:
            # whatever happened (Ctrl-C included), an empty .part is junk; a non-empty one is a resume point
            with contextlib.suppress(OSError):
                if part.stat().st_size == 0:
                    part.unlink()
    return dest


def _fetch_with_retries(url: str, dest: Path, part: Path, size: int | None, transport: Transport, progress: bool,
                        retries: int, backoff: float, stall_budget: float, clock: _Clock,
                        sleep: Callable[[float], None]) -> None:
    attempt = 0
    while True:
        start = part.stat().st_size if part.is_file() else 0
        if size is not None and start > size:  # a stale .part from some other file: start over
            part.unlink()
            start = 0
        try:
            if size is None or start < size:
                _fetch_into(url, part, start, size, transport, progress, dest, clock)
            return
        except DownloadError:
            raise
        except _RETRYABLE as exc:
            attempt += 1
            wait = backoff * min(2.0 ** (attempt - 1), 10.0)
            idle = clock.idle()
            stalled = idle + wait >= stall_budget
            if attempt > retries or stalled or _is_final(exc):
                have = part.stat().st_size if part.is_file() else 0
                kept = f"{have} bytes kept in {part.name}; run again to resume" if have else "nothing downloaded"
                why = f"; no data for {idle:.0f} s, giving up" if stalled and not _is_final(exc) else ""
                raise DownloadError(url, dest, f"{exc.__class__.__name__}: {exc}{why} ({kept})") from None
            log.warning("download of %s stalled or broke after %d bytes (%s); no data for %.0f s; "
                        "resuming in %.0f s (retry %d/%d, giving up after %.0f s without data)",
                        url, part.stat().st_size if part.is_file() else 0, exc, idle, wait, attempt, retries,
                        stall_budget)
            sleep(wait)


def _fetch_into(url: str, part: Path, start: int, size: int | None, transport: Transport, progress: bool,
                dest: Path, clock: _Clock | None = None) -> None:
    stream, total = transport.open(url, start)
    try:
        if size is not None and total is not None and total != size:
            part.unlink(missing_ok=True)
            raise DownloadError(url, dest, f"server reports {total} bytes, expected {size}")
        bar = _progress_bar(progress, total if total is not None else size, start, dest.name)
        # read1: whatever one socket read brings (at most CHUNK), so the stall clock ticks on a
        # slow link too instead of once per full MiB
        read = getattr(stream, "read1", None) or stream.read
        try:
            with open(part, "ab") as out:
                while True:
                    block = read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    if clock is not None:
                        clock.tick()
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
