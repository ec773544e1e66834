"""Native log lines on fd 2 are captured (MediaPipe/TFLite/absl), Python's own stderr is not,
native errors are replayed at exit, and -v (verbose) shows everything."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from interactive_eyes.quiet import NATIVE_LINE as NATIVE_RE
from interactive_eyes.quiet import split_captured

# What MediaPipe 0.10.21 prints for one FaceMesh graph (copied from a real run's stderr).
NATIVE = [
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "W0000 00:00:1796591562.484691   24772 inference_feedback_manager.cc:114] Feedback manager requires a model "
    "with a single signature inference. Disabling support for feedback tensors.",
    "I0000 00:00:1796591562.583728   24772 gl_context.cc:369] GL version: 2.1",
    "WARNING: Logging before InitGoogle() is written to STDERR",  # mediapipe 1.x
]
ERROR_LINE = "E0000 00:00:1796591562.583728   24772 calculator_graph.cc:928] INVALID_ARGUMENT: bad packet"


def _run(body: str, *args: str) -> subprocess.CompletedProcess:
    code = "import os, sys\nfrom interactive_eyes.quiet import capture_native_stderr\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_split_keeps_errors_and_unknown_lines():
    replay, dropped = split_captured("\n".join(NATIVE + [ERROR_LINE, "something else", ""]))
    assert dropped == NATIVE
    assert replay == [ERROR_LINE, "something else"]


def test_fd_level_lines_captured_python_stderr_kept():
    body = f"""
    capture_native_stderr(verbose=sys.argv[1] == "-v")
    for line in {NATIVE + [ERROR_LINE]!r}:
        os.write(2, (line + "\\n").encode())  # what C++ code does: a write(2) syscall
    print("python says hello", file=sys.stderr)
    import logging; logging.basicConfig(); logging.getLogger("x").warning("a log record")
    """
    quiet = _run(body, "-q")
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stderr.splitlines()
    assert "python says hello" in lines and "WARNING:x:a log record" in lines
    assert not any(n in lines for n in NATIVE)
    assert lines[-1] == ERROR_LINE  # a native error is replayed at exit, never hidden
    loud = _run(body, "-v")
    assert all(n in loud.stderr.splitlines() for n in NATIVE)


def _landmark_backends() -> list:
    """The backends whose native code prints: the Tasks models through LiteRT (every install) and
    the legacy graph (marked: runs where mediapipe 0.10.21, the `legacy` extra, is installed)."""
    return ["mediapipe-tasks", pytest.param("mediapipe-legacy", marks=pytest.mark.legacy_mediapipe)]


@pytest.mark.parametrize("backend", _landmark_backends())
def test_ie_bench_interactivity_prints_no_native_lines(interact_11, face_landmarker_task, backend):
    """The real landmark models through the real command: their native lines only with -v."""
    exe = [sys.executable, "-m", "interactive_eyes"]
    args = ["interactivity", str(interact_11), "--backend", backend]
    loud = subprocess.run([*exe, "-v", *args], capture_output=True, text=True, timeout=600)
    assert loud.returncode == 0, loud.stderr
    native = [line for line in loud.stderr.splitlines() if NATIVE_RE.match(line)]
    assert native  # the test can fail: without the capture the models' lines are there
    quiet = subprocess.run([*exe, *args], capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 0, quiet.stderr
    assert not [line for line in quiet.stderr.splitlines() if NATIVE_RE.match(line)], quiet.stderr
    assert quiet.stdout == loud.stdout  # same result either way


def test_cli_runs_quiet_and_verbose_is_loud(tmp_path):
    """`ie-bench` captures at start-up; the captured file is not left behind; -v disables it."""
    body = """
    from interactive_eyes.app.cli import main
    import click

    @main.command("_native_noise")
    def _noise():
        os.write(2, b"W0000 00:00:1.0   1 x.cc:1] native noise\\n")
        click.echo("python line", err=True)

    main(sys.argv[1:], standalone_mode=True)
    """
    quiet = _run(body, "_native_noise")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr.splitlines() == ["python line"]
    loud = _run(body, "-v", "_native_noise")
    assert "native noise" in loud.stderr and "python line" in loud.stderr


def test_progress_into_a_file_has_one_final_line(tmp_path):
    import io

    from tqdm import tqdm

    from interactive_eyes.quiet import progress_options

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert progress_options(Tty()) == {}
    log = io.StringIO()
    bar = tqdm(total=3, desc="score", file=log, **progress_options(log))
    for _ in range(3):
        bar.update(1)
    bar.close()
    shown = [part for part in log.getvalue().split("\r") if part.strip()]
    assert len(shown) == 2 and "0/3" in shown[0] and "3/3" in shown[1]  # start, and one final line
    default = io.StringIO()
    bar = tqdm(total=3, desc="score", file=default, mininterval=0)
    for _ in range(3):
        bar.update(1)
    bar.close()
    assert sum("3/3" in p for p in default.getvalue().split("\r")) == 2  # what tqdm alone prints
