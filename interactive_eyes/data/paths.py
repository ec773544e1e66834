"""Where data and caches live.

Data root: the ``--root`` option, else ``$IE_BENCH_DATA``, else
``$XDG_CACHE_HOME/ie-bench/data/<benchmark>`` (``~/.cache/ie-bench/data/<benchmark>``).
Cache root (weights, statistics): ``$IE_BENCH_HOME``, else ``$XDG_CACHE_HOME/ie-bench``.
"""

from __future__ import annotations

import os
from pathlib import Path

# Released audio is WAV; lossless FLAC copies decode to the same samples (same PCM hash).
AUDIO_EXTENSIONS = (".wav", ".flac")


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


def audio_candidates(root: str | os.PathLike, relpath: str) -> list[Path]:
    """The manifest's path first, then the same stem with each other accepted extension."""
    p = Path(root) / relpath
    stem = p.with_suffix("")
    return [p] + [stem.with_suffix(ext) for ext in AUDIO_EXTENSIONS if ext != p.suffix.lower()]


def find_audio(root: str | os.PathLike, relpath: str) -> Path:
    """The audio file for a manifest path, accepting WAV or FLAC; FileNotFoundError names both."""
    cands = audio_candidates(root, relpath)
    for c in cands:
        if c.is_file():
            return c
    raise FileNotFoundError(f"{cands[0]}: audio track not found (also looked for {', '.join(c.name for c in cands[1:])})")
