"""``ie-bench weights`` and ``ie-bench stats`` through click's runner (no network: mocked transport)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from interactive_eyes import weights as W
from interactive_eyes.app.cli import main


@pytest.fixture(autouse=True)
def _registry_as_users_see_it(no_face_model_env):
    """These tests read the registry's own state for face_landmarker: no test-wide override."""

PAYLOAD = b"weights " * 5000
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("IE_BENCH_HOME", str(tmp_path))
    monkeypatch.delenv("IE_BENCH_OFFLINE", raising=False)
    for spec in W.WEIGHTS.values():
        monkeypatch.delenv(spec.env_var, raising=False)
    monkeypatch.setitem(W.WEIGHTS, "face_landmarker",
                        dataclasses.replace(W.WEIGHTS["face_landmarker"], sha256=SHA, size=len(PAYLOAD)))

    class Fake:
        def open(self, url, start=0):
            return io.BytesIO(PAYLOAD[start:]), len(PAYLOAD)

    monkeypatch.setattr("interactive_eyes.download.default_transport", lambda: Fake())
    return tmp_path


def test_list_fetch_verify(home):
    runner = CliRunner()
    out = runner.invoke(main, ["weights", "list"])
    assert out.exit_code == 0 and "face_landmarker" in out.output and "missing" in out.output
    out = runner.invoke(main, ["weights", "fetch", "face_landmarker", "--quiet"])
    assert out.exit_code == 0, out.output
    assert (home / "weights" / "face_landmarker.task").read_bytes() == PAYLOAD
    out = runner.invoke(main, ["weights", "verify", "face_landmarker"])
    assert out.exit_code == 0 and "verified" in out.output
    rows = {r["name"]: r for r in json.loads(runner.invoke(main, ["weights", "list", "--json"]).output)}
    assert rows["face_landmarker"]["state"] == "verified" and rows["face_landmarker"]["sha256_actual"] == SHA
    assert rows["syncnet_v2"]["state"] == "missing" and rows["syncnet_v2"]["license"]


def test_verify_fails_on_mismatch_and_on_missing_named_weight(home):
    runner = CliRunner()
    target = home / "weights" / "face_landmarker.task"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"broken")
    out = runner.invoke(main, ["weights", "verify"])
    assert out.exit_code == 1 and "MISMATCH" in out.output
    assert runner.invoke(main, ["weights", "verify", "syncnet_v2"]).exit_code == 1


@pytest.mark.parametrize("where", ["group", "subcommand", "env"])
def test_fetch_offline_checks_what_is_in_place_exit_3_when_missing(home, monkeypatch, where):
    runner = CliRunner()
    args = {"group": ["weights", "--offline", "fetch"], "subcommand": ["weights", "fetch", "--offline"],
            "env": ["weights", "fetch"]}[where]
    if where == "env":
        monkeypatch.setenv("IE_BENCH_OFFLINE", "1")
    out = runner.invoke(main, [*args, "face_landmarker"])
    assert out.exit_code == 3, out.output
    target = home / "weights" / "face_landmarker.task"
    assert f"face_landmarker: {target}: weights 'face_landmarker' missing and offline mode is on" in out.output
    assert "1 weight(s) missing or unusable (offline): face_landmarker" in out.output
    assert not target.exists()  # nothing was downloaded
    target.parent.mkdir(parents=True)
    target.write_bytes(PAYLOAD)
    out = runner.invoke(main, [*args, "face_landmarker"])
    assert out.exit_code == 0 and out.output == f"face_landmarker: {target}\n"


