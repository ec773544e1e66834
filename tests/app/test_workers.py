"""``score --workers 2`` leaves no process behind when it is killed (SIGKILL) or terminated (SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from app_helpers import write_clip, write_manifest

# the real `ie-bench score` command, in its own process, with the slow test metric registered
SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from interactive_eyes.metrics import METRICS
METRICS.register("slow_luma", "_fake_metrics:SlowLuma")
from interactive_eyes.app.cli import main
main(["score", {gen!r}, "--manifest", {manifest!r}, "--metrics", "slow_luma", "--workers", "2", "--out", {out!r}])
"""


def _children(pid: int) -> set[int]:
    """Direct children of ``pid`` from /proc (psutil may not be installed)."""
    kids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                kids.add(int(entry))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's wait() is missing


def _start(tmp_path):
    gen = tmp_path / "gen"
    gen.mkdir()
    for i in range(8):
        write_clip(gen / f"c{i}.mp4", value=20 * i + 5)
    manifest = write_manifest(tmp_path / "m.json", 8)
    script = SCRIPT.format(tests=str(Path(__file__).parent), gen=str(gen), manifest=str(manifest),
                           out=str(tmp_path / "out"))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # two workers and multiprocessing's resource tracker, all children of the score process
    deadline = time.time() + 90
    kids: set[int] = set()
    while time.time() < deadline and proc.poll() is None:
        kids = _children(proc.pid)
        if len(kids) >= 3 and (tmp_path / "out" / "per_clip.jsonl").exists():
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    assert len(kids) >= 3, kids
    return proc, kids


def _gone(pids: set[int], timeout: float = 20.0) -> set[int]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        alive = {p for p in pids if _alive(p)}
        if not alive:
            return alive
        time.sleep(0.1)
    return {p for p in pids if _alive(p)}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux")
def test_sigkill_of_score_leaves_no_worker_or_resource_tracker(tmp_path):
    proc, kids = _start(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    survivors = _gone(kids)
    for p in survivors:  # do not leave them running on the CI machine
        os.kill(p, signal.SIGKILL)
    assert survivors == set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_sigterm_of_score_terminates_the_workers(tmp_path):
    proc, kids = _start(tmp_path)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    survivors = _gone(kids)
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert survivors == set()
