"""``ie-bench interactivity``: one video, per-person and overall values, diagnostics, errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from interactive_eyes.app.cli import main

FPS = 25
N = 30


@pytest.fixture(scope="module")
def video_and_manifest(tmp_path_factory):
    """A one-person synthetic video (still, then 2 px/frame to the right) and a manifest for it."""
    from interactive_eyes.faces.synthetic import Pose, Shot, astronaut
    from interactive_eyes.media.video import write_video

    root = tmp_path_factory.mktemp("cli")
    shot = Shot(astronaut(), zoom=2.0, size=(480, 400))
    video = write_video(root / "solo.mp4", (shot.render(Pose(tx=2.0 * max(0, k - 10))) for k in range(N)), FPS)
    manifest = {
        "schema": "ie-bench/manifest", "schema_version": 1, "name": "cli-test", "version": "1",
        "clips": [
            {"id": "solo", "duration": N / FPS, "people": [{"role": "p0", "audio": "solo.wav", "speaking": [[0.0, 0.2]]}]},
            {"id": "duo", "duration": N / FPS, "people": [{"role": "left", "audio": "l.wav", "speaking": []},
                                                          {"role": "right", "audio": "r.wav", "speaking": []}]},
        ],
    }
    path = root / "manifest.json"
    path.write_text(json.dumps(manifest))
    return video, path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_prints_per_person_and_overall_values(video_and_manifest):
    video, manifest = video_and_manifest
    r = invoke("interactivity", video, "--manifest", manifest)  # clip id from the file name
    assert r.exit_code == 0, r.output
    assert "clip solo: interactivity (corrected, mediapipe-tasks) ok" in r.output
    assert "p0:" in r.output and "overall:" in r.output and "per 1/25 s" in r.output


def test_json_output_matches_the_library(video_and_manifest):
    from interactive_eyes.app.cmd_interactivity import score_video
    from interactive_eyes.data.manifest import load

    video, manifest = video_and_manifest
    r = invoke("interactivity", video, "--clip", "solo", "--manifest", manifest, "--mode", "paper", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    lib = score_video(video, load(manifest).clip("solo"), mode="paper")
    assert out["status"] == "ok" and out["details"]["mode"] == "paper"
    assert out["value"] == pytest.approx(lib.value) and out["per_person"]["p0"] == pytest.approx(lib.value)
    assert "frame_table" not in out["details"]


def test_diagnostics_csv_and_video(video_and_manifest, tmp_path):
    import pandas as pd

    from interactive_eyes.media.video import probe

    video, manifest = video_and_manifest
    # --no-camera: the whole photo moves, which the camera tier would remove as a pan (test below)
    r = invoke("interactivity", video, "--clip", "solo", "--manifest", manifest, "--diagnostics", tmp_path, "--json",
               "--no-camera")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["diagnostics"] == {"csv": str(tmp_path / "solo_interactivity.csv"),
                                  "mp4": str(tmp_path / "solo_interactivity.mp4")}
    table = pd.read_csv(tmp_path / "solo_interactivity.csv")
    assert list(table.columns) == ["frame", "time", "person", "listening", "motion", "valid", "outlier", "used"]
    assert len(table) == N and set(table["person"]) == {"p0"}
    assert not table["listening"].iloc[:5].any() and table["listening"].iloc[5:].all()  # speaking until 0.2 s
    assert (table["used"] == (table["listening"] & table["valid"])).iloc[6:].all()
    # 2 px/frame from frame 11 on, in 224-px face units
    scale = out["details"]["per_person"]["p0"]["scale"]
    assert table[table["frame"] > 11]["motion"].mean() == pytest.approx(2.0 * scale, rel=0.05)
    assert table[(table["frame"] >= 1) & (table["frame"] <= 10)]["motion"].max() < 0.05
    info = probe(tmp_path / "solo_interactivity.mp4")
    assert info.n_frames == N and (info.width, info.height) == (480, 400)


def test_failed_clip_exits_1_with_the_reason(video_and_manifest):
    video, manifest = video_and_manifest
    r = invoke("interactivity", video, "--clip", "duo", "--manifest", manifest)
    assert r.exit_code == 1
    assert "failed" in r.output and "fewer faces than people: at most 1 of 2" in r.output


def test_bad_arguments_are_one_line_errors(video_and_manifest):
    video, manifest = video_and_manifest
    r = invoke("interactivity", video, "--clip", "sol", "--manifest", manifest)
    assert r.exit_code != 0 and "did you mean 'solo'" in r.output
    r = invoke("interactivity", video, "--clip", "solo", "--manifest", manifest, "--backend", "mediapip")
    assert r.exit_code != 0 and "did you mean 'mediapipe'" in r.output
    import importlib.util

    if importlib.util.find_spec("insightface") is None:  # the optional extra is not installed
        r = invoke("interactivity", video, "--clip", "solo", "--manifest", manifest, "--backend", "insightface")
        assert r.exit_code != 0 and "insightface==0.7.3" in r.output and "Traceback" not in r.output


def test_interact_11(interact_11):
    r = invoke("interactivity", interact_11)
    assert r.exit_code == 0, r.output
    assert "clip interact_11: interactivity (corrected, mediapipe-tasks) ok" in r.output
    assert "left:" in r.output and "right:" in r.output and "at 24 fps" in r.output


def test_a_whole_frame_move_is_removed_by_the_second_tier_and_no_camera(video_and_manifest):
    """The face fills the 480x400 frame, so the person mask leaves too little background for the
    first tier; the whole photo moves by 2 px/frame, which is a pan by any definition, and the
    second tier (everything outside the 1.2x face box: hair, shoulder, the photo's corners) sees it
    and removes it (compensation itself: tests/faces/test_camera.py,
    tests/metrics/test_interactivity_faces.py); --no-camera switches it off."""
    video, manifest = video_and_manifest
    on = json.loads(invoke("interactivity", video, "--clip", "solo", "--manifest", manifest, "--json").output)
    off = json.loads(invoke("interactivity", video, "--clip", "solo", "--manifest", manifest, "--json",
                            "--no-camera").output)
    cam = on["details"]["camera"]
    assert cam["compensated"] and cam["source"] == "bodies" and cam["n_steps"] == 29
    assert cam["n_steps_per_source"]["bodies"] > 25
    # 19 of 24 listening steps move by 2 px in the uncompensated value; compensated, almost nothing
    assert off["value"] > 1.0 and on["value"] < 0.15 * off["value"]
    assert cam["share_removed"] > 0.85
    assert off["details"]["camera"] == {"compensated": False, "reason": "camera compensation off"}
    r = invoke("interactivity", video, "--clip", "solo", "--manifest", manifest)
    assert "steps without an estimate; source: bodies" in r.output
