"""The local executors: worker processes that die are replaced and their clip retried (bounded),
``--devices`` runs one pinned worker per device, bad combinations are usage errors, and every
executor gives exactly the results of the in-process run."""

from __future__ import annotations

import json

import pytest
from executor_fixtures import gen, manifest, metrics  # noqa: F401 (fixtures)
from click.testing import CliRunner

from interactive_eyes.app import engine, executors
from interactive_eyes.app.cli import main


def _records(out):
    """per_clip.jsonl without the timings, by (clip, metric)."""
    recs = [json.loads(x) for x in (out / "per_clip.jsonl").read_text().splitlines()]
    return {(r["clip"], r["metric"]): {k: v for k, v in r.items() if k != "seconds"} for r in recs}


def _aggregates(res):
    return {n: {k: v for k, v in m.items() if k != "failures" or v} for n, m in res["metrics"].items()}


def _score(gen, manifest, out, **kw):
    from interactive_eyes.data.manifest import load

    return engine.score(gen, benchmark=load(str(manifest)), out=out, progress=False, **kw)


def test_a_dead_worker_is_replaced_and_its_clip_retried(gen, manifest, metrics, tmp_path):
    marker = tmp_path / "deaths"
    opts = engine.EngineOptions(metric_options={"die_once": {"die_on": "c1", "marker": str(marker), "times": 1}})
    ref = _score(gen, manifest, tmp_path / "ref", metrics=["die_once", "luma_pooled"],
                 options=engine.EngineOptions(metric_options={"die_once": {"die_on": "never"}}))
    res = _score(gen, manifest, tmp_path / "out", metrics=["die_once", "luma_pooled"], options=opts,
                 executor=executors.LocalExecutor(2))
    assert marker.read_text() == "1"  # the worker died once on c1, and the retry scored it
    assert res["exit_code"] == 0 and _aggregates(res) == _aggregates(ref)
    assert _records(tmp_path / "out") == _records(tmp_path / "ref")  # cache keys included


def test_a_clip_that_kills_every_worker_fails_after_the_retries(gen, manifest, metrics, tmp_path):
    marker = tmp_path / "deaths"
    opts = engine.EngineOptions(metric_options={"die_once": {"die_on": "c2", "marker": str(marker), "times": -1}})
    res = _score(gen, manifest, tmp_path / "out", metrics=["die_once"], options=opts,
                 executor=executors.LocalExecutor(2, retries=1))
    m = res["metrics"]["die_once"]
    assert marker.read_text() == "2"  # retries=1: two attempts, then the clip is recorded as failed
    assert (m["n_ok"], m["n_failed"]) == (3, 1) and m["failures"][0]["clip"] == "c2"
    assert m["failures"][0]["reason"].startswith("worker process died 2 times on this clip (BrokenProcessPool")
    assert res["exit_code"] == 1


def test_with_clips_in_flight_a_dead_worker_is_replaced_and_its_clips_retried(gen, manifest, metrics, tmp_path):
    """``--workers 2 --clips-in-flight 2``: the worker that dies on c1 takes the clips in flight
    beside it; all are retried, and the results are those of the in-process run."""
    marker = tmp_path / "deaths"
    opts = engine.EngineOptions(metric_options={"die_once": {"die_on": "c1", "marker": str(marker), "times": 1}})
    ref = _score(gen, manifest, tmp_path / "ref", metrics=["die_once", "luma_pooled"],
                 options=engine.EngineOptions(metric_options={"die_once": {"die_on": "never"}}))
    res = _score(gen, manifest, tmp_path / "out", metrics=["die_once", "luma_pooled"], options=opts,
                 executor=executors.LocalExecutor(2, clips_in_flight=2))
    assert marker.read_text() == "1"
    assert res["exit_code"] == 0 and _aggregates(res) == _aggregates(ref)
    assert _records(tmp_path / "out") == _records(tmp_path / "ref")


def test_with_clips_in_flight_only_the_clip_that_kills_every_worker_fails(gen, manifest, metrics, tmp_path):
    """retries=1 and c2 kills every worker it runs on: the clips that died beside it are retried
    alone and score; c2 fails after its two attempts."""
    marker = tmp_path / "deaths"
    opts = engine.EngineOptions(metric_options={"die_once": {"die_on": "c2", "marker": str(marker), "times": -1}})
    res = _score(gen, manifest, tmp_path / "out", metrics=["die_once"], options=opts,
                 executor=executors.LocalExecutor(2, retries=1, clips_in_flight=2))
    m = res["metrics"]["die_once"]
    assert marker.read_text() == "2"
    assert (m["n_ok"], m["n_failed"]) == (3, 1) and m["failures"][0]["clip"] == "c2"
    assert m["failures"][0]["reason"] == "worker process died 2 times on this clip (exit code 17)"


