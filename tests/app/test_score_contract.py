"""The score/validate contract: each bad file fails its own clip with a one-line reason, the other
clips score, and the exit code says what happened (app/exit_codes.py)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from app_helpers import flip_mid_stream, write_clip, write_manifest, write_noise_clip
from click.testing import CliRunner

from interactive_eyes.app import checks
from interactive_eyes.app.cli import main

OK_VALUES = {"c0": 40, "c1": 80}  # write_clip(value=v): frame i is flat grey (v + 3 i)


def _opencv_mean(path):
    """Mean pixel value over all frames, decoded by OpenCV's own FFmpeg build (independent of PyAV)."""
    import cv2

    cap, means = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            return float(np.mean(means))
        means.append(frame.mean())


def _records(out):
    return {(r["clip"], r["metric"]): r for r in map(json.loads, (out / "per_clip.jsonl").read_text().splitlines())}


@pytest.fixture
def bad_folder(tmp_path, monkeypatch):
    """c0, c1 good; every other clip has one thing wrong with its file."""
    gen = tmp_path / "gen"
    gen.mkdir()
    for cid, v in OK_VALUES.items():
        write_clip(gen / f"{cid}.mp4", value=v)
    write_clip(gen / "c2.mp4", n=24)  # 2.0 s for a 1.0 s clip
    write_clip(gen / "c3.mp4", n=6)  # 0.5 s
    write_clip(gen / "c4.mp4", n=100, fps=100)  # 1.0 s, but at 100 fps
    write_noise_clip(tmp_path / "noise.mp4", n=12)
    flip_mid_stream(tmp_path / "noise.mp4", gen / "c5.mp4")  # decodes 5 of 12 frames
    write_clip(gen / "c6.mp4")
    write_clip(gen / "c7.mp4")
    write_clip(gen / "c7.MP4", value=9)  # differs only in case
    data = (gen / "c0.mp4").read_bytes()
    (gen / "c8.mp4").write_bytes(data[: len(data) // 3])
    unreadable = gen / "c6.mp4"
    os.chmod(unreadable, 0)
    if os.geteuid() == 0:  # root reads any file: refuse this one the way the kernel would for a user
        real_open = open

        def fake_open(path, *a, **k):
            if os.fspath(path) == os.fspath(unreadable):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real_open(path, *a, **k)

        monkeypatch.setattr(checks, "open", fake_open, raising=False)
    manifest = write_manifest(tmp_path / "m.json", 9)
    yield gen, manifest
    os.chmod(unreadable, 0o644)


EXPECTED = {
    "c2": "duration 2.000 s vs the clip's 1.000 s: 12.00 frames longer (allowed: 1 frame longer, 4 shorter, at 12 fps)",
    "c3": "duration 0.500 s vs the clip's 1.000 s: 6.00 frames shorter (allowed: 1 frame longer, 4 shorter, at 12 fps)",
    "c4": "frame rate 100.000 fps outside the supported [10, 60]",
    "c6": "cannot read the file (Permission denied)",
    "c7": "c7.MP4 and c7.mp4 differ only in case; keep one of them",
}


def test_score_fails_each_bad_clip_and_scores_the_others(bad_folder, fake_metrics, tmp_path):
    gen, manifest = bad_folder
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["score", str(gen), "--manifest", str(manifest), "--out", str(out),
                                  "--metrics", "mean_luma,luma_pooled"])
    assert r.exit_code == 1, r.output
    res = json.loads((out / "results.json").read_text())
    m = res["metrics"]["mean_luma"]
    assert (m["n_ok"], m["n_failed"], m["n_expected"]) == (2, 7, 9)
    for cid, v in OK_VALUES.items():  # 56.08 and 95.92 (yuv420p rounding of the flat greys v + 3 i)
        assert m["per_clip"][cid] == pytest.approx(_opencv_mean(gen / f"{cid}.mp4"), abs=1e-6)
    assert res["metrics"]["luma_pooled"]["n_samples"] == 24  # the two good clips' 12 frames each
    reasons = {f["clip"]: f["reason"] for f in m["failures"]}
    for cid, text in EXPECTED.items():
        assert text in reasons[cid], (cid, reasons[cid])
    assert reasons["c5"].startswith(f"{gen / 'c5.mp4'}: decoding failed after ")
    assert reasons["c8"].startswith(f"{gen / 'c8.mp4'}: ")
    assert all("\n" not in x for x in reasons.values())
    # per_clip.jsonl holds the status and reason of every file that exists (not of the ambiguous pair)
    recs = _records(out)
    for cid in ("c2", "c3", "c4", "c5", "c6", "c8"):
        for metric in ("mean_luma", "luma_pooled"):
            rec = recs[(cid, metric)]
            assert rec["status"] == "failed" and rec["reason"] == reasons[cid]
    assert recs[("c6", "mean_luma")]["cache_key"] is None  # no content hash for an unreadable file
    assert ("c7", "mean_luma") not in recs
    assert res["exit_code"] == 1 and "mean_luma: 7 of 9 clip(s) failed or missing" in res["problems"]
    assert "exit 1: mean_luma: 7 of 9" in r.output
    # a second run recomputes nothing and writes no duplicate line
    n = len((out / "per_clip.jsonl").read_text().splitlines())
    r2 = CliRunner().invoke(main, ["score", str(gen), "--manifest", str(manifest), "--out", str(out),
                                   "--metrics", "mean_luma,luma_pooled"])
    assert r2.exit_code == 1 and len((out / "per_clip.jsonl").read_text().splitlines()) == n


def test_validate_reports_the_same_problems(bad_folder):
    gen, manifest = bad_folder
    r = CliRunner().invoke(main, ["validate", str(gen), "--manifest", str(manifest), "--no-faces"])
    assert r.exit_code == 1, r.output
    lines = {line.split()[0]: line for line in r.output.splitlines()[1:-1]}
    for cid, text in EXPECTED.items():
        assert text in lines[cid], lines[cid]
    assert "decoding failed after 5 frames" in lines["c5"]
    for cid in OK_VALUES:
        assert lines[cid].split()[2] == "ok"
    assert r.output.splitlines()[-1] == "9 rows: 7 error(s), 0 warning(s)"
    # without decoding, the corrupt middle of c5 goes unnoticed: that is why --decode is the default
    r = CliRunner().invoke(main, ["validate", str(gen), "--manifest", str(manifest), "--no-faces", "--no-decode"])
    lines = {line.split()[0]: line for line in r.output.splitlines()[1:-1]}
    assert lines["c5"].split()[2] == "ok"


def test_validate_strict_stops_at_the_first_error(bad_folder):
    gen, manifest = bad_folder
    r = CliRunner().invoke(main, ["validate", str(gen), "--manifest", str(manifest), "--no-faces", "--strict"])
    assert r.exit_code == 1 and "--strict: c2 c2.mp4: duration 2.000 s vs the clip's 1.000 s" in r.output


def test_score_strict_stops_at_the_first_failed_clip(bad_folder, fake_metrics, tmp_path):
    gen, manifest = bad_folder
    r = CliRunner().invoke(main, ["score", str(gen), "--manifest", str(manifest), "--out", str(tmp_path / "o"),
                                  "--metrics", "mean_luma", "--strict"])
    assert r.exit_code == 1 and "--strict: clip c2, metric mean_luma: " in r.output
    assert not (tmp_path / "o" / "results.json").exists()


def test_sha256_read_error_is_a_per_clip_failure(tmp_path, fake_metrics, monkeypatch):
    from interactive_eyes.app import job

    gen = tmp_path / "gen"
    gen.mkdir()
    for i in range(3):
        write_clip(gen / f"c{i}.mp4", value=40 * (i + 1))
    real = job.file_sha256

    def sha(path):
        if os.path.basename(path) == "c1.mp4":
            raise OSError(5, "Input/output error", str(path))
        return real(path)

    monkeypatch.setattr(job, "file_sha256", sha)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["score", str(gen), "--manifest", str(write_manifest(tmp_path / "m.json")),
                                  "--out", str(out), "--metrics", "mean_luma"])
    assert r.exit_code == 1, r.output
    m = json.loads((out / "results.json").read_text())["metrics"]["mean_luma"]
    assert m["failures"] == [{"clip": "c1", "reason": f"{gen / 'c1.mp4'}: cannot read the file (Input/output error)"}]
    assert sorted(m["per_clip"]) == ["c0", "c2"]


