"""The shared download helper: verified, resumable, atomic; mocked transport and a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading

import pytest

from interactive_eyes.download import DownloadError, UrllibTransport, download, git_blob_sha1, verify_file

DATA = bytes(range(256)) * 1000  # 256,000 bytes
SHA = hashlib.sha256(DATA).hexdigest()
URL = "https://example.invalid/model.bin"


class FakeTransport:
    """Serves DATA from byte ``start``; ``cut_after`` bytes then the connection 'drops' (once)."""

    def __init__(self, data=DATA, cut_after=None, total=None):
        self.data, self.cut_after, self.total = data, cut_after, total
        self.starts = []

    def open(self, url, start=0):
        self.starts.append(start)
        chunk = self.data[start:]
        if self.cut_after is not None and len(self.starts) == 1:
            chunk = chunk[: self.cut_after]
        return io.BytesIO(chunk), (self.total if self.total is not None else len(self.data))


def test_verified_download_is_atomic(tmp_path):
    dest = tmp_path / "sub" / "model.bin"
    t = FakeTransport()
    assert download(URL, dest, sha256=SHA, size=len(DATA), transport=t, progress=False) == dest
    assert dest.read_bytes() == DATA and t.starts == [0]
    assert not (tmp_path / "sub" / "model.bin.part").exists()
    # already there and matching: nothing is fetched again
    t2 = FakeTransport()
    download(URL, dest, sha256=SHA, transport=t2, progress=False)
    assert t2.starts == []


def test_dropped_connection_resumes_from_the_partial_file(tmp_path):
    dest = tmp_path / "model.bin"
    t = FakeTransport(cut_after=100_000)
    download(URL, dest, sha256=SHA, size=len(DATA), transport=t, progress=False, backoff=0)
    assert t.starts == [0, 100_000]  # second request asks for the remaining bytes only
    assert dest.read_bytes() == DATA


def test_interrupted_run_keeps_part_and_next_run_resumes(tmp_path):
    dest = tmp_path / "model.bin"
    with pytest.raises(DownloadError, match="run again to resume") as err:
        download(URL, dest, sha256=SHA, size=len(DATA), transport=FakeTransport(data=DATA[:70_000], total=len(DATA)),
                 progress=False, retries=0)
    assert URL in str(err.value) and str(dest) in str(err.value) and "\n" not in str(err.value)
    assert not dest.exists() and (tmp_path / "model.bin.part").stat().st_size == 70_000
    t = FakeTransport()
    download(URL, dest, sha256=SHA, size=len(DATA), transport=t, progress=False)
    assert t.starts == [70_000] and dest.read_bytes() == DATA


def test_checksum_mismatch_is_rejected_and_nothing_is_left(tmp_path):
    dest = tmp_path / "model.bin"
    bad = DATA[:-1] + b"\x00"
    with pytest.raises(DownloadError, match="sha256 .* expected") as err:
        download(URL, dest, sha256=SHA, transport=FakeTransport(data=bad), progress=False)
    assert "partial file was deleted" in str(err.value)
    assert not dest.exists() and not (tmp_path / "model.bin.part").exists()


def test_wrong_server_size_is_rejected_before_reading(tmp_path):
    dest = tmp_path / "model.bin"
    with pytest.raises(DownloadError, match="server reports 5 bytes, expected 256000"):
        download(URL, dest, size=len(DATA), transport=FakeTransport(total=5), progress=False)
    assert not dest.exists()


def test_stale_oversized_part_is_discarded(tmp_path):
    dest = tmp_path / "model.bin"
    (tmp_path / "model.bin.part").write_bytes(b"x" * (len(DATA) + 10))
    t = FakeTransport()
    download(URL, dest, sha256=SHA, size=len(DATA), transport=t, progress=False)
    assert t.starts == [0] and dest.read_bytes() == DATA


def test_git_blob_verification(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"hello\n")
    assert git_blob_sha1(p) == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object` of "hello\n"
    assert verify_file(p, git_blob="ce013625030ba8dba906f756967f9e9ca394464a") is None
    assert "git blob id" in verify_file(p, git_blob="0" * 40)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    honour_range = True

    def do_GET(self):  # noqa: N802
        rng = self.headers.get("Range")
        if rng and self.honour_range:
            start = int(rng.split("=")[1].rstrip("-"))
            body = DATA[start:]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(DATA) - 1}/{len(DATA)}")
        else:
            body = DATA
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("honour_range", [True, False])
def test_urllib_transport_resumes_with_range_or_skips_when_ignored(tmp_path, honour_range):
    handler = type("H", (_RangeHandler,), {"honour_range": honour_range})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/model.bin"
        dest = tmp_path / "model.bin"
        (tmp_path / "model.bin.part").write_bytes(DATA[:12_345])
        download(url, dest, sha256=SHA, size=len(DATA), transport=UrllibTransport(timeout=10), progress=False)
        assert dest.read_bytes() == DATA
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- stalls, timeouts, budget

import socket  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402

from interactive_eyes import download as D  # noqa: E402


class FakeClock:
    """Monotonic time that only moves when the code under test waits or a fake read 'stalls'."""

    def __init__(self):
        self.t = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += s


class StallingStream(io.BytesIO):
    """Delivers its bytes, then behaves like a socket whose read timeout fires: the clock moves
    on by the transport's read timeout and ``socket.timeout`` is raised."""

    def __init__(self, data, clock, stall_s):
        super().__init__(data)
        self.clock, self.stall_s = clock, stall_s

    def read1(self, n=-1):
        block = super().read1(n)
        if block:
            return block
        self.clock.t += self.stall_s
        raise socket.timeout("timed out")


