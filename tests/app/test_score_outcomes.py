"""Exit codes and run-level outcomes of ``score``: nothing scored, skipped and unusable metrics,
usage errors, --offline, --device cuda without CUDA, the output lock, results merging."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from app_helpers import write_clip, write_manifest
from click.testing import CliRunner

from interactive_eyes.app import engine, lock
from interactive_eyes.app.cli import main


@pytest.fixture
def gen(tmp_path):
    d = tmp_path / "gen"
    d.mkdir()
    for i in range(3):
        write_clip(d / f"c{i}.mp4", value=40 * (i + 1))
    return d


@pytest.fixture
def manifest(tmp_path):
    return write_manifest(tmp_path / "m.json", 3)


def _score(gen, manifest, *args):
    return CliRunner().invoke(main, ["score", str(gen), "--manifest", str(manifest), *args])


def _results(gen):
    return json.loads((gen / "ie-bench" / "results.json").read_text())


def test_empty_folder_is_exit_1(tmp_path, manifest, fake_metrics):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _score(empty, manifest, "--metrics", "mean_luma")
    assert r.exit_code == 1, r.output
    m = _results(empty)["metrics"]["mean_luma"]
    assert (m["n_ok"], m["n_failed"]) == (0, 3)
    assert "exit 1: mean_luma: 3 of 3 clip(s) failed or missing" in r.output


def test_most_clips_missing_is_exit_1(tmp_path, fake_metrics):
    d = tmp_path / "g"
    d.mkdir()
    write_clip(d / "c0.mp4")
    r = _score(d, write_manifest(tmp_path / "m.json", 29), "--metrics", "mean_luma")
    assert r.exit_code == 1
    m = _results(d)["metrics"]["mean_luma"]
    assert (m["n_ok"], m["n_failed"], m["n_expected"]) == (1, 28, 29)
    assert {f["reason"] for f in m["failures"]} == {f"{d / f'c{i}.mp4'}: missing file" for i in range(1, 29)}


def test_every_requested_metric_skipped_is_exit_1(gen, manifest, fake_metrics):
    r = _score(gen, manifest, "--metrics", "luma_ref")
    assert r.exit_code == 1
    res = _results(gen)
    assert res["metrics"] == {} and "needs a reference set" in res["skipped_metrics"]["luma_ref"]
    assert res["problems"][0] == "nothing was scored: no metric could run"


def test_unusable_model_file_is_unavailable_not_a_crash(gen, manifest, fake_metrics):
    r = _score(gen, manifest, "--metrics", "mean_luma,corrupt_model,corrupt_init")
    assert r.exit_code == 1, r.output
    res = _results(gen)
    assert res["metrics"]["mean_luma"]["n_ok"] == 3
    assert res["skipped_metrics"] == {
        "corrupt_model": "InvalidProtobuf: [ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from w.onnx "
                         "failed:Protobuf parsing failed.",
        "corrupt_init": "EOFError: w.pt: Ran out of input (truncated file)",
    }
    assert "skipped corrupt_model: InvalidProtobuf" in r.output


def test_unusable_model_in_the_default_set_does_not_crash(gen, fake_metrics, monkeypatch):
    """No --metrics: every registered metric; the broken ones are listed, the rest score."""
    from interactive_eyes.app.metric_setup import prepare_metrics

    runnable, skipped, _ = prepare_metrics(["mean_luma", "corrupt_model", "corrupt_init"], engine.EngineOptions(),
                                           gen, requested=False)
    assert [m.name for m in runnable] == ["mean_luma"] and set(skipped) == {"corrupt_model", "corrupt_init"}


@pytest.mark.parametrize("args, needle", [
    (["--limit", "-1"], "Invalid value for '--limit': -1 is not in the range x>=1"),
    (["--limit", "0"], "Invalid value for '--limit': 0 is not in the range x>=1"),
    (["--workers", "0"], "Invalid value for '--workers'"),
    (["--metrics", "mean_lum"], "did you mean 'mean_luma'"),
    (["--clips", "c01"], "did you mean 'c1'"),
    (["--metrics", "mean_luma", "--option", "mean_luma.scal=2"], "metric mean_luma: unknown option(s) scal"),
    (["--metrics", "mean_luma", "--option", "nonsense"], "is not METRIC.KEY=VALUE"),
])
def test_usage_errors_are_exit_2(gen, manifest, fake_metrics, args, needle):
    r = _score(gen, manifest, *args)
    assert r.exit_code == 2, r.output
    assert needle in r.output
    assert not (gen / "ie-bench" / "per_clip.jsonl").exists()


def test_bad_manifest_is_exit_2(gen, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for cmd in ("score", "validate"):
        r = CliRunner().invoke(main, [cmd, str(gen), "--manifest", str(bad)])
        assert r.exit_code == 2 and str(bad) in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1


def test_validate_negative_limit_is_exit_2(gen, manifest):
    r = CliRunner().invoke(main, ["validate", str(gen), "--manifest", str(manifest), "--limit", "-1"])
    assert r.exit_code == 2 and "-1 is not in the range x>=1" in r.output


def test_validate_limit_keeps_the_first_n(gen, manifest):
    r = CliRunner().invoke(main, ["validate", str(gen), "--manifest", str(manifest), "--limit", "2", "--no-faces"])
    assert r.exit_code == 0, r.output
    assert [ln.split()[0] for ln in r.output.splitlines()[1:-1]] == ["c0", "c1"]


def test_device_cuda_without_cuda_is_exit_3(gen, manifest, fake_metrics, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = _score(gen, manifest, "--metrics", "mean_luma", "--device", "cuda")
    assert r.exit_code == 3, r.output
    assert "--device cuda: no CUDA device is available here" in r.output
    assert not (gen / "ie-bench" / "results.json").exists()  # nothing recorded as cuda


def test_device_index_beyond_the_devices_is_exit_3(monkeypatch):
    import torch

    from interactive_eyes.app.checks import require_device
    from interactive_eyes.app.errors import DeviceUnavailable

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    require_device("cuda:0")
    with pytest.raises(DeviceUnavailable, match=r"--device cuda:1: this machine has 1 CUDA device\(s\)"):
        require_device("cuda:1")


def test_offline_flag_sets_offline_mode_for_the_run_only(gen, manifest, fake_metrics, monkeypatch):
    monkeypatch.delenv("IE_BENCH_OFFLINE", raising=False)
    r = _score(gen, manifest, "--metrics", "offline_probe", "--offline", "--out", str(gen / "a"))
    assert r.exit_code == 1, r.output
    res = json.loads((gen / "a" / "results.json").read_text())
    assert res["skipped_metrics"] == {"offline_probe": "weights not cached and offline mode is on"}
    assert "IE_BENCH_OFFLINE" not in os.environ
    r = _score(gen, manifest, "--metrics", "offline_probe", "--out", str(gen / "b"))
    assert r.exit_code == 0, r.output


def test_second_writer_gets_exit_3(gen, manifest, fake_metrics):
    out = gen / "ie-bench"
    out.mkdir()
    with lock.exclusive(out, engine.LOCK_FILE, "test"):
        r = _score(gen, manifest, "--metrics", "mean_luma")
    assert r.exit_code == 3
    assert r.output.strip() == (f"Error: {out}: another ie-bench score (pid {os.getpid()}) is writing to this "
                                f"folder (lock {engine.LOCK_FILE}); wait for it or use another output folder")
    assert not (out / "per_clip.jsonl").exists()
    r = _score(gen, manifest, "--metrics", "mean_luma")  # released with the holder
    assert r.exit_code == 0, r.output


HOLD = """
import sys, time
from interactive_eyes.app.lock import exclusive
with exclusive(sys.argv[1], sys.argv[2], "x"):
    print("HELD", flush=True)
    time.sleep(30)
