"""The scoring engine on synthetic clips with deterministic test metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from app_helpers import small_manifest, write_clip

from interactive_eyes.app import engine
from interactive_eyes.app.results import format_table


@pytest.fixture
def gen(tmp_path):
    d = tmp_path / "gen"
    d.mkdir()
    for i in range(3):
        write_clip(d / f"c{i}.mp4", value=40 * (i + 1))
    return d


def test_scores_every_clip_once_and_aggregates(gen, fake_metrics):
    bench = small_manifest()
    res = engine.score(gen, benchmark=bench, metrics=["mean_luma", "luma_pooled"], progress=False)
    m = res["metrics"]["mean_luma"]
    assert (m["n_ok"], m["n_failed"], m["n_expected"]) == (3, 0, 3)
    per_clip = m["per_clip"]
    assert per_clip["c0"] < per_clip["c1"] < per_clip["c2"]
    assert m["value"] == pytest.approx(np.mean(list(per_clip.values())))
    lo, hi = m["ci95"]
    assert lo <= m["value"] <= hi
    assert set(m["per_person"]) == {"p0", "p1"}
    assert m["secondary"]["half"]["value"] == pytest.approx(m["value"] / 2)
    pooled = res["metrics"]["luma_pooled"]
    # pooled mean luma over all 36 frames = the mean of the three clips' per-frame means (12 frames each)
    assert pooled["n_samples"] == 36 and pooled["value"] == pytest.approx(np.mean(list(per_clip.values())), rel=1e-12)
    lines = (gen / "ie-bench" / "per_clip.jsonl").read_text().splitlines()
    assert len(lines) == 6
    saved = json.loads((gen / "ie-bench" / "results.json").read_text())
    assert saved["schema"] == "ie-bench/results" and saved["benchmark"]["manifest_sha256"] == bench.sha256
    table = format_table(res)
    assert "mean_luma" in table and "3/3" in table


def test_resume_recomputes_nothing(gen, fake_metrics, monkeypatch):
    bench = small_manifest()
    first = engine.score(gen, benchmark=bench, metrics=["mean_luma"], progress=False)
    calls = []
    real = engine.analyze_clip
    monkeypatch.setattr(engine, "analyze_clip", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = engine.score(gen, benchmark=bench, metrics=["mean_luma"], progress=False)
    assert calls == []
    assert again["metrics"] == first["metrics"]
    assert len((gen / "ie-bench" / "per_clip.jsonl").read_text().splitlines()) == 3
    # a changed video (new content hash) is recomputed, the others are not
    write_clip(gen / "c1.mp4", value=7)
    engine.score(gen, benchmark=bench, metrics=["mean_luma"], progress=False)
    assert [Path(a[0]).name for a in calls] == ["c1.mp4"]
    # changed parameters are a different cache key
    calls.clear()
    engine.score(gen, benchmark=bench, metrics=["mean_luma"], progress=False,
                 options=engine.EngineOptions(metric_options={"mean_luma": {"scale": 2.0}}))
    assert len(calls) == 3


def test_torn_last_line_is_repaired(gen, fake_metrics, monkeypatch):
    """Exactly the torn record is recomputed; every other line stays byte-identical."""
    bench = small_manifest()
    first = engine.score(gen, benchmark=bench, metrics=["mean_luma"], progress=False)
    p = gen / "ie-bench" / "per_clip.jsonl"
    data = p.read_bytes()
    lines = data.splitlines(keepends=True)
    torn = json.loads(lines[-1])
    p.write_bytes(data[: len(data) - 20])  # killed in the middle of the last write
    calls = []
    real = engine.analyze_clip
    monkeypatch.setattr(engine, "analyze_clip",
                        lambda video, clip, metrics, **k: calls.append((Path(video).name, [m.name for m in metrics]))
                        or real(video, clip, metrics, **k))
    again = engine.score(gen, benchmark=bench, metrics=["mean_luma"], progress=False)
    assert calls == [(torn["video"], ["mean_luma"])]
    assert again["metrics"]["mean_luma"]["value"] == first["metrics"]["mean_luma"]["value"]
    repaired = p.read_bytes().splitlines(keepends=True)
    assert len(repaired) == 3 and repaired[:2] == lines[:2]
    redone = json.loads(repaired[2])
    assert {k: v for k, v in redone.items() if k != "seconds"} == {k: v for k, v in torn.items() if k != "seconds"}


def test_failures_are_counted_not_dropped(gen, fake_metrics):
    bench = small_manifest(n_clips=4)  # c3 has no file
    (gen / "c2.mp4").write_bytes(b"")
    (gen / "notes.txt").write_text("x")
    (gen / "c11.mp4").write_bytes(b"")
    res = engine.score(gen, benchmark=bench, metrics=["mean_luma", "broken"], progress=False)
    m = res["metrics"]["mean_luma"]
    assert (m["n_ok"], m["n_failed"], m["n_expected"]) == (2, 2, 4)
    reasons = {f["clip"]: f["reason"] for f in m["failures"]}
    assert "missing file" in reasons["c3"] and "empty" in reasons["c2"] and "c2.mp4" in reasons["c2"]
    assert all("\n" not in r for r in reasons.values())
    b = res["metrics"]["broken"]
    assert b["n_ok"] == 0 and "frame 3: RuntimeError: boom" in b["failures"][0]["reason"]
    extras = {e["file"]: e["did_you_mean"] for e in res["extra_files"]}
    assert extras["notes.txt"] is None and extras["c11.mp4"] == "c1.mp4"


def test_one_frame_video_fails_cleanly(tmp_path, fake_metrics):
    d = tmp_path / "g"
    d.mkdir()
    write_clip(d / "c0.mp4", n=1)
    res = engine.score(d, benchmark=small_manifest(1), metrics=["mean_luma"], progress=False)
    assert "only 1 frame" in res["metrics"]["mean_luma"]["failures"][0]["reason"]


def test_limit_marks_partial_and_unknown_names_suggest(gen, fake_metrics):
    bench = small_manifest()
    res = engine.score(gen, benchmark=bench, metrics=["mean_luma"], limit=1, progress=False)
    assert res["partial"] and res["n_clips"] == 1
    with pytest.raises(KeyError, match="did you mean 'mean_luma'"):
        engine.score(gen, benchmark=bench, metrics=["mean_lum"], progress=False)
    with pytest.raises(KeyError, match="did you mean 'c1'"):
        engine.score(gen, benchmark=bench, metrics=["mean_luma"], clips=["c01"], progress=False)


def test_workers_give_the_same_results(gen, fake_metrics, tmp_path):
    bench = small_manifest()
    one = engine.score(gen, benchmark=bench, metrics=["mean_luma", "luma_pooled"], out=tmp_path / "a", progress=False)
    two = engine.score(gen, benchmark=bench, metrics=["mean_luma", "luma_pooled"], out=tmp_path / "b", workers=2,
                       progress=False)
    for name in ("mean_luma", "luma_pooled"):
        assert one["metrics"][name]["value"] == two["metrics"][name]["value"]


KILL_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from app_helpers import small_manifest
import _fake_metrics as fm
from interactive_eyes.metrics import METRICS
from interactive_eyes.app import engine
METRICS.register("mean_luma", "_fake_metrics:MeanLuma")
METRICS.register("luma_pooled", "_fake_metrics:LumaStats")
from interactive_eyes.app import store
real = store.ResultStore.append
def append(self, record):
    real(self, record)
    print("DONE", flush=True)  # a record is on disk; the parent may kill us from now on
    time.sleep(1.0)
store.ResultStore.append = append
engine.score({gen!r}, benchmark=small_manifest(6), metrics=["mean_luma", "luma_pooled"], out={out!r}, progress=False)
"""


