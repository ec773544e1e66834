"""``--executor ray`` on a local Ray cluster (2 CPUs, loopback): the same per-clip records and
results.json aggregates as a local run, a killed worker actor replaced and its clip retried, a
clip that kills every actor recorded as failed after the retries, videos shipped as object refs.

Ray takes ~10-15 s to start on a loaded 2-core machine, so one cluster serves the module (the
first test starts and stops its own, as ``score --executor ray`` does without --ray-address)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from app_helpers import write_clip, write_manifest
from executor_fixtures import gen, manifest, metrics  # noqa: F401 (fixtures)
from click.testing import CliRunner

ray = pytest.importorskip("ray")

from interactive_eyes.app.cli import main  # noqa: E402

pytestmark = pytest.mark.slow

TESTS_APP = str(Path(__file__).parent)


def _short_tmp() -> str:
    """Ray's session folder: a short one of its own (removed after use), because Ray's socket
    paths under it must stay within 107 characters, which pytest's tmp_path exceeds."""
    return tempfile.mkdtemp(prefix="ieray")


def _pythonpath() -> str:
    """The actors import the test metrics (tests/app/_fake_metrics.py) like this process does."""
    return os.pathsep.join([TESTS_APP] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))


def _score(gen, manifest, out, *args):
    r = CliRunner().invoke(main, ["score", str(gen), "--manifest", str(manifest), "--out", str(out), "--json", *args])
    return r, (json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else None)


def _records(out):
    recs = [json.loads(x) for x in (out / "per_clip.jsonl").read_text().splitlines()]
    return {(r["clip"], r["metric"]): {k: v for k, v in r.items() if k != "seconds"} for r in recs}


def _aggregates(res):
    return res["metrics"], res["exit_code"], res["problems"], res["options"]


def test_without_an_address_a_local_ray_is_started_and_stopped(gen, manifest, metrics, tmp_path, monkeypatch):
    assert not ray.is_initialized()
    monkeypatch.setenv("PYTHONPATH", _pythonpath())  # the local instance's workers inherit it
    short = _short_tmp()
    monkeypatch.setenv("RAY_TMPDIR", short)
    try:
        r, res = _score(gen, manifest, tmp_path / "out", "--metrics", "mean_luma", "--executor", "ray")
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert r.exit_code == 0, r.output
    assert res["metrics"]["mean_luma"]["n_ok"] == 4
    assert not ray.is_initialized()  # stopped after the run


@pytest.fixture(scope="module")
def cluster():
    tmp = _short_tmp()
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=tmp,
             object_store_memory=100 * 2**20, runtime_env={"env_vars": {"PYTHONPATH": _pythonpath()}},
             logging_level="WARNING", log_to_driver=False)
    yield
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


def test_ray_gives_the_results_of_a_local_run(cluster, gen, manifest, metrics, tmp_path):
    args = ["--metrics", "mean_luma,luma_pooled,broken"]
    r_local, local = _score(gen, manifest, tmp_path / "local", *args)
    r_ray, dist = _score(gen, manifest, tmp_path / "ray", *args, "--executor", "ray")
    assert r_ray.exit_code == r_local.exit_code == 1, r_ray.output  # `broken` fails every clip, in both
    assert _records(tmp_path / "ray") == _records(tmp_path / "local")  # values, reasons, cache keys
    assert _aggregates(dist) == _aggregates(local)
    assert dist["metrics"]["mean_luma"]["n_ok"] == 4 and dist["metrics"]["luma_pooled"]["value"] is not None
    # resuming the Ray run computes nothing and still gives the same results
    r_again, again = _score(gen, manifest, tmp_path / "ray", *args, "--executor", "ray")
    assert _aggregates(again) == _aggregates(local)
    assert len((tmp_path / "ray" / "per_clip.jsonl").read_text().splitlines()) == 12


def test_clips_run_on_the_actors_not_in_the_driver(cluster, gen, manifest, metrics, tmp_path):
    r, res = _score(gen, manifest, tmp_path / "ray", "--metrics", "device_probe", "--executor", "ray")
    assert r.exit_code == 0, r.output
    pids = {rec["details"]["pid"] for rec in _records(tmp_path / "ray").values()}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # 2 CPUs: at most two actors, each long-lived