class StallingTransport:
    """Each attempt serves ``per_attempt`` bytes (0: a host that sends nothing) then stalls."""

    def __init__(self, clock, per_attempt=0, stall_s=D.READ_TIMEOUT):
        self.clock, self.per_attempt, self.stall_s = clock, per_attempt, stall_s
        self.starts = []

    def open(self, url, start=0):
        self.starts.append(start)
        end = start + self.per_attempt
        if end >= len(DATA):  # the last piece: the server finishes and closes normally
            return io.BytesIO(DATA[start:]), len(DATA)
        return StallingStream(DATA[start:end], self.clock, self.stall_s), len(DATA)


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*"))


def test_stalled_host_fails_within_the_stall_budget_not_minutes(tmp_path, caplog):
    # host accepts and sends nothing: attempt 1 times out at 15 s, back-off 1 s, attempt 2 times
    # out at 31 s > STALL_BUDGET (30 s) -> give up, although retries=3 would allow two more
    clock = FakeClock()
    t = StallingTransport(clock)
    with caplog.at_level("WARNING", logger="interactive_eyes.download"):
        with pytest.raises(DownloadError, match=r"timed out; no data for 31 s, giving up \(nothing downloaded\)"):
            download(URL, tmp_path / "m.bin", sha256=SHA, size=len(DATA), transport=t, progress=False,
                     clock=clock, sleep=clock.sleep)
    assert t.starts == [0, 0] and clock.sleeps == [1.0]
    assert clock.t - 1000.0 == 2 * D.READ_TIMEOUT + 1.0 == 31.0
    # the user is told while waiting: one warning per stall, naming the URL and the budget
    assert len(caplog.records) == 1 and URL in caplog.text and "no data for 15 s" in caplog.text
    assert leftovers(tmp_path) == []  # no .lock, no empty .part


def test_a_slow_link_that_still_delivers_keeps_resuming(tmp_path):
    # every attempt brings 64,000 bytes and then stalls 15 s: 4 attempts, 45 s of stalls in all,
    # but never 30 s without a byte, so the download completes
    clock = FakeClock()
    t = StallingTransport(clock, per_attempt=64_000)
    download(URL, tmp_path / "m.bin", sha256=SHA, size=len(DATA), transport=t, progress=False,
             clock=clock, sleep=clock.sleep)
    assert t.starts == [0, 64_000, 128_000, 192_000] and clock.sleeps == [1.0, 2.0, 4.0]
    assert (tmp_path / "m.bin").read_bytes() == DATA and leftovers(tmp_path) == ["m.bin"]


def test_retry_count_still_bounds_fast_failures(tmp_path):
    class Refused:
        calls = 0

        def open(self, url, start=0):
            Refused.calls += 1
            raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    clock = FakeClock()
    with pytest.raises(DownloadError, match="Connection refused.*nothing downloaded"):
        download(URL, tmp_path / "m.bin", transport=Refused(), progress=False, retries=3, clock=clock,
                 sleep=clock.sleep)
    assert Refused.calls == 4 and clock.sleeps == [1.0, 2.0, 4.0]  # 1 + 3 retries, back-off doubling
    assert leftovers(tmp_path) == []


def test_http_404_is_not_retried(tmp_path):
    class NotFound:
        calls = 0

        def open(self, url, start=0):
            NotFound.calls += 1
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    clock = FakeClock()
    with pytest.raises(DownloadError, match="HTTP Error 404"):
        download(URL, tmp_path / "m.bin", transport=NotFound(), progress=False, clock=clock, sleep=clock.sleep)
    assert NotFound.calls == 1 and clock.sleeps == []