def test_killed_run_resumes_to_identical_results(tmp_path, fake_metrics):
    gen = tmp_path / "gen"
    gen.mkdir()
    for i in range(6):
        write_clip(gen / f"c{i}.mp4", value=20 * i + 5)
    bench = small_manifest(6)
    reference = engine.score(gen, benchmark=bench, metrics=["mean_luma", "luma_pooled"], out=tmp_path / "ref",
                             progress=False)
    out = tmp_path / "killed"
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), gen=str(gen), out=str(out))
    kill_after = int(np.random.default_rng(11).integers(1, 12))  # a fixed (seeded) record of the 12
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    seen = 0
    for line in proc.stdout:
        if line.startswith("DONE"):
            seen += 1
            if seen == kill_after:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len((out / "per_clip.jsonl").read_text().splitlines())
    assert n_before == kill_after  # killed while it waited after exactly that record
    resumed = engine.score(gen, benchmark=bench, metrics=["mean_luma", "luma_pooled"], out=out, progress=False)
    for name in ("mean_luma", "luma_pooled"):
        assert resumed["metrics"][name]["value"] == reference["metrics"][name]["value"]
        assert resumed["metrics"][name]["ci95"] == reference["metrics"][name]["ci95"]
    records = [json.loads(x) for x in (out / "per_clip.jsonl").read_text().splitlines()]
    keys = [(r["clip"], r["metric"]) for r in records]
    assert len(keys) == len(set(keys)) == 12


def test_reference_sets_reach_the_set_level_step(gen, fake_metrics, tmp_path):
    bench = small_manifest()
    res = engine.score(gen, benchmark=bench, metrics=["luma_ref"], progress=False)
    assert "needs a reference set" in res["skipped_metrics"]["luma_ref"]
    pooled = engine.score(gen, benchmark=bench, metrics=["luma_pooled"], out=tmp_path / "p", progress=False)
    ref = tmp_path / "ref.npz"
    np.savez(ref, mean=np.array(10.0))
    res = engine.score(gen, benchmark=bench, metrics=["luma_ref"], progress=False,
                       options=engine.EngineOptions(references={"luma_ref": str(ref)}))
    m = res["metrics"]["luma_ref"]
    assert m["value"] == pytest.approx(abs(pooled["metrics"]["luma_pooled"]["value"] - 10.0))
    assert m["reference"]["source"] == str(ref) and len(m["reference"]["sha256"]) == 64
    bad = engine.score(gen, benchmark=bench, metrics=["luma_ref"], progress=False,
                       options=engine.EngineOptions(references={"luma_ref": str(tmp_path / "nothing.npz")}))
    assert "reference" in bad["skipped_metrics"]["luma_ref"]


def test_unknown_metric_option_is_a_one_line_error(gen, fake_metrics):
    with pytest.raises(ValueError, match=r"metric mean_luma: unknown option\(s\) scal \(options: scale\)"):
        engine.score(gen, benchmark=small_manifest(), metrics=["mean_luma"], progress=False,
                     options=engine.EngineOptions(metric_options={"mean_luma": {"scal": 2}}))