def test_all_good_is_exit_0(tmp_path, fake_metrics):
    gen = tmp_path / "gen"
    gen.mkdir()
    for i in range(3):
        write_clip(gen / f"c{i}.mp4", value=40 * (i + 1))
    r = CliRunner().invoke(main, ["score", str(gen), "--manifest", str(write_manifest(tmp_path / "m.json")),
                                  "--metrics", "mean_luma"])
    assert r.exit_code == 0, r.output
    res = json.loads((gen / "ie-bench" / "results.json").read_text())
    assert (res["exit_code"], res["problems"]) == (0, [])
    r = CliRunner().invoke(main, ["validate", str(gen), "--manifest", str(tmp_path / "m.json"), "--no-faces"])
    assert r.exit_code == 0, r.output


def test_duration_and_fps_limits_at_their_boundaries():
    """8.6 s at 25 fps: 0.04 s (one frame) longer or 0.16 s (four frames) shorter pass, 1 ms of
    time-base slack on top; 0.042 s longer or 0.162 s shorter fail."""
    from types import SimpleNamespace

    clip = SimpleNamespace(duration=8.6)

    def problems(fps=25.0, duration=8.6, n=215, audio=True):
        info = SimpleNamespace(fps=fps, duration=duration, n_frames=n, has_audio=audio)
        return [m for _, m in checks.check_info(info, clip)]

    assert problems() == []
    assert problems(duration=8.6 + 0.0405) == [] and problems(duration=8.6 - 0.1605) == []
    assert problems(duration=8.6 + 0.042) == ["duration 8.642 s vs the clip's 8.600 s: 1.05 frames longer "
                                              "(allowed: 1 frame longer, 4 shorter, at 25 fps)"]
    assert problems(duration=8.6 - 0.162) == ["duration 8.438 s vs the clip's 8.600 s: 4.05 frames shorter "
                                              "(allowed: 1 frame longer, 4 shorter, at 25 fps)"]
    assert "not a number" in problems(duration=float("nan"))[0]
    # AnyTalker's 4n+1 rule: 205 frames at 24 fps for the 8.597 s clip 11 (1.3 frames short) pass
    assert [m for _, m in checks.check_info(SimpleNamespace(fps=24.0, duration=205 / 24, n_frames=205,
                                                            has_audio=True), SimpleNamespace(duration=8.597))] == []
    assert problems(fps=10.0, duration=8.6) == [] and problems(fps=60.0, duration=8.6) == []
    assert problems(fps=9.99) == ["frame rate 9.990 fps outside the supported [10, 60]"]
    assert problems(fps=1000.0) == ["frame rate 1000.000 fps outside the supported [10, 60]"]
    assert problems(n=1) == ["only 1 frame(s); at least 2 are needed"]
    assert problems(audio=False)[0].startswith("no audio stream")
    assert problems(duration=60.0) == ["duration 60.000 s vs the clip's 8.600 s: 1285.00 frames longer "
                                       "(allowed: 1 frame longer, 4 shorter, at 25 fps)"]


def test_case_duplicates_name_both(tmp_path):
    from app_helpers import small_manifest

    gen = tmp_path / "g"
    gen.mkdir()
    (gen / "c0.mp4").write_bytes(b"a")
    (gen / "c0.MP4").write_bytes(b"b")
    plans, _ = checks.plan_inputs(gen, small_manifest(2), ["c0", "c1"])
    assert plans["c0"].video is None
    assert plans["c0"].problem == f"{gen}: c0.MP4 and c0.mp4 differ only in case; keep one of them"
    assert plans["c1"].problem == f"{gen / 'c1.mp4'}: missing file"
