"""Every command documents the exit codes in --help and uses them: 2 usage/input, 3 environment."""

from __future__ import annotations

import os

import pytest
from app_helpers import write_clip, write_manifest
from click.testing import CliRunner

from interactive_eyes.app import exit_codes
from interactive_eyes.app.cli import COMMANDS, main


@pytest.mark.parametrize("cmd", sorted(COMMANDS) + ["data fetch", "data verify"])
def test_help_lists_the_exit_codes(cmd):
    r = CliRunner().invoke(main, [*cmd.split(), "--help"], terminal_width=200)
    assert r.exit_code == 0, r.output
    if cmd in ("score", "validate", "stats", "demo", "data", "data fetch", "data verify", "interactivity", "env"):
        assert "Exit codes: 0 = every requested clip x metric is ok; 1 = completed" in r.output, r.output
        assert "3 = environment error" in r.output


def test_exit_code_numbers_are_the_documented_ones():
    assert (exit_codes.OK, exit_codes.PARTIAL, exit_codes.USAGE, exit_codes.ENVIRONMENT) == (0, 1, 2, 3)


@pytest.fixture
def video(tmp_path):
    return write_clip(tmp_path / "c0.mp4")


def test_interactivity_usage_and_environment_codes(video, tmp_path, monkeypatch):
    import torch

    manifest = write_manifest(tmp_path / "m.json", 1)
    r = CliRunner().invoke(main, ["interactivity", str(video), "--manifest", str(tmp_path / "nope.json")])
    assert r.exit_code == 2, r.output
    r = CliRunner().invoke(main, ["interactivity", str(video), "--manifest", str(manifest), "--clip", "c9"])
    assert r.exit_code == 2 and "c9" in r.output
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = CliRunner().invoke(main, ["interactivity", str(video), "--manifest", str(manifest), "--device", "cuda"])
    assert r.exit_code == 3 and "--device cuda: no CUDA device is available here" in r.output


def test_stats_codes(tmp_path, monkeypatch, video):
    import torch

    empty = tmp_path / "empty"
    empty.mkdir()
    out = str(tmp_path / "s.npz")
    r = CliRunner().invoke(main, ["stats", str(empty), "-o", out])
    assert r.exit_code == 2 and f"{empty}: no videos or images found" in r.output  # a bad input
    # weights not cached and --offline: the environment (3), one line naming the file
    r = CliRunner().invoke(main, ["stats", str(video), "-o", out, "--offline", "--dims", "64"],
                           env={"IE_BENCH_HOME": str(tmp_path / "cache")})
    assert r.exit_code == 3, r.output
    assert "weights 'pt_inception' missing and offline mode is on" in r.output and "Traceback" not in r.output
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = CliRunner().invoke(main, ["stats", str(empty), "-o", out, "--device", "cuda"])
    assert r.exit_code == 3 and "--device cuda: no CUDA device" in r.output


def test_data_codes(tmp_path):
    r = CliRunner().invoke(main, ["data", "verify", "--root", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "data root not found" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    r = CliRunner().invoke(main, ["data", "verify", "--manifest", str(bad), "--root", str(tmp_path)])
    assert r.exit_code == 2 and str(bad) in r.output


def test_exits_maps_os_errors():
    import errno

    from interactive_eyes.app.cmd_common import exits

    cases = [(errno.ENOSPC, 3, "/x/out: No space left on device"), (errno.EACCES, 3, "/x/out: Permission denied"),
             (errno.EROFS, 3, "/x/out: Read-only file system"),
             (errno.ENOENT, 2, "[Errno 2] No such file or directory: '/x/out'")]
    for err, code, message in cases:
        with pytest.raises(Exception) as exc:
            with exits():
                raise OSError(err, os.strerror(err), "/x/out")
        assert (exc.value.exit_code, exc.value.message) == (code, message)
