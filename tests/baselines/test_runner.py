"""The shared subprocess runner: timeout kills the whole process group, failures keep their logs
and stderr tail, a finished job is not launched again (DONE), the working directory is private."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from interactive_eyes.baselines.runner import OFFLINE_ENV, Job, JobFailed, run_job, timeout_for

HERE = Path(__file__).parent


def _stub(path: Path, name: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"import sys\nsys.path.insert(0, {str(HERE)!r})\nimport fake_upstream\nfake_upstream.main({name!r})\n")
    return path


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_timeout_is_load_allowance_plus_factor_times_duration():
    assert timeout_for(8.0, 600, 120) == 600 + 120 * 8.0


def test_hanging_method_is_killed_with_its_whole_process_group(tmp_path, monkeypatch):
    rec = tmp_path / "pids.json"
    monkeypatch.setenv("FAKE_RECORD", str(rec))
    job = Job(argv=[sys.executable, str(_stub(tmp_path / "hang.py", "hang"))], job_dir=tmp_path / "job", timeout_s=2.0)
    t0 = time.monotonic()
    with pytest.raises(JobFailed, match=r"hang.py: timed out after 2 s \(process group killed\)") as err:
        run_job(job, collect=lambda j: None, term_grace_s=1.0)
    assert time.monotonic() - t0 < 15
    assert err.value.details["timed_out"] and err.value.details["returncode"] < 0
    pids = json.loads(rec.read_text())
    deadline = time.monotonic() + 5
    while (_alive(pids["pid"]) or _alive(pids["child"])) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pids["pid"]) and not _alive(pids["child"]), "an orphan of the killed job is still running"
    assert not (job.job_dir / "DONE").exists()


def test_failure_keeps_logs_and_the_stderr_tail(tmp_path):
    job = Job(argv=[sys.executable, str(_stub(tmp_path / "fail.py", "fail"))], job_dir=tmp_path / "job")
    with pytest.raises(JobFailed) as err:
        run_job(job, collect=lambda j: None)
    assert str(err.value) == "fail.py: exit status 7: RuntimeError: CUDA out of memory (fake)"
    d = err.value.details
    assert d["returncode"] == 7 and d["argv"] == job.argv
    tail = d["stderr_tail"].splitlines()
    assert len(tail) == 20 and tail[-1] == "RuntimeError: CUDA out of memory (fake)" and tail[0] == "noise line 11"
    assert Path(d["stdout"]).read_text() == "loading model ...\n"
    assert "noise line 0" in Path(d["stderr"]).read_text()  # the whole log stays in the job folder


def test_finished_job_is_not_launched_again(tmp_path, monkeypatch):
    count = tmp_path / "count"
    monkeypatch.setenv("FAKE_RECORD", str(count))
    stub = _stub(tmp_path / "count.py", "count")
    out = tmp_path / "job" / "out" / "v.mp4"

    def job(extra=()):
        return Job(argv=[sys.executable, str(stub), "--out", str(out), *extra], job_dir=tmp_path / "job")

    collect = lambda j: out  # noqa: E731
    first = run_job(job(), collect=collect)
    assert not first["reused"] and count.read_text() == "1" and (tmp_path / "job" / "DONE").is_file()
    again = run_job(job(), collect=collect)
    assert again["reused"] and count.read_text() == "1" and again["sha256"] == first["sha256"]
    out.write_bytes(b"damaged")  # the output no longer matches DONE's sha256: run again
    assert not run_job(job(), collect=collect)["reused"] and count.read_text() == "2"
    assert not run_job(job(["--x"]), collect=collect)["reused"] and count.read_text() == "3"  # other argv


def test_missing_output_after_exit_0_is_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_RECORD", str(tmp_path / "count"))
    stub = _stub(tmp_path / "count.py", "count")
    job = Job(argv=[sys.executable, str(stub), "--out", str(tmp_path / "elsewhere.mp4")], job_dir=tmp_path / "job")

    def collect(j):
        raise FileNotFoundError(f"{j.out}/x.mp4: the method exited 0 but wrote no output")

    with pytest.raises(JobFailed, match="exited 0 but wrote no output"):
        run_job(job, collect=collect)


def test_working_directory_mirrors_the_checkout_but_keeps_writes_private(tmp_path):
    repo = tmp_path / "repo"
    (repo / "checkpoints").mkdir(parents=True)
    (repo / "checkpoints" / "w.bin").write_bytes(b"w")
    (repo / "output").mkdir()  # the method writes here relative to its cwd
    (repo / "output" / "stale.mp4").write_bytes(b"old")
    code = ("import os, pathlib; assert pathlib.Path('checkpoints/w.bin').read_bytes() == b'w'; "
            "assert not os.listdir('output'); pathlib.Path('output/new.mp4').write_bytes(b'n'); "
            "print(os.environ['HF_HUB_OFFLINE'], os.environ['TMPDIR'])")
    job = Job(argv=[sys.executable, "-c", code], job_dir=tmp_path / "job", repo=repo)
    rec = run_job(job, collect=lambda j: j.work / "output" / "new.mp4")
    assert (job.work / "checkpoints").is_symlink() and not (job.work / "output").is_symlink()
    assert sorted(os.listdir(repo / "output")) == ["stale.mp4"]  # the checkout is untouched
    assert Path(rec["stdout"]).read_text().split() == [OFFLINE_ENV["HF_HUB_OFFLINE"], str(job.tmp)]


def test_peak_gpu_memory_of_the_job_group_is_recorded(tmp_path, monkeypatch):
    """A stand-in nvidia-smi reports 1000 MiB for every process on the machine: only the job's own
    process group (the script and its child) may count, so the peak is 2000 MiB."""
    import interactive_eyes.baselines.runner as runner

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\ncase \"$1\" in\n  --query-gpu=name) echo 'NVIDIA Fake GPU';;\n"
                   "  *) for p in $(ls /proc | grep -E '^[0-9]+$'); do echo \"$p, 1000\"; done;;\nesac\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(runner, "GPU_POLL_S", 0.2)
    code = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1.5)']); "
            "time.sleep(1.2); c.wait()")
    rec = run_job(Job(argv=[sys.executable, "-c", code], job_dir=tmp_path / "job"), collect=lambda j: _touch(j.out / "o"))
    assert rec["gpus"] == ["NVIDIA Fake GPU"] and rec["gpu_peak_mib"] == 2000


def _touch(p: Path) -> Path:
    p.write_bytes(b"x")
    return p
