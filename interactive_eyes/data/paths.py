"""Where data and caches live, and keeping every manifest path inside its data root.

Data root: the ``--root`` option, else ``$IE_BENCH_DATA``, else
``$XDG_CACHE_HOME/ie-bench/data/<benchmark>`` (``~/.cache/ie-bench/data/<benchmark>``).
Cache root (weights, statistics): ``$IE_BENCH_HOME``, else ``$XDG_CACHE_HOME/ie-bench``.

Confinement: a manifest names files (audio tracks, ground-truth videos) relative to the data
root, and ``data fetch`` writes some of them (videos, their ``.align.json``, reference frames,
released files). Two rules:

* ``confined`` (every read and every write): the path is lexically inside the root
  (``relpath_problem``: relative, no ``..``, no backslash or drive letter, no control
  characters). The manifest loader applies the same rule, so a manifest alone cannot name a
  file outside its root.
* ``write_target`` (every write): also, after following every symlink that exists along the
  way, the file lies under the root's real location. A write never goes through a link that
  leads out of the root (e.g. a symlinked ``audio_left/`` into a read-only shared folder).

Reads follow symlinks that the root's owner made: data roots of symlinks into another disk or a
read-only shared copy are a normal set-up (the test suite builds its roots that way), and a
manifest cannot create a link, so it cannot escape through one by itself.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

# Released audio is WAV; lossless FLAC copies decode to the same samples (same PCM hash).
AUDIO_EXTENSIONS = (".wav", ".flac")

# C0/C1 control characters (NUL included) never belong in a file name the manifest gives.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A Windows drive ("C:..."): on POSIX it is a relative name, but such a manifest is not portable
# and, read on Windows, would point outside the root.
_DRIVE = re.compile(r"^[A-Za-z]:")


class PathEscapeError(ValueError):
    """A manifest path that leaves its data root; ``str(err)`` is one line naming both."""


def cache_home() -> Path:
    if os.environ.get("IE_BENCH_HOME"):
        return Path(os.environ["IE_BENCH_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "ie-bench"


def data_root(root: str | os.PathLike | None = None, benchmark: str = "interactive_eyes") -> Path:
    if root:
        return Path(root).expanduser()
    if os.environ.get("IE_BENCH_DATA"):
        return Path(os.environ["IE_BENCH_DATA"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "ie-bench" / "data" / benchmark


def relpath_problem(value: object) -> str | None:
    """Why ``value`` is not a safe path relative to a data root, or None when it is.

    Safe: a non-empty string of ``/``-separated names, none of them ``..``, not absolute, no
    backslash, no drive letter, no control characters, not naming the root itself.
    """
    if not isinstance(value, str) or not value:
        return "must be a non-empty string (a path relative to the data root)"
    if _CONTROL.search(value):
        return "contains a control character"
    if "\\" in value:
        return "contains a backslash (use '/' between folder names)"
    if value.startswith("/") or _DRIVE.match(value):
        return "is absolute (must be relative to the data root)"
    parts = PurePosixPath(value).parts
    if ".." in parts:
        return "contains '..' (must stay inside the data root)"
    if not parts or all(p == "." for p in parts):
        return "names the data root itself, not a file"
    return None


def confined(root: str | os.PathLike, relpath: str, what: str = "path") -> Path:
    """``root / relpath`` for a lexically safe ``relpath``; ``PathEscapeError`` names the problem."""
    problem = relpath_problem(relpath)
    if problem:
        raise PathEscapeError(f"{root}: {what} {relpath!r} {problem}")
    return Path(root) / relpath


def write_target(root: str | os.PathLike, relpath: str, what: str = "path") -> Path:
    """``root / relpath`` after checking that writing it stays under ``root`` once symlinks are followed.

    Returns the unresolved path (what the user sees in messages); raises ``PathEscapeError``
    for a lexically unsafe path or one whose real location is outside the root's real location.
    Works for paths that do not exist yet: ``resolve`` follows every link that exists along the
    way, a dangling one included.
    """
    path = confined(root, relpath, what)
    real_root = Path(root).resolve()
    real = path.resolve()
    if real == real_root or real_root not in real.parents:
        raise PathEscapeError(f"{path}: {what} resolves to {real}, outside the data root {real_root} (a symlink)")
    return path


def audio_candidates(root: str | os.PathLike, relpath: str) -> list[Path]:
    """The manifest's path first, then the same stem with each other accepted extension.

    ``PathEscapeError`` for a path that is not lexically inside the root (``confined``).
    """
    p = confined(root, relpath, "audio track")
    stem = p.with_suffix("")
    return [p] + [stem.with_suffix(ext) for ext in AUDIO_EXTENSIONS if ext != p.suffix.lower()]


def find_audio(root: str | os.PathLike, relpath: str) -> Path:
    """The audio file for a manifest path, accepting WAV or FLAC; FileNotFoundError names both."""
    cands = audio_candidates(root, relpath)
    for c in cands:
        if c.is_file():
            return c
    raise FileNotFoundError(f"{cands[0]}: audio track not found (also looked for {', '.join(c.name for c in cands[1:])})")
