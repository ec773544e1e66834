"""The run driver and ``ie-bench run`` / ``ie-bench methods``: resumable per clip, atomic run.json,
one clip's failure isolated, a killed run finishes on rerun with the same outputs.

Clips are real InteractiveEyes clips (the shared FLAC tracks) cut to 2 s in a small test manifest;
interact_11 uses its real reference frame (anytalker_examples/images/2p-0.png), the others a
frame of two faces made from scikit-image's astronaut photo.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from interactive_eyes.app.cli import main
from interactive_eyes.app.run import RunError, run_method

SHORT = 2.0  # seconds per test clip


def _short_manifest(ids: list[str]) -> dict:
    from interactive_eyes.data.manifest import default_manifest_path

    data = json.loads(default_manifest_path().read_text())
    clips = []
    for c in data["clips"]:
        if c["id"] not in ids:
            continue
        c = dict(c, duration=SHORT)
        people = []
        for p in c["people"]:
            p = {k: v for k, v in p.items() if k != "listening"}  # recomputed by the loader
            p["speaking"] = [[s, min(e, SHORT)] for s, e in p["speaking"] if s < SHORT]
            people.append(p)
        c["people"] = people
        clips.append(c)
    data["clips"] = sorted(clips, key=lambda c: ids.index(c["id"]))
    data["name"] = "interactive_eyes_short"
    return data


def _astronaut_pair(path: Path) -> Path:
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    a = skdata.astronaut()
    Image.fromarray(np.concatenate([a, a[:, ::-1]], axis=1)).resize((512, 256)).save(path, quality=92)
    return path


@pytest.fixture
def setup(test_data, tmp_path):
    """A 3-clip manifest (2 s each) and reference frames for two of them (interact_25 has none)."""
    ids = ["interact_11", "interact_1", "interact_25"]
    manifest = tmp_path / "short.json"
    manifest.write_text(json.dumps(_short_manifest(ids)))
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(test_data / "anytalker_examples" / "images" / "2p-0.png", frames / "interact_11.png")
    _astronaut_pair(frames / "interact_1.jpg")
    return {"manifest": str(manifest), "frames": frames, "root": test_data / "interactive_eyes", "tmp": tmp_path}


def _run(setup, out, method="static", **kw):
    kw.setdefault("reference_frames", setup["frames"])
    return run_method(method, benchmark=setup["manifest"], out_dir=out, data_root=setup["root"], progress=False, **kw)


def _read(p: Path) -> str:
    try:
        return p.read_text()
    except FileNotFoundError:
        return ""


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_limit_then_full_run_resumes(setup):
    out = setup["tmp"] / "out"
    doc = _run(setup, out, limit=1)
    assert doc["partial"] and list(doc["clips"]) == ["interact_11"] and doc["clips"]["interact_11"]["status"] == "ok"
    assert doc["counts"] == {"ok": 1, "failed": 0, "skipped": 0, "not_run": 2}
    first = out / "interact_11.mp4"
    stamp = first.stat().st_mtime_ns
    time.sleep(0.05)

    doc = _run(setup, out)
    assert first.stat().st_mtime_ns == stamp  # not regenerated
    assert doc["last_invocation"]["reused"] == 1 and doc["last_invocation"]["generated"] == 1
    assert list(doc["clips"]) == ["interact_11", "interact_1", "interact_25"]  # manifest order, each once
    assert doc["clips"]["interact_1"]["status"] == "ok"
    bad = doc["clips"]["interact_25"]
    assert bad["status"] == "failed" and "\n" not in bad["reason"]
    assert bad["reason"].startswith(f"{setup['frames']}/interact_25.png|jpg|jpeg: reference frame not found")
    assert not doc["partial"] and not doc["complete"]
    text = (out / "run.json").read_text()
    assert json.loads(text) == doc and text.count('"interact_11": {') == 1
    # recorded facts match the files
    for cid in ("interact_11", "interact_1"):
        e = doc["clips"][cid]
        assert e["sha256"] == _sha(out / f"{cid}.mp4") and e["bytes"] == (out / f"{cid}.mp4").stat().st_size
        assert e["info"]["frames"] == 50 and e["seconds"] > 0
    assert doc["clips"]["interact_1"]["info"]["width"] == 512  # the .jpg frame was used
    assert sorted(p.name for p in out.iterdir()) == [".ie-bench-run.lock", "interact_1.mp4", "interact_11.mp4", "run.json"]


def test_one_failing_clip_does_not_stop_the_others(setup):
    from interactive_eyes.baselines.static import StaticMethod

    class Flaky(StaticMethod):
        def generate(self, item, out_path, *, seed):
            if item.clip_id == "interact_11":
                raise RuntimeError("out of memory\n(on purpose)")
            return super().generate(item, out_path, seed=seed)

    out = setup["tmp"] / "out"
    doc = _run(setup, out, method=Flaky(), clips=["interact_11", "interact_1"])
    e = doc["clips"]["interact_11"]
    assert e["status"] == "failed" and e["reason"] == "RuntimeError: out of memory (on purpose)"
    assert "Traceback" in (out / e["log"]).read_text() and not (out / "interact_11.mp4").exists()
    assert doc["clips"]["interact_1"]["status"] == "ok" and (out / "interact_1.mp4").is_file()
    # a rerun with a working method retries the failed clip and keeps the good one
    doc = _run(setup, out, clips=["interact_11", "interact_1"])
    assert doc["clips"]["interact_11"]["status"] == "ok" and doc["last_invocation"]["reused"] == 1
    assert not (out / e["log"]).exists()


def test_other_configuration_is_refused_unless_overwrite(setup):
    out = setup["tmp"] / "out"
    _run(setup, out, clips=["interact_1"])
    with pytest.raises(RunError, match=r"run.json: this folder holds a run with seed 0 \(now 3\)"):
        _run(setup, out, clips=["interact_1"], seed=3)
    with pytest.raises(RunError, match=r"params \{'crf': 18\} \(now \{'crf': 30\}\)"):
        _run(setup, out, clips=["interact_1"], params={"crf": 30})
    doc = _run(setup, out, clips=["interact_11"], seed=3, overwrite=True)
    assert doc["seed"] == 3 and list(doc["clips"]) == ["interact_11"]  # old results removed
    assert not (out / "interact_1.mp4").exists()


def test_changed_reference_frame_regenerates(setup):
    out = setup["tmp"] / "out"
    _run(setup, out, clips=["interact_1"])
    before = _sha(out / "interact_1.mp4")
    assert _run(setup, out, clips=["interact_1"])["last_invocation"]["reused"] == 1
    from PIL import Image

    p = setup["frames"] / "interact_1.jpg"
    Image.open(p).transpose(Image.FLIP_LEFT_RIGHT).rotate(5).save(p)
    doc = _run(setup, out, clips=["interact_1"])
    assert doc["last_invocation"]["generated"] == 1 and _sha(out / "interact_1.mp4") != before


def test_default_reference_location_and_puppet(face_landmarker_task, setup):
    """Without --reference-frames the frames come from <data root>/frames (where `data fetch --frames` puts them)."""
    root = setup["tmp"] / "root"
    root.mkdir()
    for sub in ("audio_left", "audio_right"):
        (root / sub).symlink_to(setup["root"] / sub)
    shutil.copytree(setup["frames"], root / "frames")
    out = setup["tmp"] / "puppet"
    doc = run_method("puppet", benchmark=setup["manifest"], out_dir=out, data_root=root, clips=["interact_11"], progress=False)
    e = doc["clips"]["interact_11"]
    assert e["status"] == "ok", e["reason"]
    assert e["reference_frame"] == str(root / "frames" / "interact_11.png")
    faces = [p["face"]["box"] for p in e["info"]["people"]]
    assert faces[0][2] < 426 < faces[1][0]  # one face in each half of 2p-0.png, left to right


def test_killed_run_finishes_with_the_same_outputs(setup):
    """SIGKILL mid-way, rerun: the same files as an uninterrupted run, nothing duplicated or left over."""
    ids = ["interact_1", "interact_2", "interact_3", "interact_4", "interact_5"]
    manifest = setup["tmp"] / "five.json"
    manifest.write_text(json.dumps(_short_manifest(ids)))
    frames = setup["tmp"] / "frames5"
    frames.mkdir()
    src = _astronaut_pair(frames / "interact_1.png")
    for cid in ids[1:]:
        shutil.copy(src, frames / f"{cid}.png")
    killed, clean = setup["tmp"] / "killed", setup["tmp"] / "clean"
    code = (
        "import sys\nfrom interactive_eyes.app.run import run_method\n"
        "run_method('static', benchmark=sys.argv[1], out_dir=sys.argv[2], reference_frames=sys.argv[3], "
        "data_root=sys.argv[4], progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(manifest), str(killed), str(frames), str(setup["root"])])
    try:
        deadline = time.monotonic() + 60
        # kill as soon as run.json records the first finished clip (the second one is then under way)
        while '"status": "ok"' not in _read(killed / "run.json"):
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done_before = sorted(p.name for p in killed.glob("*.mp4"))
    assert len(done_before) < len(ids)  # it really was cut short
    # what a kill during encoding leaves behind (write_video's temporary name)
    (killed / ".interact_3.mp4.tmp99999.mp4").write_bytes(b"half a video")

    kw = dict(benchmark=str(manifest), reference_frames=frames, data_root=setup["root"], progress=False)
    doc = run_method("static", out_dir=killed, **kw)
    ref = run_method("static", out_dir=clean, **kw)
    assert doc["complete"] and ref["complete"] and list(doc["clips"]) == ids
    assert doc["last_invocation"]["reused"] >= 1
    listing = lambda d: sorted(p.name for p in d.iterdir())  # noqa: E731
    assert listing(killed) == listing(clean)  # no temporary files, no duplicates
    for cid in ids:  # the encoder is deterministic: byte-identical videos
        assert _sha(killed / f"{cid}.mp4") == _sha(clean / f"{cid}.mp4") == doc["clips"][cid]["sha256"]


def test_second_writer_is_refused(setup):
    import fcntl

    out = setup["tmp"] / "out"
    out.mkdir()
    fd = os.open(out / ".ie-bench-run.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(RunError, match="another ie-bench run is writing to this folder"):
            _run(setup, out, clips=["interact_1"])
        r = CliRunner().invoke(main, ["run", "--method", "static", "--out", str(out), "--manifest", setup["manifest"],
                                      "--root", str(setup["root"]), "--reference-frames", str(setup["frames"]), "--quiet"])
        assert r.exit_code == 3 and "another ie-bench run is writing to this folder" in r.output  # environment
    finally:
        os.close(fd)


def test_cli_run(setup):
    out = setup["tmp"] / "cli"
    args = ["run", "--method", "static", "--out", str(out), "--manifest", setup["manifest"], "--root", str(setup["root"]),
            "--reference-frames", str(setup["frames"]), "--quiet"]
    r = CliRunner().invoke(main, args + ["--clips", "interact_11,interact_1", "--param", "crf=20"])
    assert r.exit_code == 0, r.output
    assert "static: 2 clips this run (2 generated, 0 reused); folder: 2 ok, 0 failed, 0 skipped, 1 not run" in r.output
    assert json.loads((out / "run.json").read_text())["params"] == {"crf": 20}
    r = CliRunner().invoke(main, args + ["--param", "crf=20"])  # interact_25 has no frame: exit 1, reason shown
    assert r.exit_code == 1 and "interact_25: failed: " in r.output and "(2 generated" not in r.output
    r = CliRunner().invoke(main, args + ["--seed", "1"])  # another configuration in the folder: input error
    assert r.exit_code == 2 and "Error: " in r.output and "use --overwrite" in r.output
    r = CliRunner().invoke(main, ["run", "--method", "statik", "--out", str(out)])
    assert r.exit_code == 2 and "unknown method 'statik' (did you mean 'static'?)" in r.output
    r = CliRunner().invoke(main, args + ["--clips", "interact_111"])
    assert r.exit_code == 2 and "no clip 'interact_111' (did you mean 'interact_11'?)" in r.output
    r = CliRunner().invoke(main, args + ["--param", "crff=1"])
    assert r.exit_code == 2 and "unknown parameter 'crff'" in r.output


def test_cli_methods_lists_without_heavy_imports():
    code = (
        "import sys\nfrom interactive_eyes.app.cli import main\n"
        "try:\n    main(['methods'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('torch', 'mediapipe', 'av', 'cv2', 'scipy', 'PIL') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out, out
    assert "static" in out and "puppet" in out and "left_right_detection" in out
    r = CliRunner().invoke(main, ["methods", "--json"])
    rows = {m["name"]: m for m in json.loads(r.output)}
    assert set(rows) >= {"static", "puppet"}
    assert rows["puppet"]["capabilities"]["native_fps"] == 25 and rows["puppet"]["params"]["head_motion"] == 1.0


# ---- foreign methods: configuration, unsupported clips, composite mode, failures (issue 13)

FAKES = Path(__file__).parents[1] / "baselines"  # fake_upstream.py: stand-ins for the methods' scripts


def _fake_sonic_repo(tmp: Path, behaviour: str = "sonic") -> Path:
    repo = tmp / f"sonic_{behaviour}"
    (repo / "checkpoints").mkdir(parents=True)
    (repo / "demo.py").write_text(f"import sys\nsys.path.insert(0, {str(FAKES)!r})\nimport fake_upstream\n"
                                  f"fake_upstream.main({behaviour!r})\n")
    return repo


def _toml(path: Path, table: str, **keys) -> Path:
    path.write_text(f"[{table}]\n" + "".join(f"{k} = {json.dumps(str(v))}\n" for k, v in keys.items()))
    return path


def test_unconfigured_method_fails_before_any_clip_with_the_keys_to_set(setup):
    cfg = _toml(setup["tmp"] / "methods.toml", "hallo3", repo=setup["tmp"] / "nowhere")
    out = setup["tmp"] / "mt"
    args = ["run", "--method", "multitalk", "--out", str(out), "--manifest", setup["manifest"], "--root", str(setup["root"]),
            "--reference-frames", str(setup["frames"]), "--quiet", "--method-config", str(cfg)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 3, r.output
    assert (f"method 'multitalk' is not configured (repo: not set; python: not set; weights: not set): "
            f"set repo, python, weights in [multitalk] of {cfg}") in r.output
    assert not (out / "run.json").exists()
    r = CliRunner().invoke(main, args[:2] + ["hallo3"] + args[3:] + ["--param", f"python={sys.executable}"])
    assert r.exit_code == 3 and "repo: " in r.output and "nowhere is not a folder" in r.output
    bad = setup["tmp"] / "bad.toml"
    bad.write_text("[sonic]\nrepoo = 1\n")
    r = CliRunner().invoke(main, args[:2] + ["sonic"] + args[3:-1] + [str(bad)])
    assert r.exit_code == 3 and "[sonic] has unknown key 'repoo'" in r.output


def test_single_person_method_records_multi_person_clips_as_unsupported(setup):
    cfg = _toml(setup["tmp"] / "methods.toml", "sonic", repo=_fake_sonic_repo(setup["tmp"]), python=sys.executable)
    out = setup["tmp"] / "sonic"
    r = CliRunner().invoke(main, ["run", "--method", "sonic", "--out", str(out), "--manifest", setup["manifest"],
                                  "--root", str(setup["root"]), "--reference-frames", str(setup["frames"]), "--quiet",
                                  "--method-config", str(cfg), "--clips", "interact_11,interact_1"])
    assert r.exit_code == 0, r.output
    assert "interact_11: unsupported: 2 people, sonic handles at most 1" in r.output
    doc = json.loads((out / "run.json").read_text())
    assert doc["counts"]["skipped"] == 2 and doc["mode"] == "native" and doc["base_method"] == "sonic"
    assert all(e["decision"] == "unsupported" and e["status"] == "skipped" for e in doc["clips"].values())
    assert doc["params"]["repo"] == str(setup["tmp"] / "sonic_sonic")  # from the config file, recorded
    rows = {m["name"]: m for m in json.loads(CliRunner().invoke(main, ["methods", "--json", "--method-config", str(cfg)]).output)}
    assert rows["sonic"]["configured"] and rows["sonic"]["code_license"] == "CC BY-NC-SA 4.0"
    assert not rows["multitalk"]["configured"] and "weights: not set" in rows["multitalk"]["missing"]


def test_composite_run_is_labelled_and_resumes(setup):
    repo = _fake_sonic_repo(setup["tmp"])
    kw = dict(clips=["interact_11"], params={"repo": str(repo), "python": sys.executable}, composite=True,
              method_config=setup["tmp"] / "none.toml")
    (setup["tmp"] / "none.toml").write_text("")
    out = setup["tmp"] / "comp"
    doc = _run(setup, out, method="sonic", **kw)
    e = doc["clips"]["interact_11"]
    assert e["status"] == "ok", e["reason"]
    assert doc["method"] == "sonic+composite" and doc["mode"] == "composite" and doc["base_method"] == "sonic"
    assert e["info"]["mode"] == "composite" and len(e["info"]["people"]) == 2
    c0, c1 = (p["crop"] for p in e["info"]["people"])
    assert (c0[0] + c0[2]) / 2 < 426 < (c1[0] + c1[2]) / 2  # one crop per face of 2p-0.png, left to right
    assert (out / "jobs" / "interact_11" / "geometry.json").is_file()
    again = _run(setup, out, method="sonic", **kw)
    assert again["last_invocation"]["reused"] == 1
    r = CliRunner().invoke(main, ["run", "--method", "multitalk", "--composite", "--out", str(setup["tmp"] / "x"),
                                  "--manifest", setup["manifest"], "--param", f"repo={repo}", "--param",
                                  f"python={sys.executable}", "--param", f"weights={repo}"])
    assert r.exit_code in (2, 3) and "Error:" in r.output


def test_failed_method_keeps_stderr_tail_in_run_json(setup):
    repo = _fake_sonic_repo(setup["tmp"], "fail")
    (setup["tmp"] / "none.toml").write_text("")
    out = setup["tmp"] / "fail"
    args = ["run", "--method", "sonic", "--composite", "--out", str(out), "--manifest", setup["manifest"], "--root",
            str(setup["root"]), "--reference-frames", str(setup["frames"]), "--quiet", "--clips", "interact_11",
            "--method-config", str(setup["tmp"] / "none.toml"), "--param", f"repo={repo}", "--param", f"python={sys.executable}"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1, r.output
    e = json.loads((out / "run.json").read_text())["clips"]["interact_11"]
    assert e["status"] == "failed" and e["reason"] == "JobFailed: demo.py: exit status 7: RuntimeError: CUDA out of memory (fake)"
    assert e["job"]["returncode"] == 7 and e["job"]["stderr_tail"].splitlines()[-1] == "RuntimeError: CUDA out of memory (fake)"
    assert Path(e["job"]["stderr"]).is_file()


def test_weights_problem_before_any_clip_is_one_line_not_a_traceback(setup, monkeypatch):
    """A model file that is not the registry's, found by a method's prepare() before any clip,
    is an environment problem (exit 3) in one line naming the file."""
    import interactive_eyes.app.run as run_module
    from interactive_eyes.weights import WeightsMismatchError

    def prepare_fails(*args, **kwargs):
        raise WeightsMismatchError("/models/syncnet_v2.model: not the 'syncnet' weights\n(size 5 bytes)")

    monkeypatch.setattr(run_module, "run_method", prepare_fails)
    r = CliRunner().invoke(main, ["run", "--method", "static", "--out", str(setup["tmp"] / "w"), "--quiet"])
    assert r.exit_code == 3, r.output
    assert "Error: /models/syncnet_v2.model: not the 'syncnet' weights (size 5 bytes)" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