def test_devices_run_one_pinned_worker_per_device(gen, manifest, metrics, tmp_path, monkeypatch):
    """Two CPU stand-ins for cuda:0 and cuda:1: the device check and the pinned device inside the
    worker are mocked (no GPU here); CUDA_VISIBLE_DEVICES is really set in each worker."""
    seen_checks = []
    monkeypatch.setattr("interactive_eyes.app.checks.require_device", seen_checks.append)
    monkeypatch.setattr(engine, "require_device", seen_checks.append)
    real_pin = executors.pin_device
    monkeypatch.setattr(executors, "pin_device", lambda d: (real_pin(d)[0], "cpu"))
    r = CliRunner().invoke(main, ["score", str(gen), "--manifest", str(manifest), "--metrics", "device_probe",
                                  "--devices", "cuda:0,cuda:1", "--out", str(tmp_path / "out"), "--json"])
    assert r.exit_code == 0, r.output
    assert seen_checks[:2] == ["cuda:0", "cuda:1"]
    details = [rec["details"] for rec in _records(tmp_path / "out").values()]
    assert len(details) == 4
    # both workers took clips, each under its own CUDA_VISIBLE_DEVICES, never the driver's process
    by_pid = {d["pid"]: d["cuda_visible_devices"] for d in details}
    assert sorted(by_pid.values()) == ["0", "1"] and len(by_pid) == 2
    import os

    assert os.getpid() not in by_pid
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["options"]["device"] == "cuda"
    ref = _score(gen, manifest, tmp_path / "ref", metrics=["mean_luma"])
    assert res["metrics"]["device_probe"]["per_clip"] == ref["metrics"]["mean_luma"]["per_clip"]


def test_pin_device():
    assert executors.pin_device("cuda:3") == ({"CUDA_VISIBLE_DEVICES": "3"}, "cuda:0")
    assert executors.pin_device("cuda") == ({"CUDA_VISIBLE_DEVICES": "0"}, "cuda:0")
    assert executors.pin_device("cpu") == ({}, "cpu")
    with pytest.raises(ValueError, match="--devices gpu1: expected cuda:N or cpu"):
        executors.pin_device("gpu1")
    with pytest.raises(ValueError, match="a GPU is named twice"):
        executors.parse_devices("cuda:0,cuda:0")


@pytest.mark.parametrize("args, code, needle", [
    (["--ship-videos"], 2, "--ray-address and --ship-videos need --executor ray"),
    (["--ray-address", "auto"], 2, "--ray-address and --ship-videos need --executor ray"),
    (["--devices", "cuda:0", "--workers", "2"], 2, "do not combine it with --workers"),
    (["--devices", "cuda:0", "--executor", "ray"], 2, "--devices is for the local executor"),
    (["--devices", "tpu:0"], 2, "--devices tpu:0: expected cuda:N or cpu"),
])
def test_bad_executor_options_are_usage_errors(gen, manifest, metrics, args, code, needle):
    r = CliRunner().invoke(main, ["score", str(gen), "--manifest", str(manifest), "--metrics", "mean_luma", *args])
    assert r.exit_code == code, r.output
    assert needle in r.output


def test_devices_without_cuda_is_an_environment_error(gen, manifest, metrics, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = CliRunner().invoke(main, ["score", str(gen), "--manifest", str(manifest), "--metrics", "mean_luma",
                                  "--devices", "cuda:0,cuda:1"])
    assert r.exit_code == 3 and "--device cuda:0: no CUDA device is available here" in r.output


def test_run_with_devices_writes_the_same_run(tmp_path, monkeypatch):
    """``run_method`` on two pinned CPU stand-ins for cuda:0/cuda:1: the same videos and run.json
    entries as the in-process run (only the driver writes run.json), one clip per worker."""
    from _executor_metrics import PickyMethod, write_person_audio

    from interactive_eyes.app.run import run_method
    from interactive_eyes.data.manifest import parse
    from app_helpers import manifest_dict

    monkeypatch.setattr("interactive_eyes.app.checks.require_device", lambda d: None)
    real_pin = executors.pin_device
    monkeypatch.setattr(executors, "pin_device", lambda d: (real_pin(d)[0], "cpu"))
    bench = parse(manifest_dict(3))
    root = write_person_audio(bench, tmp_path / "root")
    ref = run_method(PickyMethod(), benchmark=bench, out_dir=tmp_path / "ref", data_root=root, progress=False)
    two = run_method(PickyMethod(), benchmark=bench, out_dir=tmp_path / "two", data_root=root, progress=False,
                     executor=executors.devices_executor(["cuda:0", "cuda:1"]))

    def entry(e):
        return {k: v for k, v in e.items() if k not in ("started", "finished", "seconds", "info", "reference_frame")}

    assert {c: entry(e) for c, e in two["clips"].items()} == {c: entry(e) for c, e in ref["clips"].items()}
    assert [two["clips"][c]["status"] for c in ("c0", "c1", "c2")] == ["ok", "skipped", "failed"]
    assert two["clips"]["c0"]["info"]["cuda_visible_devices"] in ("0", "1")
    import os

    assert two["clips"]["c0"]["info"]["pid"] != os.getpid() and ref["clips"]["c0"]["info"]["pid"] == os.getpid()
    assert two["counts"] == ref["counts"]
