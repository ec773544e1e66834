"""Leaderboard from results.json files: CSV, Markdown, JSON, PNG, and the rules that keep it honest
(missing = n/a never 0, intervals only where they exist over enough clips, n_ok/n everywhere,
benchmark in the title, fitted axes, unique labels, one benchmark per table, integer counts)."""

from __future__ import annotations

import copy
import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from app_helpers import small_manifest, write_clip

from interactive_eyes.app import engine, exit_codes
from interactive_eyes.app.cli import main
from interactive_eyes.app.leaderboard import (MIN_CI_CLIPS, LeaderboardError, build_table, group_by_benchmark,
                                              load_results, to_json_obj, to_markdown)
from interactive_eyes.app.leaderboard_plot import axis_limits
from interactive_eyes.stats.bootstrap import bootstrap_ci


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


def fake_results(folder, values, *, bench="bench_a", version="1", sha="aa" * 32, method=None, skipped=None,
                 n_clips=None, higher=True):
    """A results.json as the engine writes it, for a per-clip metric ``m`` with the given clip values
    (None = failed clip); its CI is the real bootstrap of the values."""
    folder.mkdir(parents=True, exist_ok=True)
    ok = [v for v in values if v is not None]
    n = n_clips if n_clips is not None else len(values)
    ci = bootstrap_ci(np.asarray(ok)) if len(ok) >= 2 else None
    metrics = {"m": {"value": float(np.mean(ok)) if ok else None, "ci95": list(ci) if ci else None,
                     "higher_is_better": higher, "version": "1", "set_level": False, "n_expected": n,
                     "n_ok": len(ok), "n_failed": n - len(ok),
                     "failures": [{"clip": f"c{i}", "reason": "broken"} for i, v in enumerate(values) if v is None]}}
    res = {"schema": "ie-bench/results", "schema_version": 1,
           "benchmark": {"name": bench, "version": version, "manifest_sha256": sha, "manifest": "x.json"},
           "generated_dir": str(folder), "method": method, "partial": False, "n_clips": n, "n_videos_found": n,
           "bootstrap": {"resamples": 2000, "level": 0.95, "seed": 0, "method": "percentile bootstrap over clips"},
           "metrics": metrics, "skipped_metrics": {}}
    for name, reason in (skipped or {}).items():
        res["skipped_metrics"][name] = reason
    path = folder / "results.json"
    path.write_text(json.dumps(res))
    return path


def with_metric(path, name, entry):
    res = json.loads(path.read_text())
    res["metrics"][name] = entry
    path.write_text(json.dumps(res))
    return path


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
    assert rows[0]["mean_luma_n_ok"] == "2" and rows[0]["n_clips"] == "2"  # integers, not 2.0
    assert float(rows[0]["coverage"]) == 1.0
    md = out_md.read_text()
    assert "mean_luma ↑" in md and "luma_pooled ↓" in md
    assert "tiny v0" in md  # benchmark name in the title
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_partial_runs_refused_unless_allowed(two_runs):
    (a, _), partial = two_runs
    r = CliRunner().invoke(main, ["leaderboard", str(a), str(partial)])
    assert r.exit_code == exit_codes.USAGE and "partial run" in r.output
    r = CliRunner().invoke(main, ["leaderboard", str(a), str(partial), "--allow-partial"])
    assert r.exit_code == 0


def test_skipped_metric_is_na_never_zero(tmp_path):
    a = fake_results(tmp_path / "a", [0.9, 0.8, 0.85, 0.95, 0.9])
    with_metric(a, "sync", {"value": 7.0, "ci95": None, "higher_is_better": True, "n_expected": 5, "n_ok": 5})
    b = fake_results(tmp_path / "b", [0.7, 0.6, 0.65, 0.75, 0.7],
                     skipped={"sync": "weights missing offline", "fid": "needs a reference set"})
    df = build_table(load_results([a, b]))
    assert "fid" not in df.attrs["metrics"]  # skipped everywhere: no column of n/a, but named below
    md = to_markdown(df)
    row_b = next(line for line in md.splitlines() if line.startswith("| b "))
    assert row_b.split("|")[-2].strip() == "n/a (0/5)"
    assert "b / sync: skipped: weights missing offline" in md
    assert "- fid: not scored in any run (needs a reference set)" in md
    obj = to_json_obj(df)
    assert obj["rows"][1]["metrics"]["sync"] == {"value": None, "ci95": None, "ci_shown": False, "n_ok": None,
                                                  "n": 5, "status": "skipped", "note": "skipped: weights missing offline"}
    # a metric present but with no clip ok is n/a too, with the first failure as the note
    c = fake_results(tmp_path / "c", [None, None])
    row = to_json_obj(build_table(load_results([c])))["rows"][0]["metrics"]["m"]
    assert row["value"] is None and row["n_ok"] == 0 and row["status"] == "failed" and "c0: broken" in row["note"]


def test_one_clip_run_has_no_interval(tmp_path):
    a = fake_results(tmp_path / "one", [0.9])
    b = fake_results(tmp_path / "two", [0.9, 0.7])  # a bootstrap "CI" of 2 clips is just [min, max]
    c = fake_results(tmp_path / "six", [0.9, 0.7, 0.8, 0.85, 0.75, 0.8])
    runs = load_results([a, b, c])
    assert runs[1]["metrics"]["m"]["ci95"] == pytest.approx([0.7, 0.9])  # why the rule exists
    df = build_table(runs)
    obj = to_json_obj(df)
    shown = [r["metrics"]["m"]["ci_shown"] for r in obj["rows"]]
    assert shown == [False, False, True] and MIN_CI_CLIPS == 5
    md = to_markdown(df).splitlines()
    assert next(x for x in md if x.startswith("| one ")).endswith("| 0.9 (1/1) |")
    assert next(x for x in md if x.startswith("| two ")).endswith("| 0.8 (2/2) |")
    six = next(x for x in md if x.startswith("| six "))
    lo, hi = obj["rows"][2]["metrics"]["m"]["ci95"]
    assert f"[{lo:.4g}, {hi:.4g}] (6/6)" in six
    assert "95% percentile bootstrap over clips, 2000 resamples; shown only when n_ok >= 5" in "\n".join(md)