class _StallHandler(http.server.BaseHTTPRequestHandler):
    """Sends ``head`` bytes of the body (or not even the headers when ``head`` is None), then hangs."""

    head: int | None = 1000
    release: threading.Event

    def do_GET(self):  # noqa: N802
        if self.head is not None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA[: self.head])
            self.wfile.flush()
        self.release.wait(10)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("head, connect, read", [(None, 0.3, 30.0), (1000, 30.0, 0.3)],
                         ids=["no-headers:connect-timeout", "body-stalls:read-timeout"])
def test_real_socket_stall_is_cut_by_the_transport_timeouts(tmp_path, head, connect, read):
    release = threading.Event()
    handler = type("H", (_StallHandler,), {"head": head, "release": release})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/m.bin"
        # the other timeout is 30 s: each case is cut by the one timeout it is about
        transport = UrllibTransport(connect_timeout=connect, read_timeout=read)
        t0 = time.monotonic()
        with pytest.raises(DownloadError, match="timed out") as err:
            download(url, tmp_path / "m.bin", size=len(DATA), transport=transport, progress=False,
                     backoff=0.05, stall_budget=0.5)
        elapsed = time.monotonic() - t0
        # two attempts of 0.3 s + 0.05 s back-off; well under the 10 s the server would hang
        assert 0.6 <= elapsed < 3.0, elapsed
        kept = "1000 bytes kept in m.bin.part" if head else "nothing downloaded"
        assert kept in str(err.value)
        assert leftovers(tmp_path) == (["m.bin.part"] if head else [])
    finally:
        release.set()
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- no .lock / .part junk


class Raising:
    """Serves ``DATA[:after]`` and then raises ``exc`` from read (``after=None``: from open)."""

    def __init__(self, exc, after=None):
        self.exc, self.after = exc, after

    def open(self, url, start=0):
        if self.after is None:
            raise self.exc
        exc = self.exc

        class S(io.BytesIO):
            def read1(self, n=-1):
                block = super().read1(n)
                if not block:
                    raise exc
                return block

        return S(DATA[: self.after]), len(DATA)


@pytest.mark.parametrize("exc, after, kept", [
    (KeyboardInterrupt(), None, []),
    (KeyboardInterrupt(), 5000, ["m.bin.part"]),  # a resume point, on purpose
    (RuntimeError("bug in a transport"), None, []),
    (RuntimeError("bug in a transport"), 5000, ["m.bin.part"]),
    (MemoryError(), 0, []),
], ids=["ctrl-c-connecting", "ctrl-c-mid-file", "exception-open", "exception-read", "empty-part"])
def test_lock_and_empty_part_are_removed_on_every_exit_path(tmp_path, exc, after, kept):
    with pytest.raises(type(exc)):
        download(URL, tmp_path / "m.bin", sha256=SHA, transport=Raising(exc, after), progress=False)
    assert leftovers(tmp_path) == kept
    if kept:
        assert (tmp_path / "m.bin.part").read_bytes() == DATA[:after]


def test_lock_removed_after_success_and_after_rejection(tmp_path):
    download(URL, tmp_path / "a.bin", sha256=SHA, transport=FakeTransport(), progress=False)
    with pytest.raises(DownloadError):
        download(URL, tmp_path / "b.bin", sha256="0" * 64, transport=FakeTransport(), progress=False)
    assert leftovers(tmp_path) == ["a.bin"]


def test_a_waiter_on_an_unlinked_lock_file_locks_the_live_one(tmp_path):
    """A holds the lock; B waits on that inode; A unlinks it and C takes a new lock file before A
    closes; when A closes, B must not run alongside C (it has to lock C's file and wait)."""
    import fcntl
    import os

    path = tmp_path / "m.bin.lock"
    fd_a = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd_a, fcntl.LOCK_EX)
    b_in = threading.Event()

    def b():
        with D._lock(path):
            b_in.set()

    thread = threading.Thread(target=b, daemon=True)
    thread.start()
    time.sleep(0.3)  # B is now blocked in flock on A's inode
    os.unlink(path)  # A's release, step 1
    fd_c = os.open(path, os.O_RDWR | os.O_CREAT)  # C arrives and locks the new file
    fcntl.flock(fd_c, fcntl.LOCK_EX)
    os.close(fd_a)  # A's release, step 2: B wakes up holding a dead inode
    assert not b_in.wait(0.5), "B entered while C holds the lock"
    os.unlink(path)
    os.close(fd_c)
    assert b_in.wait(5)
    thread.join(5)
    assert leftovers(tmp_path) == []


def test_failed_data_fetch_leaves_no_lock_and_no_part(tmp_path):
    from interactive_eyes.data.fetch import fetch_release

    class Down:
        def open(self, url, start=0):
            raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    root = tmp_path / "data"
    report = fetch_release(root, clips=["interact_1", "interact_11"], transport=Down(), progress=False, backoff=0)
    assert report.items and all(i.status == "failed" for i in report.items)
    assert [p for p in root.rglob("*") if p.is_file()] == []
