"""The weights registry: table sanity, resolve order, offline errors, verified fetch (mocked transport)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import re
import zipfile

import pytest

from interactive_eyes import weights as W


@pytest.fixture(autouse=True)
def _registry_as_users_see_it(no_face_model_env):
    """These tests read the registry's own state for face_landmarker: no test-wide override."""

PAYLOAD = b"fake model bytes " * 4096
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FakeTransport:
    def __init__(self, data=PAYLOAD):
        self.data = data
        self.calls = []

    def open(self, url, start=0):
        self.calls.append((url, start))
        return io.BytesIO(self.data[start:]), len(self.data)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("IE_BENCH_HOME", str(tmp_path))
    monkeypatch.delenv("IE_BENCH_OFFLINE", raising=False)
    for name in W.WEIGHTS:
        monkeypatch.delenv(W.WEIGHTS[name].env_var, raising=False)
    W._hash_memo.clear()
    return tmp_path


@pytest.fixture
def fake_entry(monkeypatch):
    """pt_inception pointed at PAYLOAD (its real hash cannot be downloaded here)."""
    spec = dataclasses.replace(W.WEIGHTS["pt_inception"], sha256=PAYLOAD_SHA, size=len(PAYLOAD), sha256_prefix=None)
    monkeypatch.setitem(W.WEIGHTS, "pt_inception", spec)
    return spec


# --------------------------------------------------------------------------- the table


def test_every_entry_is_complete_and_consistent():
    required = {"syncnet_v2", "s3fd", "pt_inception", "i3d_torchscript", "arcface_w600k_r50", "fan_2dfan4",
                "fan_s3fd", "face_landmarker"}
    assert required <= set(W.WEIGHTS)
    for name, s in W.WEIGHTS.items():
        assert s.name == name and s.urls and all(u.startswith(("http://", "https://")) for u in s.urls)
        assert s.license and s.used_by and s.source and s.filename
        assert s.sha256 or s.git_blob or not s.confirmed, f"{name}: a confirmed entry needs a hash"
        if s.sha256:
            assert re.fullmatch(r"[0-9a-f]{64}", s.sha256), name
        if s.sha256_prefix:
            assert s.sha256_prefix in s.filename, name  # torch-hub convention: the name carries the prefix
            assert s.sha256 is None or s.sha256.startswith(s.sha256_prefix), name
    # values from spec/metrics.md §1.1, §3.3, §6.3
    assert W.WEIGHTS["syncnet_v2"].sha256.startswith("961e8696") and W.WEIGHTS["syncnet_v2"].size == 54_573_114
    assert W.WEIGHTS["s3fd"].sha256.endswith("c491") and W.WEIGHTS["s3fd"].size == 89_844_381
    assert W.WEIGHTS["i3d_torchscript"].git_blob == "93daef59c7ae0e9e8f76225521407e60cbafa6aa"
    assert W.WEIGHTS["face_landmarker"].sha256.startswith("64184e22")
    assert W.WEIGHTS["arcface_w600k_r50"].member == "w600k_r50.onnx" and not W.WEIGHTS["arcface_w600k_r50"].confirmed


def test_unknown_name_suggests_the_closest():
    with pytest.raises(W.WeightsError, match="did you mean 'i3d_torchscript'"):
        W.get_spec("i3d_torchscrip")


# --------------------------------------------------------------------------- resolve


def test_offline_missing_error_names_path_url_and_command(home, monkeypatch):
    monkeypatch.setenv("IE_BENCH_OFFLINE", "1")
    with pytest.raises(W.WeightsMissingError) as err:
        W.resolve("i3d_torchscript")
    msg = str(err.value)
    assert str(home / "weights" / "i3d_torchscript.pt") in msg
    assert "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1" in msg
    assert "ie-bench weights fetch i3d_torchscript" in msg and "IE_BENCH_WEIGHT_I3D_TORCHSCRIPT" in msg
    assert "\n" not in msg
    assert isinstance(err.value, FileNotFoundError)