def test_same_folder_name_disambiguated(tmp_path):
    a = fake_results(tmp_path / "x" / "myout", [0.9, 0.8])
    b = fake_results(tmp_path / "y" / "myout", [0.7, 0.6])
    assert list(build_table(load_results([a, b]))["method"]) == ["x/myout", "y/myout"]
    # two runs of one method (name from run.json): the folder name is added
    c = fake_results(tmp_path / "run1", [0.9, 0.8], method="static")
    d = fake_results(tmp_path / "run2", [0.9, 0.8], method="static")
    e = fake_results(tmp_path / "run3", [0.9, 0.8], method="puppet")
    assert list(build_table(load_results([c, d, e]))["method"]) == ["static (run1)", "static (run2)", "puppet"]
    # the same file given twice still gets two distinct labels
    assert list(build_table(load_results([a, a]))["method"]) == ["myout", "myout #2"]


def test_mixed_benchmarks_refused_or_split(tmp_path):
    a = fake_results(tmp_path / "a", [0.9, 0.8], bench="bench_a")
    b = fake_results(tmp_path / "b", [0.7, 0.6], bench="bench_b")
    c = fake_results(tmp_path / "c", [0.7, 0.6], bench="bench_a", sha="bb" * 32)  # same name, other manifest
    for pair in ((a, b), (a, c)):
        with pytest.raises(LeaderboardError, match="different benchmarks"):
            group_by_benchmark(load_results(list(pair)))
        r = CliRunner().invoke(main, ["leaderboard", *map(str, pair)])
        assert r.exit_code == exit_codes.USAGE and "--split-benchmarks" in r.output
    out = tmp_path / "board.png"
    r = CliRunner().invoke(main, ["leaderboard", str(a), str(b), "--split-benchmarks", "--json", "--plot", str(out)])
    assert r.exit_code == 0, r.output
    tables = json.loads(r.output)["tables"]
    assert [t["benchmark"]["name"] for t in tables] == ["bench_a", "bench_b"]
    assert [[row["method"] for row in t["rows"]] for t in tables] == [["a"], ["b"]]
    assert (tmp_path / "board_bench_a.png").exists() and (tmp_path / "board_bench_b.png").exists()


def test_json_output_has_plain_types(two_runs):
    (a, b), _ = two_runs
    r = CliRunner().invoke(main, ["leaderboard", str(a), str(b), "--json"])
    assert r.exit_code == 0, r.output
    (table,) = json.loads(r.output)["tables"]
    m = table["rows"][0]["metrics"]["mean_luma"]
    assert m["n_ok"] == 2 and isinstance(m["n_ok"], int) and m["n"] == 2
    assert table["rows"][1]["metrics"]["luma_pooled"]["value"] is None
    assert table["title"] == "ie-bench leaderboard: tiny v0" and table["higher_is_better"]["luma_pooled"] is False
    raw = json.loads(a.read_text())["metrics"]["mean_luma"]["value"]
    assert m["value"] == pytest.approx(raw)


def test_axis_fits_the_spread():
    lo, hi = axis_limits([1.0, 0.989])
    assert lo < 0.989 < 1.0 < hi and hi - lo < 0.02  # not 0..1: the 0.011 gap is 1/1.5 of the axis
    lo, hi = axis_limits([0.5, 0.5])
    assert lo < 0.5 < hi and hi - lo == pytest.approx(0.005)
    assert axis_limits([float("nan")]) is None


def test_plot_draws_no_mark_for_missing_values(tmp_path, monkeypatch):
    """The PNG: the missing value is text 'n/a', no point, no whisker; intervals only where shown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from interactive_eyes.app import leaderboard_plot

    a = fake_results(tmp_path / "a", [1.0, 1.0, 1.0, 0.99, 1.0, 1.0])
    b = fake_results(tmp_path / "b", [0.99, 0.988, 0.989, 0.99, 0.988, 0.989])
    c = fake_results(tmp_path / "c", [0.9], skipped={})
    with_metric(a, "extra", {"value": 3.0, "ci95": None, "higher_is_better": False, "n_expected": 6, "n_ok": 6})
    df = build_table(load_results([a, b, c]))
    figs = []
    monkeypatch.setattr(plt, "close", lambda fig: figs.append(fig))
    leaderboard_plot.plot(df, tmp_path / "p.png")
    ax_m, ax_x = figs[0].axes
    points = [tuple(line.get_xdata()) for line in ax_m.lines if line.get_marker() == "o"]
    assert points == [(pytest.approx(1.0 - 0.01 / 6),), (pytest.approx(0.989),), (0.9,)]
    assert len(ax_m.collections) == 2  # whiskers for a and b (6 clips), none for c (1 clip)
    lo, hi = ax_m.get_xlim()
    assert 0.85 < lo < 0.9 and hi < 1.05
    assert [line.get_xdata()[0] for line in ax_x.lines if line.get_marker() == "o"] == [3.0]
    texts = [t.get_text() for t in ax_x.texts]
    assert texts.count("n/a (0/6)") == 1 and "n/a (0/1)" in texts
    assert "bench_a v1" in figs[0]._suptitle.get_text()