def test_a_killed_actor_is_replaced_and_its_clip_retried(cluster, gen, manifest, metrics, tmp_path):
    marker = tmp_path / "deaths"
    _, local = _score(gen, manifest, tmp_path / "local", "--metrics", "die_once,luma_pooled")
    r, dist = _score(gen, manifest, tmp_path / "ray", "--metrics", "die_once,luma_pooled", "--executor", "ray",
                     "--option", "die_once.die_on=c1", "--option", f"die_once.marker={marker}",
                     "--option", "die_once.times=1")
    assert r.exit_code == 0, r.output
    assert marker.read_text() == "1"  # the actor died once on c1 (os._exit mid-clip); the retry scored it
    assert _records(tmp_path / "ray") == _records(tmp_path / "local")
    assert dist["metrics"]["die_once"] == local["metrics"]["die_once"]
    assert dist["metrics"]["luma_pooled"]["value"] == local["metrics"]["luma_pooled"]["value"]


def test_a_clip_that_kills_every_actor_fails_after_the_retries(cluster, gen, manifest, metrics, tmp_path):
    marker = tmp_path / "deaths"
    r, res = _score(gen, manifest, tmp_path / "ray", "--metrics", "die_once", "--executor", "ray",
                    "--option", "die_once.die_on=c2", "--option", f"die_once.marker={marker}",
                    "--option", "die_once.times=-1")
    assert r.exit_code == 1, r.output
    assert marker.read_text() == "3"  # DEFAULT_RETRIES = 2: three attempts in all
    m = res["metrics"]["die_once"]
    assert (m["n_ok"], m["n_failed"]) == (3, 1)
    assert m["failures"] == [{"clip": "c2", "reason": "worker died 3 times on this clip (ActorDiedError)"}]


def test_shipped_videos_give_the_same_results(cluster, gen, manifest, metrics, tmp_path):
    args = ["--metrics", "mean_luma,luma_pooled,broken"]
    _, local = _score(gen, manifest, tmp_path / "local", *args)
    r, dist = _score(gen, manifest, tmp_path / "ray", *args, "--executor", "ray", "--ship-videos")
    assert _records(tmp_path / "ray") == _records(tmp_path / "local")
    assert _aggregates(dist) == _aggregates(local)
    # the actors read the bytes from the object store, written to a temporary file of their own
    _score(gen, manifest, tmp_path / "probe", "--metrics", "path_probe", "--executor", "ray", "--ship-videos")
    read_from = {rec["details"]["read_from"] for rec in _records(tmp_path / "probe").values()}
    assert len(read_from) == 4 and all(Path(p).parent.name.startswith("ie-bench-clip-") for p in read_from)
    assert all(Path(p).name in {f"c{i}.mp4" for i in range(4)} for p in read_from)