"""


def test_lock_held_by_another_process(gen, manifest, fake_metrics):
    out = gen / "ie-bench"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out), engine.LOCK_FILE], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "HELD"
        r = _score(gen, manifest, "--metrics", "mean_luma")
        assert r.exit_code == 3 and f"(pid {proc.pid}) is writing to this folder" in r.output
    finally:
        proc.kill()
        proc.wait()
    t0 = time.time()  # the OS released the lock with the killed process
    assert _score(gen, manifest, "--metrics", "mean_luma").exit_code == 0 and time.time() - t0 < 30


def test_results_merge_metrics_of_earlier_runs(gen, manifest, fake_metrics):
    assert _score(gen, manifest, "--metrics", "mean_luma").exit_code == 0
    first = _results(gen)["metrics"]["mean_luma"]
    r = _score(gen, manifest, "--metrics", "luma_pooled")
    assert r.exit_code == 0, r.output
    res = _results(gen)
    assert set(res["metrics"]) == {"mean_luma", "luma_pooled"}
    carried = res["metrics"]["mean_luma"]
    assert carried["carried_forward"] is True and "carried_forward" not in res["metrics"]["luma_pooled"]
    assert (carried["value"], carried["per_clip"], carried["ci95"]) == (first["value"], first["per_clip"], first["ci95"])
    assert "mean_luma: from an earlier run on the same inputs" in r.output
    # a changed video: its old record is not "for the current inputs" any more
    write_clip(gen / "c1.mp4", value=7)
    assert _score(gen, manifest, "--metrics", "luma_pooled").exit_code == 0
    carried = _results(gen)["metrics"]["mean_luma"]
    assert sorted(carried["per_clip"]) == ["c0", "c2"] and carried["n_ok"] == 2
    # other options for the metric: a different cache key, not carried
    r = _score(gen, manifest, "--metrics", "luma_pooled", "--option", "mean_luma.scale=2")
    assert "mean_luma" not in _results(gen)["metrics"]


def test_truncated_arcface_file_skips_identity_and_the_others_score(gen, manifest, fake_metrics, tmp_path):
    """The real identity metric with a truncated ONNX file (a tiny model of the real format)."""
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [3 * 112 * 112, 4],
                           np.random.default_rng(0).normal(size=3 * 112 * 112 * 4).astype(np.float32))
    graph = helper.make_graph([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
                              "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 112, 112])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    data = onnx.helper.make_model(graph).SerializeToString()
    bad = tmp_path / "w600k_r50.onnx"
    bad.write_bytes(data[: len(data) // 2])
    r = _score(gen, manifest, "--metrics", "mean_luma,identity", "--option", f"identity.weights_path={bad}",
               "--option", "identity.backend=arcface")
    assert r.exit_code == 1, r.output
    res = _results(gen)
    assert res["metrics"]["mean_luma"]["n_ok"] == 3 and "identity" not in res["metrics"]
    reason = res["skipped_metrics"]["identity"]
    assert reason.startswith(f"identity (arcface): {bad}: 'arcface_w600k_r50' is unusable") and "\n" not in reason


def test_non_finite_value_fails_that_clip_only(gen, manifest, fake_metrics):
    r = _score(gen, manifest, "--metrics", "nan_luma")  # c0 (grey 40..73, yuv-rounded mean 56.1) stays finite
    assert r.exit_code == 0, r.output
    dark = gen / "dark"
    dark.mkdir()
    for i, v in enumerate((10, 80, 120)):
        write_clip(dark / f"c{i}.mp4", value=v)
    r = _score(dark, manifest, "--metrics", "nan_luma")
    assert r.exit_code == 1, r.output
    m = json.loads((dark / "ie-bench" / "results.json").read_text())["metrics"]["nan_luma"]
    assert sorted(m["per_clip"]) == ["c1", "c2"]
    (failure,) = m["failures"]
    assert failure["clip"] == "c0" and failure["reason"].startswith(
        "c0.mp4: nan_luma returned a non-finite number (Out of range float values are not JSON compliant")
