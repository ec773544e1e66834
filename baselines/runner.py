"""The one subprocess runner every foreign-repository adapter goes through (spec/baselines.md §5.5).

A foreign method never runs inside the harness process: its own checkout runs under its own
Python (``<env>/bin/python``), whose pins conflict with ours (torch 2.4 vs 2.6, old diffusers...).
``run_job`` launches one job:

* an **argv list** (never a shell string), **stdin closed** (``DEVNULL``: an ffmpeg overwrite
  prompt in the method's code fails at once instead of hanging the run);
* **offline hub variables** (``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1`` ...): weights are
  pre-staged, a missing file must fail fast rather than start a 30 GB download;
* a **per-job working directory** ``<job>/work``: a folder of symlinks to the checkout's top-level
  entries, so scripts that read ``checkpoints/...`` relative to the working directory still find
  them, while everything they write relative to it (``output/``, ``demo_out/``, ``tmp/``,
  ``logs/``, ``save_audio/``) lands in this job's folder. ``TMPDIR`` is ``<job>/tmp`` (LongCat
  writes to /tmp). These and ``<job>/out`` are emptied before every attempt, which also removes the leftovers that
  break a retry (MultiTalk's ``-cropaudio.wav`` without ``-y``, StableAvatar's fixed file name);
* a **timeout** = model-load allowance + factor x clip duration; on expiry the whole **process
  group** (``start_new_session=True``) gets SIGTERM, then SIGKILL after a grace period, so the
  method's own children (torchrun workers, ffmpeg) die with it;
* **stdout and stderr** streamed to ``<job>/stdout.txt`` / ``<job>/stderr.txt``; on failure the
  last lines of stderr travel in the exception (and so into run.json);
* **resume**: a job that finished writes ``<job>/DONE`` naming its output and that file's
  sha256; a later run with the same argv finds it and does not launch the method again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

# spec/baselines.md §5.5: offline hubs, no tokenizer thread pools fighting the method's own
# workers, unbuffered output so the log is complete when a job is killed.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DIFFUSERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
    # a request that slips past the offline switches goes to a closed loopback port and fails
    # at once (spec §5.5: "point any network access at loopback so a missing file fails fast")
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "localhost,127.0.0.1",  # torchrun's rendezvous and other local traffic stay direct
}
# Variables of the harness environment that must not leak into a foreign one: they would point
# its Python at our site-packages.
DROPPED_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
TAIL_LINES = 20
TERM_GRACE_S = 10.0  # SIGTERM -> SIGKILL


class JobFailed(RuntimeError):
    """The method exited non-zero, timed out or wrote no output. ``details`` goes into run.json."""

    def __init__(self, message: str, details: dict):
        super().__init__(message)
        self.details = details


@dataclass
class Job:
    """One invocation of a foreign method for one clip."""

    argv: Sequence[str]
    job_dir: Path
    repo: Path | None = None  # mirrored into <job>/work as symlinks (the working directory)
    env: dict[str, str] = field(default_factory=dict)  # on top of OFFLINE_ENV
    timeout_s: float = 3600.0
    cwd: Path | None = None  # default <job>/work
    # written relative to the working directory by some method (spec §5.5 "Working directory"):
    # AniPortrait/EchoMimic output/, OmniAvatar demo_out/, MultiTalk save_audio/, InfiniteTalk
    # tmp/, Bind-Your-Avatar logs/, LongCat outputs_avatar_multi/
    private: tuple[str, ...] = ("output", "outputs", "demo_out", "save_audio", "tmp", "logs", "outputs_avatar_multi")

    @property
    def work(self) -> Path:
        return self.job_dir / "work"

    @property
    def tmp(self) -> Path:
        return self.job_dir / "tmp"

    @property
    def out(self) -> Path:
        """Where the method is told to write (emptied before every attempt)."""
        return self.job_dir / "out"

    @property
    def inputs(self) -> Path:
        """The method's own input files, written by the adapter's ``prepare_job``."""
        return self.job_dir / "in"


def timeout_for(duration_s: float, load_s: float, factor: float) -> float:
    """Model-load allowance plus ``factor`` seconds per second of clip (spec §5.5 "Timeouts")."""
    return float(load_s) + float(factor) * float(duration_s)


def tail(path: Path, n: int = TAIL_LINES) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join(lines[-n:])


def _script(argv: Sequence[str]) -> str:
    """The name of the script a command runs (``python -m torch.distributed.run x.py`` -> x.py)."""
    for a in argv[1:]:
        if a.endswith(".py"):
            return Path(a).name
    return Path(argv[0]).name


def _last_error(text: str) -> str:
    """The line of a stderr tail that says what went wrong: the last exception line, else the
    last line with words in it (not a ``=====`` rule)."""
    import re

    lines = [ln.strip() for ln in text.splitlines() if re.search(r"[A-Za-z]{2}", ln)]
    for ln in reversed(lines):
        if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b", ln):
            return ln
    return lines[-1] if lines else "(no output on stderr)"


def _mirror(repo: Path, work: Path, private: Sequence[str]) -> None:
    """``work`` = symlinks to every top-level entry of ``repo`` (never a copy: checkouts hold
    weight folders of many GB), except the folders the method writes into relative to its
    working directory (``private``), which are real empty folders of this job."""
    work.mkdir(parents=True)
    for entry in sorted(repo.iterdir()):
        if entry.name in (".git", *private):
            continue
        (work / entry.name).symlink_to(entry.resolve())
    for name in private:
        (work / name).mkdir()


def _fresh(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _kill_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM to the job's process group, SIGKILL to whatever is left after ``grace`` s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    _kill_rest(proc.pid)


def _kill_rest(pgid: int) -> None:
    """SIGKILL anything still in the group (children outliving their parent), ignore an empty group."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