@pytest.fixture
def hashed_later(monkeypatch):
    """Hash records dated 2 s after now: as if the file had been written well before it was hashed,
    so the racy-record rule (a record within 1 s of the file's change is not trusted) is out of
    the way of tests about the cache key."""
    import time

    monkeypatch.setattr(W, "_now_ns", lambda: time.time_ns() + 2 * W.RACY_NS)


def test_resolve_downloads_once_then_uses_the_cache_without_rehashing(home, fake_entry, monkeypatch, hashed_later):
    t = FakeTransport()
    path = W.resolve("pt_inception", transport=t, progress=False)
    assert path == home / "weights" / fake_entry.filename and path.read_bytes() == PAYLOAD
    assert t.calls == [(fake_entry.url, 0)]
    hashed = []
    real_sha256 = W.sha256_file
    monkeypatch.setattr(W, "sha256_file", lambda p: hashed.append(p) or real_sha256(p))
    W._hash_memo.clear()  # a new process: only the on-disk hash cache is left
    assert W.resolve("pt_inception", transport=t) == path
    assert hashed == [] and len(t.calls) == 1  # neither downloaded nor hashed again
    old_mtime = path.stat().st_mtime_ns
    path.write_bytes(PAYLOAD[::-1])  # same size, new content and mtime -> hashed again, mismatch
    os.utime(path, ns=(old_mtime + 10**9, old_mtime + 10**9))  # coarse file-system clocks
    with pytest.raises(W.WeightsMismatchError, match="offline"):
        W.resolve("pt_inception", offline=True)
    assert len(hashed) == 1


def test_cached_mismatch_is_replaced_when_online(home, fake_entry):
    target = fake_entry.cache_path()
    target.parent.mkdir(parents=True)
    target.write_bytes(b"corrupt")
    t = FakeTransport()
    assert W.resolve("pt_inception", transport=t, progress=False).read_bytes() == PAYLOAD
    assert len(t.calls) == 1


def test_user_path_argument_and_env_var(home, fake_entry, tmp_path, monkeypatch):
    good = tmp_path / "elsewhere.pth"
    good.write_bytes(PAYLOAD)
    assert W.resolve("pt_inception", path=str(good), offline=True) == good
    monkeypatch.setenv("IE_BENCH_WEIGHT_PT_INCEPTION", str(good))
    assert W.resolve("pt_inception", offline=True) == good
    assert W.verify("pt_inception").user_supplied
    monkeypatch.setenv("IE_BENCH_WEIGHT_PT_INCEPTION", str(tmp_path / "nope.pth"))
    with pytest.raises(W.WeightsMissingError, match=r"nope.pth: .*\$IE_BENCH_WEIGHT_PT_INCEPTION"):
        W.resolve("pt_inception")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"something else")
    with pytest.raises(W.WeightsMismatchError, match="not the 'pt_inception' weights"):
        W.resolve("pt_inception", path=str(bad))


def test_unconfirmed_pin_warns_instead_of_rejecting(home, tmp_path, caplog):
    other = tmp_path / "w600k_r50.onnx"
    _tiny_onnx(other)  # a well-formed ONNX file whose hash nobody published
    with caplog.at_level(logging.WARNING, logger="interactive_eyes.weights"):
        assert W.resolve("arcface_w600k_r50", path=str(other)) == other
    assert "unconfirmed pin" in caplog.text
    assert W.verify("arcface_w600k_r50", path=str(other)).state == "mismatch"


def test_filename_prefix_is_enforced_even_for_unconfirmed_pins(home, tmp_path):
    wrong = tmp_path / "2DFAN4.pth.tar"
    wrong.write_bytes(b"not the file whose sha256 starts with 11f355bf06")
    with pytest.raises(W.WeightsMismatchError, match="prefix 11f355bf06"):
        W.resolve("fan_2dfan4", path=str(wrong))


# --------------------------------------------------------------------------- fetch