def test_ray_missing_is_an_environment_error(gen, manifest, metrics, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    r = CliRunner().invoke(main, ["score", str(gen), "--manifest", str(manifest), "--metrics", "mean_luma",
                                  "--executor", "ray"])
    assert r.exit_code == 3 and "--executor ray needs Ray: pip install 'ie-bench[ray]'" in r.output


def test_run_with_ray_writes_the_same_run(cluster, tmp_path):
    """``ie-bench run --executor ray``: the actors generate into the (shared) output folder and the
    driver alone writes run.json, with the entries of an in-process run."""
    from _executor_metrics import PickyMethod, write_person_audio
    from app_helpers import manifest_dict

    from interactive_eyes.app.executors_ray import RayExecutor
    from interactive_eyes.app.run import run_method
    from interactive_eyes.data.manifest import parse

    bench = parse(manifest_dict(3))
    root = write_person_audio(bench, tmp_path / "root")
    ref = run_method(PickyMethod(), benchmark=bench, out_dir=tmp_path / "ref", data_root=root, progress=False)
    dist = run_method(PickyMethod(), benchmark=bench, out_dir=tmp_path / "ray", data_root=root, progress=False,
                      executor=RayExecutor())

    def entry(e):
        return {k: v for k, v in e.items() if k not in ("started", "finished", "seconds", "info")}

    assert {c: entry(e) for c, e in dist["clips"].items()} == {c: entry(e) for c, e in ref["clips"].items()}
    assert dist["clips"]["c0"]["info"]["pid"] != os.getpid() and dist["counts"] == ref["counts"]
    assert (tmp_path / "ray" / "c0.mp4").read_bytes() == (tmp_path / "ref" / "c0.mp4").read_bytes()


def test_a_worker_that_cannot_start_is_an_environment_error(cluster):
    from interactive_eyes.app.errors import EnvironmentFailure
    from interactive_eyes.app.executors import WorkerSpec
    from interactive_eyes.app.executors_ray import RayExecutor

    spec = WorkerSpec(setup="_executor_metrics:failing_setup", setup_args=(), call="_executor_metrics:echo_call")
    got = []
    with pytest.raises(EnvironmentFailure, match="ray: a worker could not start: FileNotFoundError: "
                                                 "/nowhere/syncnet_v2.model: weights file not found on this node"):
        RayExecutor().map(spec, [(1,), (2,)], lambda i, r: got.append(r), lambda i, reason: got.append(reason))
    assert got == []
    ok = WorkerSpec(setup="_executor_metrics:echo_setup", setup_args=(),
                    call="_executor_metrics:echo_call")
    RayExecutor().map(ok, [(1,), (2,), (3,)], lambda i, r: got.append((i, r)), lambda i, reason: got.append(reason))
    assert sorted(got) == [(0, 1), (1, 2), (2, 3)]
    # an error raised by the worker's own code is that task's failure at once (no retry)
    got.clear()
    boom = WorkerSpec(setup="_executor_metrics:echo_setup", setup_args=(), call="_executor_metrics:boom_call")
    RayExecutor().map(boom, [(1,), (2,), (3,)], lambda i, r: got.append((i, r)), lambda i, reason: got.append((i, reason)))
    assert sorted(got, key=str) == [(0, 1), (1, "worker error: ValueError: task 2: a bug in the worker's own code"), (2, 3)]


SIGTERM_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from interactive_eyes.metrics import METRICS
METRICS.register("slow_luma", "_fake_metrics:SlowLuma")
from interactive_eyes.app.cli import main
main(["score", {gen!r}, "--manifest", {manifest!r}, "--metrics", "slow_luma", "--executor", "ray", "--out", {out!r}])
"""


def _processes_mentioning(text: str) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if text.encode() in cmd and state not in ("Z", "X"):
                found.add(int(entry))
    return found


def test_sigterm_cancels_the_remote_work_and_stops_the_local_ray(tmp_path):
    """`score --executor ray` started its own Ray; SIGTERM in the middle of the run ends the
    command and every process of that Ray instance (raylet, GCS, actors), keeping what was recorded."""
    import signal
    import subprocess
    import sys
    import time

    gen = tmp_path / "gen"
    gen.mkdir()
    for i in range(8):
        write_clip(gen / f"c{i}.mp4", value=20 * i + 5)
    manifest = write_manifest(tmp_path / "m.json", 8)
    out = tmp_path / "out"
    short = _short_tmp()
    env = {**os.environ, "PYTHONPATH": _pythonpath(), "RAY_TMPDIR": short}
    script = SIGTERM_SCRIPT.format(tests=TESTS_APP, gen=str(gen), manifest=str(manifest), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not (out / "per_clip.jsonl").exists():
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert (out / "per_clip.jsonl").exists()
        assert _processes_mentioning(short)  # the Ray instance's processes run under its session folder
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        assert rc == 143, proc.stderr.read().decode()[-2000:]
        deadline = time.time() + 30
        while time.time() < deadline and _processes_mentioning(short):
            time.sleep(0.5)
        assert not _processes_mentioning(short)
        done = (out / "per_clip.jsonl").read_text().splitlines()
        assert 1 <= len(done) < 8  # what was recorded stays; the rest was cancelled
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(short, ignore_errors=True)
