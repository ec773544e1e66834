"""`ie-bench demo` end to end, offline: static scores the Interactivity floor, puppet above it."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from interactive_eyes.app.cli import main


@pytest.mark.slow  # about 60 s on a shared 2-core machine (two methods generated and scored)
def test_demo_runs_offline_and_ranks_puppet_above_static(face_landmarker_task, tmp_path, monkeypatch):
    monkeypatch.delenv("IE_BENCH_OFFLINE", raising=False)
    out = tmp_path / "demo"
    r = CliRunner().invoke(main, ["demo", "--out", str(out)])
    assert r.exit_code == 0, r.output  # every clip of both methods scored on every metric that ran
    assert "problem:" not in r.output
    assert "| static |" in r.output and "| puppet |" in r.output
    board = out / "leaderboard"
    rows = {row["method"]: row for row in csv.DictReader((board / "leaderboard.csv").open())}
    assert set(rows) == {"static", "puppet"}
    static, puppet = float(rows["static"]["interactivity"]), float(rows["puppet"]["interactivity"])
    # static holds the reference frame: only landmark jitter of re-encoded identical frames remains
    assert static < 0.1
    assert puppet > 5 * static
    for name in ("leaderboard.md", "leaderboard.png"):
        assert (board / name).stat().st_size > 0
    assert "IE_BENCH_OFFLINE" not in __import__("os").environ
