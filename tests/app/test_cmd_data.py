"""``ie-bench data verify`` / ``ie-bench data fetch``: output and exit codes."""

from __future__ import annotations

import os
import sys
import urllib.error
from pathlib import Path

import pytest
from click.testing import CliRunner

from interactive_eyes.app.cli import main
from interactive_eyes.media.audio import write_wav


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def root_copy(ie_root, tmp_path) -> Path:
    """The shared data root as symlinks, so one file can be deleted or replaced."""
    root = tmp_path / "root"
    for p in ie_root.rglob("*"):
        if p.is_file():
            (root / p.relative_to(ie_root)).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(p, root / p.relative_to(ie_root))
    return root


def test_data_help_lists_both_commands():
    r = run("data", "--help")
    assert r.exit_code == 0 and "fetch" in r.output and "verify" in r.output


def test_verify_shared_data(ie_root):
    r = run("data", "verify", "--root", str(ie_root))
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "files: 29 clips, 58 tracks: 58 present, 58 with PCM hash and duration matching the manifest" in out
    assert "annotation speaker_duration.json: sha256 matches the release" in out
    assert "77 boundaries" in out and "[ok: median <= 0.05 s]" in out
    assert sum(line.lstrip().startswith("interact_") for line in out.splitlines()) == 29
    assert error_lines(r) == []


def test_verify_deleted_track_exits_nonzero_with_one_line(root_copy):
    gone = root_copy / "audio_right/interact_12_right.flac"
    gone.unlink()
    r = run("data", "verify", "--root", str(root_copy))
    assert r.exit_code == 1
    (line,) = error_lines(r)
    assert str(gone.with_suffix(".wav")) in line and "audio track not found" in line
    assert "77 boundaries" not in r.stdout  # the broken clip is left out of the VAD check
    assert "1/2" in next(x for x in r.stdout.splitlines() if x.lstrip().startswith("interact_12 "))


def test_verify_truncated_track_exits_nonzero_with_one_line(root_copy):
    
    from interactive_eyes.media.audio import load_audio

    flac = root_copy / "audio_left/interact_20_left.flac"
    pcm = load_audio(flac, None, mono=False, dtype="int16")
    flac.unlink()
    wav = flac.with_suffix(".wav")
    write_wav(wav, pcm[: 48000 * 3], 48000)  # 3 s of 6.12
    r = run("data", "verify", "--root", str(root_copy), "--no-vad")
    assert r.exit_code == 1
    (line,) = error_lines(r)
    assert line.startswith(f"error: {wav}: duration 3.000 s, manifest 6.123 s")


def test_verify_unknown_clip_is_a_usage_error(ie_root):
    r = CliRunner().invoke(main, ["data", "verify", "--root", str(ie_root), "--clips", "interact_99"])
    assert r.exit_code == 2 and "did you mean 'interact_9'" in r.output


class _Offline:
    def open(self, url, start=0):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))


def test_fetch_offline_fails_cleanly(monkeypatch, tmp_path):
    from interactive_eyes.data import fetch

    monkeypatch.setattr("interactive_eyes.download.default_transport", lambda: _Offline())
    monkeypatch.setattr(fetch, "BACKOFF", 0.0)
    root = tmp_path / "data"
    r = run("data", "fetch", "--root", str(root), "--no-progress")
    assert r.exit_code == 1
    lines = error_lines(r)
    assert len(lines) == 60  # 58 tracks, the annotation file, interact_11.mp4
    for rel in ("audio_left/interact_1_left.wav", "speaker_duration.json", "interact_11.mp4"):
        url = f"https://raw.githubusercontent.com/HKUST-C4G/AnyTalker/e5490b60dc6add439ff5ecec5bd7559606a78d53/benchmark/{rel}"
        assert any(url in line and str(root / rel) in line for line in lines), rel
    assert "0 downloaded" in r.stdout and "60 failed" in r.stdout
    assert [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock")] == []


def test_fetch_with_everything_present_downloads_nothing(monkeypatch, root_copy):
    monkeypatch.setattr("interactive_eyes.download.default_transport", lambda: _Offline())
    r = run("data", "fetch", "--root", str(root_copy), "--no-progress")
    assert r.exit_code == 0, r.output
    assert "60 already present and verified" in r.stdout


def test_fetch_frames_without_yt_dlp_names_the_extra(monkeypatch, root_copy):
    monkeypatch.setitem(sys.modules, "yt_dlp", None)
    r = run("data", "fetch", "--root", str(root_copy), "--no-progress", "--frames")
    assert r.exit_code == 3  # an optional extra not installed: the environment, not the inputs
    (line,) = error_lines(r)
    assert "pip install 'ie-bench[youtube]'" in line
