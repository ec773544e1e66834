"""``ie-bench manifest build``: the thin command over ``data/build.py`` (exit codes, messages)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from interactive_eyes.app.cli import main
from interactive_eyes.app.exit_codes import OK, PARTIAL, USAGE
from interactive_eyes.data.manifest import load


def _tone_video(path, seconds=2.0, rate=16000):
    from interactive_eyes.media.video import write_video

    t = np.arange(int(seconds * rate)) / rate
    audio = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[:, None]
    write_video(path, (np.full((16, 16, 3), 60, np.uint8) for _ in range(int(seconds * 25))), 25,
                audio=audio, audio_rate=rate)


def _invoke(*args):
    return CliRunner().invoke(main, ["manifest", "build", *map(str, args)])


def test_help_lists_the_command():
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0 and "manifest" in r.output
    r = CliRunner().invoke(main, ["manifest", "build", "--help"])
    assert r.exit_code == 0 and "--tracks" in r.output and "--reference-frames" in r.output


def test_single_person_folder(tmp_path):
    videos = tmp_path / "my clips"
    videos.mkdir()
    _tone_video(videos / "a.mp4")
    r = _invoke(videos, "--out", tmp_path / "m.json", "--root", tmp_path / "root",
                "--reference-frames", tmp_path / "frames")
    assert r.exit_code == OK, r.output
    assert "1 clip(s), 1 person(s) per clip, protocol single" in r.output
    bench = load(tmp_path / "m.json")
    assert bench.name == "my_clips" and bench.clip_ids == ["a"]  # the folder name, made a file name
    assert (tmp_path / "frames" / "a.png").is_file() and (tmp_path / "root" / "audio" / "a_p0.wav").is_file()


def test_two_people_without_tracks_is_a_one_line_usage_error(tmp_path):
    videos = tmp_path / "v"
    videos.mkdir()
    _tone_video(videos / "a.mp4")
    r = _invoke(videos, "--out", tmp_path / "m.json", "--root", tmp_path / "root", "--people", "2")
    assert r.exit_code == USAGE
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert "--tracks DIR holding <clip>_left.wav|flac, <clip>_right.wav|flac" in lines[0]
    assert not (tmp_path / "m.json").exists()


def test_bad_input_exit_codes(tmp_path):
    r = _invoke(tmp_path / "nope", "--out", tmp_path / "m.json")
    assert r.exit_code == USAGE and "not a folder of videos" in r.output
    videos = tmp_path / "v"
    videos.mkdir()
    _tone_video(videos / "good.mp4")
    (videos / "bad.mp4").write_bytes(b"garbage")
    r = _invoke(videos, "--out", tmp_path / "m.json", "--root", tmp_path / "root")
    assert r.exit_code == PARTIAL, r.output  # written, one video left out
    assert "error: " in r.output and "bad.mp4" in r.output
    assert load(tmp_path / "m.json").clip_ids == ["good"]
    r = _invoke(videos, "--out", tmp_path / "m.json", "--name", "a/b")
    assert r.exit_code == USAGE and "--name" in r.output


def test_clip_11_with_the_released_tracks(test_data, tmp_path):
    videos = tmp_path / "v"
    videos.mkdir()
    shutil.copy(test_data / "interactive_eyes" / "interact_11.mp4", videos)
    r = _invoke(videos, "--out", tmp_path / "m.json", "--root", tmp_path / "root",
                "--tracks", test_data / "interactive_eyes")
    assert r.exit_code == OK, r.output
    assert "2 person(s) per clip, protocol interactive" in r.output
    doc = json.loads((tmp_path / "m.json").read_text())
    people = doc["clips"][0]["people"]
    assert [p["audio"] for p in people] == ["audio/interact_11_left.flac", "audio/interact_11_right.flac"]
    assert all(p["speaking"] for p in people)
    # the single-person protocol cannot be asked for two people
    r = _invoke(videos, "--out", tmp_path / "m2.json", "--root", tmp_path / "root",
                "--tracks", test_data / "interactive_eyes", "--protocol", "single")
    assert r.exit_code == USAGE and "one person per clip" in r.output


@pytest.mark.parametrize("value", ["0", "-1"])
def test_people_must_be_positive(tmp_path, value):
    r = _invoke(tmp_path, "--out", tmp_path / "m.json", "--people", value)
    assert r.exit_code == USAGE
