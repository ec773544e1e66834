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