def test_fetch_rejects_a_checksum_mismatch_and_leaves_nothing(home, fake_entry):
    with pytest.raises(W.WeightsError, match="sha256 .* expected"):
        W.fetch("pt_inception", transport=FakeTransport(data=PAYLOAD[:-1] + b"!"), progress=False)
    assert list((home / "weights").glob("pt_inception*")) == [] or \
        all(p.suffix == ".lock" for p in (home / "weights").glob("pt_inception*"))


def test_fetch_tries_the_next_url(home, monkeypatch):
    spec = dataclasses.replace(W.WEIGHTS["syncnet_v2"], sha256=PAYLOAD_SHA, size=len(PAYLOAD))
    monkeypatch.setitem(W.WEIGHTS, "syncnet_v2", spec)

    class FirstFails(FakeTransport):
        def open(self, url, start=0):
            if url == spec.urls[0]:
                self.calls.append((url, start))
                raise OSError("connection refused")
            return super().open(url, start)

    t = FirstFails()
    monkeypatch.setattr(W, "BACKOFF", 0.0)
    assert W.fetch("syncnet_v2", transport=t, progress=False).read_bytes() == PAYLOAD
    # the first URL: one try and RETRIES_BEFORE_NEXT_URL = 1 retry, then the mirror, once
    assert t.calls == [(spec.urls[0], 0), (spec.urls[0], 0), (spec.urls[1], 0)]


