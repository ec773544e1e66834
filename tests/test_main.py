"""``python -m interactive_eyes`` behaves as ``ie-bench``: version, help, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from interactive_eyes import __version__


def _run(*args):
    return subprocess.run([sys.executable, "-m", "interactive_eyes", *args], capture_output=True, text=True, timeout=120)


def test_version_and_help_match_the_console_script():
    r = _run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"ie-bench, version {__version__}"
    h = _run("--help")
    assert h.returncode == 0 and h.stdout.startswith("Usage: ie-bench ")
    assert "leaderboard" in h.stdout and "score" in h.stdout
    # the console script installed beside this interpreter (the venv's bin/)
    exe = Path(sys.executable).parent / "ie-bench"
    assert subprocess.run([str(exe), "--help"], capture_output=True, text=True).stdout == h.stdout


def test_usage_error_exit_code():
    r = _run("no-such-command")
    assert r.returncode == 2 and "No such command 'no-such-command'" in r.stderr
