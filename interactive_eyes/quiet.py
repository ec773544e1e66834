"""Keep native libraries' log lines (MediaPipe / TensorFlow Lite / absl / glog) off the terminal.

MediaPipe's C++ code writes ~21 lines per ``ie-bench`` run straight to file descriptor 2
("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.", "W0000 00:00:... inference_feedback_
manager.cc:114] ...", "WARNING: All log messages before absl::InitializeLog() ..."). They bypass
Python's ``sys.stderr`` and are not silenced by ``GLOG_minloglevel`` or ``TF_CPP_MIN_LOG_LEVEL``
(absl logs before its flags are parsed), so the only reliable switch is at the file-descriptor
level:

* ``capture_native_stderr()`` (called once at CLI start-up) points fd 2 at an unlinked temporary
  file and gives Python a new ``sys.stderr`` on a duplicate of the original fd 2. Everything
  Python prints (click, logging, tqdm, warnings, tracebacks) still reaches the terminal at once;
  only what native code writes to fd 2 lands in the file.
* At exit the captured lines are read back: native *errors and fatals* (``E``/``F`` glog lines,
  lines with "error") are replayed to the terminal, the rest is dropped, so a real problem is
  never hidden. With ``-v`` the CLI does not capture at all (everything shows as it happens).

Only the standard library is imported here: the CLI imports this module before anything heavy.
"""

from __future__ import annotations

import atexit
import io
import os
import re
import sys
import tempfile

# glog/absl: severity letter, MMDD, time, thread, file:line]; TFLite's own "INFO:" lines; absl's
# "WARNING: All log messages before absl::InitializeLog()..." (0.10.x) / "WARNING: Logging before
# InitGoogle()..." (mediapipe 1.x)
NATIVE_LINE = re.compile(r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]]+\]|INFO: |WARNING: (?:All log messages|Logging) before)")
SERIOUS_LINE = re.compile(r"^[EF]\d{4} |error|fatal", re.IGNORECASE)

_active: "NativeCapture | None" = None


class NativeCapture:
    """fd 2 redirected into a temporary file; ``restore()`` undoes it and returns what was captured."""

    def __init__(self, fd: int = 2):
        self.fd = fd
        self._file = tempfile.TemporaryFile(prefix="ie-bench-native-")
        self._saved = os.dup(fd)  # the terminal (or whatever fd 2 was)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, ValueError, OSError):
                pass
        os.dup2(self._file.fileno(), fd)
        self._python_stderr = sys.stderr
        # Python's own messages keep going to the original target, unbuffered line by line
        self.stderr = io.TextIOWrapper(os.fdopen(os.dup(self._saved), "wb", buffering=0),
                                       encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                                       errors="backslashreplace", line_buffering=True, write_through=True)
        sys.stderr = self.stderr
        self.restored = False

    def restore(self) -> str:
        """Put fd 2 and ``sys.stderr`` back; -> the captured native text."""
        if self.restored:
            return ""
        self.restored = True
        try:
            self.stderr.flush()
        except (ValueError, OSError):
            pass
        os.dup2(self._saved, self.fd)
        os.close(self._saved)
        if sys.stderr is self.stderr:
            sys.stderr = self._python_stderr
        self._file.seek(0)
        text = self._file.read().decode("utf-8", "replace")
        self._file.close()
        return text


def split_captured(text: str) -> tuple[list[str], list[str]]:
    """(lines to replay: native errors and anything not recognised as native logging, dropped lines)."""
    replay, dropped = [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        if NATIVE_LINE.match(line) and not SERIOUS_LINE.search(line):
            dropped.append(line)
        else:
            replay.append(line)
    return replay, dropped


def capture_native_stderr(*, verbose: bool = False) -> NativeCapture | None:
    """Start capturing native output on fd 2 for the rest of the process (once; no-op with
    ``verbose``, or when ``sys.stderr`` is not the process's fd 2, e.g. under click's CliRunner)."""
    global _active
    if verbose or _active is not None or os.environ.get("IE_BENCH_NATIVE_LOGS") == "1":
        return None
    try:
        if sys.stderr is None or sys.stderr.fileno() != 2:
            return None
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return None
    _active = NativeCapture(2)
    atexit.register(_finish)
    return _active


def _finish() -> None:
    global _active
    if _active is None:
        return
    cap, _active = _active, None
    replay, _dropped = split_captured(cap.restore())
    if replay:
        sys.stderr.write("\n".join(replay) + "\n")
        sys.stderr.flush()


def progress_options(stream=None) -> dict:
    """tqdm options for one final progress line where nobody watches the bar move.

    On a terminal tqdm redraws one line in place. Into a file or a pipe every redraw is another
    ``\\r``-separated copy, and ``close()`` repeats the 100 % line (two final lines in a log).
    There, refresh only at the start and at close: ``mininterval=inf`` leaves the 0 % line and one
    final line.
    """
    stream = sys.stderr if stream is None else stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    return {} if tty else {"mininterval": float("inf")}
