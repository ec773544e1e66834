"""Leaderboard from results.json files: CSV, Markdown, PNG; missing metrics empty; partial refused."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner
from app_helpers import small_manifest, write_clip

from interactive_eyes.app import engine
from interactive_eyes.app.cli import main


@pytest.fixture
def two_runs(tmp_path, fake_metrics):
    bench = small_manifest(2)
    outs = []
    for name, metrics, base in (("bright", ["mean_luma", "luma_pooled"], 150), ("dark", ["mean_luma"], 30)):
        d = tmp_path / name
        d.mkdir()
        for i in range(2):
            write_clip(d / f"c{i}.mp4", value=base + i)
        engine.score(d, benchmark=bench, metrics=metrics, progress=False)
        outs.append(d / "ie-bench" / "results.json")
    partial_dir = tmp_path / "partial"
    partial_dir.mkdir()
    write_clip(partial_dir / "c0.mp4")
    engine.score(partial_dir, benchmark=bench, metrics=["mean_luma"], limit=1, progress=False)
    return outs, partial_dir / "ie-bench" / "results.json"


def test_csv_md_plot(two_runs, tmp_path):
    (a, b), _ = two_runs
    out_csv, out_md, out_png = tmp_path / "l.csv", tmp_path / "l.md", tmp_path / "l.png"
    r = CliRunner().invoke(main, ["leaderboard", str(a), str(b), "--csv", str(out_csv), "--md", str(out_md),
                                  "--plot", str(out_png)])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert [row["method"] for row in rows] == ["bright", "dark"]
    assert float(rows[0]["mean_luma"]) > float(rows[1]["mean_luma"])
    assert rows[1]["luma_pooled"] == ""  # missing metric: empty, never 0
    assert float(rows[0]["coverage"]) == 1.0
    md = out_md.read_text()
    assert "mean_luma ↑" in md and "luma_pooled ↓" in md
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_partial_runs_refused_unless_allowed(two_runs):
    (a, _), partial = two_runs
    r = CliRunner().invoke(main, ["leaderboard", str(a), str(partial)])
    assert r.exit_code != 0 and "partial run" in r.output
    r = CliRunner().invoke(main, ["leaderboard", str(a), str(partial), "--allow-partial"])
    assert r.exit_code == 0