def test_stalled_network_costs_62_seconds_for_two_urls_not_495(home, monkeypatch):
    """Both syncnet_v2 hosts accept and then send nothing. Each attempt ends at the 15 s read
    timeout; each URL is given up after 31 s without data (15 + 1 s back-off + 15)."""
    import socket

    from interactive_eyes import download as D

    clock = {"t": 0.0}
    monkeypatch.setattr(D, "_monotonic", lambda: clock["t"])
    monkeypatch.setattr(D, "_sleep", lambda s: clock.__setitem__("t", clock["t"] + s))

    class Silent(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            clock["t"] += D.READ_TIMEOUT
            raise socket.timeout("timed out")

    class Stalled:
        calls = []

        def open(self, url, start=0):
            self.calls.append(url)
            return io.BufferedReader(Silent()), None

    spec = W.WEIGHTS["syncnet_v2"]
    with pytest.raises(W.WeightsError) as err:
        W.fetch("syncnet_v2", transport=Stalled(), progress=False)
    assert clock["t"] == 2 * (2 * D.READ_TIMEOUT + 1.0) == 62.0
    assert Stalled.calls == [spec.urls[0]] * 2 + [spec.urls[1]] * 2
    msg = str(err.value)
    assert "\n" not in msg and all(u in msg for u in spec.urls) and msg.count("no data for 31 s, giving up") == 2
    assert list((home / "weights").iterdir()) == []  # no .lock, no .part


def test_fetch_extracts_a_zip_member_and_deletes_the_archive(home, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("buffalo_l/det_10g.onnx", b"detector")
        zf.writestr("buffalo_l/w600k_r50.onnx", PAYLOAD)
    spec = dataclasses.replace(W.WEIGHTS["arcface_w600k_r50"], sha256=PAYLOAD_SHA, size=len(PAYLOAD), confirmed=True)
    monkeypatch.setitem(W.WEIGHTS, "arcface_w600k_r50", spec)
    path = W.fetch("arcface_w600k_r50", transport=FakeTransport(data=buf.getvalue()), progress=False)
    assert path == home / "weights" / "insightface" / "buffalo_l" / "w600k_r50.onnx"
    assert path.read_bytes() == PAYLOAD
    assert not (path.parent / "buffalo_l.zip").exists()
    assert W.verify("arcface_w600k_r50").state == "verified"


def test_status_reports_each_state(home, fake_entry):
    W.fetch("pt_inception", transport=FakeTransport(), progress=False)
    bad = W.WEIGHTS["face_landmarker"].cache_path()
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"x")
    states = {s.name: s.state for s in W.status()}
    assert states["pt_inception"] == "verified" and states["face_landmarker"] == "mismatch"
    assert states["syncnet_v2"] == "missing"


def test_torch_hub_cache_points_third_party_downloads_at_the_cache(home):
    torch = pytest.importorskip("torch")
    before = torch.hub.get_dir()
    with W.torch_hub_cache() as hub:
        assert torch.hub.get_dir() == str(hub)
        # face-alignment downloads into <hub>/checkpoints/<filename>: exactly the registry's path
        assert hub / "checkpoints" / "s3fd-619a316812.pth" == W.WEIGHTS["fan_s3fd"].cache_path()
    assert torch.hub.get_dir() == before


# --------------------------------------------------------------------------- the hash cache's key


def _cache_record(home, path):
    import json

    return json.loads((home / "weights" / ".hashes.json").read_text())[str(path.resolve())]


def _placed(home, spec, data=PAYLOAD):
    target = spec.cache_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def test_zero_filled_file_with_same_size_and_mtime_is_not_verified(home, fake_entry, hashed_later):
    import time

    target = _placed(home, fake_entry)
    assert W.verify("pt_inception").state == "verified"
    before = target.stat()
    assert _cache_record(home, target)["ctime_ns"] == before.st_ctime_ns
    time.sleep(0.05)  # past the file system's timestamp tick, so the write gets a new ctime
    with open(target, "r+b") as fh:  # in place: same inode
        fh.write(bytes(len(PAYLOAD)))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = target.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    assert after.st_ctime_ns != before.st_ctime_ns
    W._hash_memo.clear()  # a new process: only .hashes.json is left
    st = W.verify("pt_inception")
    assert st.state == "mismatch" and st.sha256 == hashlib.sha256(bytes(len(PAYLOAD))).hexdigest()
    # and within the same process (the in-memory memo has the same key)
    W._hash_memo.clear()
    assert W.verify("pt_inception").state == "mismatch"


def test_a_replaced_file_is_hashed_again_even_with_equal_times(home, fake_entry, hashed_later, tmp_path):
    target = _placed(home, fake_entry)
    assert W.verify("pt_inception").state == "verified"
    rec = _cache_record(home, target)
    other = tmp_path / "other"
    other.write_bytes(PAYLOAD[::-1])
    os.utime(other, ns=(rec["mtime_ns"], rec["mtime_ns"]))
    os.replace(other, target)  # new inode, same size and mtime
    W._hash_memo.clear()
    assert W.verify("pt_inception").state == "mismatch"


def _forged_record(home, target, sha, hashed_after_change_ns):
    import json

    st = target.stat()
    record = {"ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
              "hashed_at_ns": max(st.st_mtime_ns, st.st_ctime_ns) + hashed_after_change_ns, "sha256": sha}
    (home / "weights" / ".hashes.json").write_text(json.dumps({str(target.resolve()): record}))
    W._hash_memo.clear()


def test_racy_records_are_not_trusted(home, fake_entry):
    target = _placed(home, fake_entry)
    wrong = "0" * 64
    _forged_record(home, target, wrong, W.RACY_NS - 1)  # hashed 1 ns short of a second after the change
    assert W.file_sha256(target) == PAYLOAD_SHA
    _forged_record(home, target, wrong, W.RACY_NS)  # a second after: trusted (that is what a cache is)
    assert W.file_sha256(target) == wrong


def test_rehash_ignores_the_cache(home, fake_entry):
    target = _placed(home, fake_entry)
    _forged_record(home, target, "0" * 64, 10 * W.RACY_NS)  # a record that lies about the content
    assert W.verify("pt_inception").state == "mismatch"
    assert W.verify("pt_inception", rehash=True).state == "verified"
    assert _cache_record(home, target)["sha256"] == PAYLOAD_SHA  # and the record is corrected
    assert W.verify("pt_inception").state == "verified"


# --------------------------------------------------------------------------- corrupt, unconfirmed pins


def _tiny_onnx(path):
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(64 * 8, dtype=np.float32).reshape(64, 8), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], [weight])
    onnx.save(helper.make_model(graph), str(path))
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "zero-filled"])
def test_corrupt_onnx_with_an_unconfirmed_pin_is_rejected_in_one_line(home, tmp_path, damage):
    good = _tiny_onnx(tmp_path / "good.onnx")
    assert W.verify("arcface_w600k_r50", path=tmp_path / "good.onnx").state == "mismatch"  # usable: warns only
    bad = tmp_path / "w600k_r50.onnx"
    bad.write_bytes(good[: len(good) // 2] if damage == "truncated" else bytes(len(good)))
    st = W.verify("arcface_w600k_r50", path=bad)
    assert st.state == "corrupt" and not st.ok
    # layout (from onnx itself): ir_version is bytes 0-1, the graph's tag is byte 2, its 2-byte
    # length varint bytes 3-4, its payload starts at byte 5
    import onnx

    graph_len = len(onnx.load_from_string(good).graph.SerializeToString())
    assert 128 <= graph_len < 16384  # so the length varint has 2 bytes
    expected = {"truncated": f"truncated: field 7 at byte 2 needs {graph_len} bytes, {len(good) // 2 - 5} left",
                "zero-filled": "invalid protobuf field number 0 at byte 0"}[damage]
    assert expected in st.detail
    with pytest.raises(W.WeightsMismatchError) as err:
        W.resolve("arcface_w600k_r50", path=bad)
    msg = str(err.value)
    assert msg.startswith(f"{bad}: 'arcface_w600k_r50' is unusable (not a valid ONNX file: ") and "\n" not in msg
    assert msg.endswith("point $IE_BENCH_WEIGHT_ARCFACE_W600K_R50 at a good copy")
    # in the cache the fix is a forced fetch; offline it cannot be replaced
    cached = W.WEIGHTS["arcface_w600k_r50"].cache_path()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(bad.read_bytes())
    with pytest.raises(W.WeightsMismatchError, match=r"weights fetch arcface_w600k_r50 --force"):
        W.resolve("arcface_w600k_r50", offline=True)


def test_corrupt_download_of_an_unhashed_entry_is_deleted(home):
    # AnyTalker files have no hash at all: a torch file that is not a zip nor a pickle is refused
    with pytest.raises(W.WeightsError, match=r"not a valid torch file: neither a torch zip archive nor a pickle"):
        W.fetch("wan21_fun_inp_vae", transport=FakeTransport(data=b"<html>rate limited</html>"), progress=False)
    assert not W.WEIGHTS["wan21_fun_inp_vae"].cache_path().exists()


def test_a_truncated_arcface_makes_identity_unavailable_with_one_line_not_a_crash(home, tmp_path):
    """The issue's case: a truncated w600k_r50.onnx (unconfirmed pin) used to warn and then crash
    every score inside onnxruntime (InvalidProtobuf). Now the metric reports itself unavailable."""
    pytest.importorskip("onnxruntime")
    from interactive_eyes.metrics.identity import IdentitySimilarity

    good = _tiny_onnx(tmp_path / "good.onnx")
    bad = tmp_path / "w600k_r50.onnx"
    bad.write_bytes(good[:100])
    reason = IdentitySimilarity(backend="arcface", weights_path=str(bad)).unavailable()
    import onnx

    graph_len = len(onnx.load_from_string(good).graph.SerializeToString())  # from onnx itself
    pins = W.verify("arcface_w600k_r50", path=bad).detail.split("; ", 1)[1]  # the size/sha256 notes
    assert reason == (f"identity (arcface): {bad}: 'arcface_w600k_r50' is unusable (not a valid ONNX file: "
                      f"truncated: field 7 at byte 2 needs {graph_len} bytes, 95 left (file is 100 bytes); {pins}); "
                      f"point $IE_BENCH_WEIGHT_ARCFACE_W600K_R50 at a good copy")
    assert "\n" not in reason
