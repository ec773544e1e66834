"""`score` on the real ground-truth video of interact_11 against the `static` method's output."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from interactive_eyes.app.cli import main
from interactive_eyes.app.engine import score
from interactive_eyes.app.run import run_method


@pytest.fixture(scope="module")
def folders(tmp_path_factory, test_data, monkeypatch_module):
    monkeypatch_module.setenv("IE_BENCH_OFFLINE", "1")
    base = tmp_path_factory.mktemp("real")
    ie_root = test_data / "interactive_eyes"
    gt = base / "ground_truth"
    gt.mkdir()
    shutil.copy(ie_root / "interact_11.mp4", gt / "interact_11.mp4")
    frames = base / "frames"
    frames.mkdir()
    # AnyTalker's example 2p-0 image is the reference frame of interact_11 (shared/README.md)
    shutil.copy(test_data / "anytalker_examples" / "images" / "2p-0.png", frames / "interact_11.png")
    static = base / "static"
    run_method("static", out_dir=static, reference_frames=frames, data_root=ie_root, clips=["interact_11"],
               progress=False)
    return gt, static, ie_root


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_ground_truth_scores_higher_interactivity_than_static(folders):
    gt, static, root = folders
    res_gt = score(gt, data_root=root, clips=["interact_11"], metrics=["interactivity"], progress=False)
    res_st = score(static, data_root=root, clips=["interact_11"], metrics=["interactivity"], progress=False)
    v_gt = res_gt["metrics"]["interactivity"]["value"]
    v_st = res_st["metrics"]["interactivity"]["value"]
    print(f"interact_11 interactivity: ground truth {v_gt:.4f}, static {v_st:.4f}")
    assert res_gt["metrics"]["interactivity"]["n_ok"] == 1 and res_st["metrics"]["interactivity"]["n_ok"] == 1
    assert v_gt > 10 * v_st
    assert res_st["method"] == "static"
    assert set(res_gt["metrics"]["interactivity"]["per_person"]) == {"left", "right"}


def test_score_cli_prints_table_and_skips_unavailable_metrics(folders):
    gt, _, root = folders
    r = CliRunner().invoke(main, ["score", str(gt), "--root", str(root), "--clips", "interact_11"])
    assert r.exit_code == 0, r.output
    assert "interactivity" in r.output and "1/1" in r.output
    assert "skipped sync:" in r.output and "ie-bench weights fetch syncnet_v2" in r.output


def test_validate_cli(folders, tmp_path):
    gt, static, _ = folders
    r = CliRunner().invoke(main, ["validate", str(gt), "--clips", "interact_11"])
    assert r.exit_code == 0, r.output
    assert "ok" in r.output and "0 error(s)" in r.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "interact_11.mp4").write_bytes(b"")
    (bad / "interact11.mp4").write_bytes(b"x")
    r = CliRunner().invoke(main, ["validate", str(bad), "--clips", "interact_11,interact_12"])
    assert r.exit_code == 1
    assert "missing file" in r.output and "did you mean interact_11.mp4" in r.output and "empty" in r.output