GPU_POLL_S = 2.0


class GpuWatch:
    """Peak GPU memory of a job's process group, from ``nvidia-smi --query-compute-apps`` (spec
    §5.5: "poll nvidia-smi for peak memory"); does nothing on a machine without nvidia-smi."""

    def __init__(self, pgid: int):
        self.pgid = pgid
        self.exe = shutil.which("nvidia-smi")
        self.peak_mib: int | None = None
        self.gpus: list[str] = []
        if self.exe:
            self.gpus = self._query(["--query-gpu=name", "--format=csv,noheader"])

    def _query(self, args) -> list[str]:
        try:
            out = subprocess.run([self.exe, *args], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [ln.strip() for ln in out.stdout.splitlines() if ln.strip()] if out.returncode == 0 else []

    def poll(self) -> None:
        if not self.exe:
            return
        used = 0
        for line in self._query(["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]):
            pid, _, mib = line.partition(",")
            try:
                if os.getpgid(int(pid)) == self.pgid:
                    used += int(float(mib))
            except (ValueError, ProcessLookupError, PermissionError):
                continue
        self.peak_mib = max(self.peak_mib or 0, used)

    def facts(self) -> dict:
        return {"gpu_peak_mib": self.peak_mib, "gpus": self.gpus} if self.exe else {}


def _wait(proc: subprocess.Popen, timeout: float, gpu: GpuWatch) -> int:
    """``proc.wait(timeout)``, polling the GPU every ``GPU_POLL_S`` meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        try:
            return proc.wait(timeout=min(left, GPU_POLL_S) if gpu.exe else left)
        except subprocess.TimeoutExpired:
            gpu.poll()


def done_marker(job_dir: Path) -> dict | None:
    """The DONE record of a finished job whose output still has the recorded sha256, else None."""
    from interactive_eyes.download import sha256_file

    p = job_dir / "DONE"
    try:
        rec = json.loads(p.read_text())
        out = Path(rec["output"])
        if out.is_file() and sha256_file(out) == rec["sha256"]:
            return rec
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        pass
    return None


def run_job(job: Job, *, collect, term_grace_s: float = TERM_GRACE_S) -> dict:
    """Run ``job`` (or reuse its DONE record) and return facts about it.

    ``collect(job) -> Path``: finds the method's output after a clean exit (raising
    ``FileNotFoundError`` with a one-line reason if it is not there). Raises ``JobFailed`` for a
    non-zero exit, a timeout or a missing output; the log files stay in the job folder.
    """
    from interactive_eyes.download import sha256_file

    job.job_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(a) for a in job.argv]
    previous = done_marker(job.job_dir)
    if previous is not None and previous.get("argv") == argv:
        return {**previous, "reused": True}
    _fresh(job.job_dir / "DONE")
    for d in (job.work, job.tmp, job.out):
        _fresh(d)
    if job.repo is not None:
        _mirror(Path(job.repo), job.work, job.private)
    else:
        job.work.mkdir(parents=True)
    job.tmp.mkdir(parents=True)
    job.out.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(OFFLINE_ENV)
    env["TMPDIR"] = str(job.tmp)
    env.update(job.env)
    stdout_p, stderr_p = job.job_dir / "stdout.txt", job.job_dir / "stderr.txt"
    details = {"argv": argv, "env": dict(job.env), "cwd": str(job.cwd or job.work), "timeout_s": job.timeout_s,
               "stdout": str(stdout_p), "stderr": str(stderr_p)}
    t0 = time.monotonic()
    with open(stdout_p, "wb") as out, open(stderr_p, "wb") as err:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=job.cwd or job.work,
                                    env=env, start_new_session=True)
        except OSError as exc:
            raise JobFailed(f"{argv[0]}: cannot start ({exc.strerror or exc})", {**details, "returncode": None}) from None
        gpu = GpuWatch(proc.pid)
        try:
            rc, timed_out = _wait(proc, job.timeout_s, gpu), False
        except subprocess.TimeoutExpired:
            _kill_group(proc, term_grace_s)
            rc, timed_out = proc.wait(), True
        finally:
            if proc.poll() is None:  # interrupted (KeyboardInterrupt): never leave the method running
                _kill_group(proc, term_grace_s)
        _kill_rest(proc.pid)  # children that outlived a finished parent
    details.update(returncode=rc, seconds=round(time.monotonic() - t0, 3), timed_out=timed_out, **gpu.facts())
    if timed_out:
        details["stderr_tail"] = tail(stderr_p)
        raise JobFailed(f"{_script(argv)}: timed out after {job.timeout_s:g} s (process group killed)", details)
    if rc != 0:
        details["stderr_tail"] = tail(stderr_p)
        raise JobFailed(f"{_script(argv)}: exit status {rc}: {_last_error(details['stderr_tail'])}"[:300], details)
    try:
        output = Path(collect(job))
    except FileNotFoundError as exc:
        details["stderr_tail"] = tail(stderr_p)
        raise JobFailed(" ".join(str(exc).split()), details) from None
    record = {**details, "output": str(output), "sha256": sha256_file(output)}
    tmp = job.job_dir / ".DONE.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, job.job_dir / "DONE")
    return {**record, "reused": False}