def test_exit_codes_of_weights_commands(home, monkeypatch):
    runner = CliRunner()
    out = runner.invoke(main, ["weights", "fetch", "face_landmarker_task"])
    assert out.exit_code == 2 and "did you mean 'face_landmarker'" in out.output
    assert runner.invoke(main, ["weights", "verify", "nope"]).exit_code == 2
    assert runner.invoke(main, ["weights", "fetch", "--offline", "--force", "face_landmarker"]).exit_code == 2

    class Down:
        def open(self, url, start=0):
            raise OSError("Network is unreachable")

    monkeypatch.setattr("interactive_eyes.download.default_transport", lambda: Down())
    monkeypatch.setattr(W, "BACKOFF", 0.0)
    out = runner.invoke(main, ["weights", "fetch", "--quiet", "face_landmarker"])
    assert out.exit_code == 3 and "1 weight(s) could not be fetched: face_landmarker" in out.output
    assert "Network is unreachable" in out.output
    assert list((home / "weights").iterdir()) == []  # no .lock, no .part
    # verify and list never download: --offline is accepted there too and changes nothing
    assert runner.invoke(main, ["weights", "verify", "--offline"]).exit_code == 0
    assert runner.invoke(main, ["weights", "list", "--offline"]).exit_code == 0
    assert "Exit codes: 0 = " in runner.invoke(main, ["weights", "verify", "--help"]).output


def test_verify_rehash_ignores_a_stale_hash_cache(home):
    runner = CliRunner()
    target = home / "weights" / "face_landmarker.task"
    target.parent.mkdir(parents=True)
    target.write_bytes(PAYLOAD)
    st = target.stat()
    record = {"ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
              "hashed_at_ns": st.st_ctime_ns + 10 * W.RACY_NS, "sha256": "f" * 64}  # a record that lies
    (home / "weights" / ".hashes.json").write_text(json.dumps({str(target.resolve()): record}))
    W._hash_memo.clear()
    out = runner.invoke(main, ["weights", "verify", "face_landmarker"])
    assert out.exit_code == 1 and "MISMATCH" in out.output and "sha256 " + "f" * 64 in out.output
    out = runner.invoke(main, ["weights", "verify", "--rehash", "face_landmarker"])
    assert out.exit_code == 0 and out.output == f"face_landmarker: verified  {target}\n"


def test_verify_reports_a_truncated_onnx_as_corrupt(home, tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    data = helper.make_model(graph).SerializeToString()
    bad = tmp_path / "w600k_r50.onnx"
    bad.write_bytes(data[:-3])
    monkeypatch.setenv("IE_BENCH_WEIGHT_ARCFACE_W600K_R50", str(bad))
    out = CliRunner().invoke(main, ["weights", "verify", "arcface_w600k_r50"])
    assert out.exit_code == 1, out.output
    assert out.output.startswith(f"arcface_w600k_r50: CORRUPT  {bad}  (not a valid ONNX file: truncated: ")
    assert onnx.load_from_string(data)  # the untruncated bytes are a valid model (the reference)


def test_stats_writes_reference_npz_with_provenance(home, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from interactive_eyes.download import sha256_file
    from interactive_eyes.media.video import write_video
    from interactive_eyes.stats.frechet import GaussianStats

    class TinyI3D(torch.nn.Module):  # the detector's signature; features = per-frame means, padded
        def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                    return_features: bool = False) -> torch.Tensor:
            m = x.mean(dim=(1, 3, 4))
            return torch.nn.functional.pad(m, (0, 400 - m.shape[1]))

    det = tmp_path / "i3d.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(TinyI3D()).save(str(det))
    monkeypatch.setitem(W.WEIGHTS, "i3d_torchscript",
                        dataclasses.replace(W.WEIGHTS["i3d_torchscript"], sha256=sha256_file(det), size=det.stat().st_size))
    monkeypatch.setenv("IE_BENCH_WEIGHT_I3D_TORCHSCRIPT", str(det))
    videos = tmp_path / "videos"
    videos.mkdir()
    rng = np.random.default_rng(0)
    write_video(videos / "a.mp4", [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(34)], fps=25)
    out = CliRunner().invoke(main, ["stats", str(videos), "-o", str(tmp_path / "ref.npz"), "--metric", "fvd"])
    assert out.exit_code == 0, out.output
    assert "2 samples, 400-d (fvd)" in out.output and "rank" in out.output  # sample-size warning
    st, meta = GaussianStats.load(tmp_path / "ref.npz")
    assert st.count == 2
    assert meta["extractor"] == "stylegan-v-i3d-torchscript" and meta["weights_sha256"] == sha256_file(det)
    assert meta["clip_len"] == "16"
    out = CliRunner().invoke(main, ["stats", str(tmp_path / "empty_missing"), "-o", str(tmp_path / "x.npz")])
    assert out.exit_code != 0
