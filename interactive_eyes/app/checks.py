"""The per-clip checks that ``score`` and ``validate`` share (one function, one contract).

``check_video(path, clip)`` answers "may this file be scored as this clip?" with one-line
problems; ``score`` fails the clip with exactly these reasons (the other clips still score) and
``validate`` prints them. What is checked, and why these numbers:

- the file is readable (permissions, I/O errors) and a decodable video (``media.video.probe``);
- it carries an audio stream, unless the caller allows silent videos (the benchmark is audio
  driven; ``score --allow-silent``);
- its frame rate lies in ``[MIN_FPS, MAX_FPS]`` = [10, 60] fps: the generation methods write 16,
  24 or 25 fps (spec/baselines.md §1b), camera footage 24-60 fps. Below 10 fps a blink (100-300 ms)
  falls between frames; above 60 fps no method of the benchmark writes video, and the per-frame
  motion sums of Interactivity grow with the frame rate (a 1000 fps file scored 118.98);
- it has at least 2 frames;
- its duration is at most one frame longer and at most four frames shorter than the clip's (plus
  1 ms for millisecond time bases). The adapter contract (baselines/base.py) writes round(fps * T)
  frames, within half a frame of T; AnyTalker itself writes the largest 4n+1 <= ceil(24 T) frames
  (spec/baselines.md §1b), up to 3 frames fewer plus the ceiling's fraction, i.e. less than 4 frames
  short: the released ground-truth video of clip 11 has 205 frames, 8.542 s for 8.597 s (1.3
  frames short). A longer video would count time past the clip's end as listening for everybody
  (a 60 s file for an 8.6 s clip scored 2.34), a much shorter one scores only part of the clip;
- with ``decode=True`` every frame is decoded, so corruption in the middle of the stream (which
  demuxing alone does not see) is caught.

``plan_inputs`` matches the files of a folder to the manifest's clips; two files whose names
differ only in case (``x.mp4``, ``x.MP4``) are an error naming both, never a silent choice.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIN_FPS, MAX_FPS = 10.0, 60.0
MAX_FRAMES_LONGER, MAX_FRAMES_SHORTER = 1, 4
TIMEBASE_SLACK_S = 1e-3
VIDEO_EXTENSIONS = (".mp4",)
IGNORED_FILES = {"run.json"}


@dataclass
class ClipCheck:
    """Result of ``check_video``: the probe (None if the file could not be opened) and problems."""

    path: Path
    info: Any = None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (level "error"|"warning", message)
    n_decoded: int | None = None

    @property
    def errors(self) -> list[str]:
        return [m for lv, m in self.problems if lv == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def reason(self) -> str | None:
        """One line naming the file, or None when the clip may be scored."""
        return f"{self.path}: {'; '.join(self.errors)}" if self.errors else None


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be read (permission denied, I/O error ...), or None."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        return f"cannot read the file ({exc.strerror or one_line(exc)})"
    return None


def duration_problem(duration: float, clip_duration: float, fps: float) -> str | None:
    """Why ``duration`` (s, at ``fps``) does not fit a clip of ``clip_duration`` s, or None."""
    diff = duration - clip_duration
    longer, shorter = MAX_FRAMES_LONGER / fps + TIMEBASE_SLACK_S, MAX_FRAMES_SHORTER / fps + TIMEBASE_SLACK_S
    if -shorter <= diff <= longer:  # False for NaN as well
        return None
    off = f"{abs(diff) * fps:.2f} frames {'longer' if diff > 0 else 'shorter'}" if diff == diff else "not a number"
    return (f"duration {duration:.3f} s vs the clip's {clip_duration:.3f} s: {off} (allowed: {MAX_FRAMES_LONGER} "
            f"frame longer, {MAX_FRAMES_SHORTER} shorter, at {fps:.3g} fps)")


def check_info(info, clip, *, require_audio: bool = True) -> list[tuple[str, str]]:
    """The checks that need only the probe (no decoding)."""
    problems: list[tuple[str, str]] = []
    if require_audio and not info.has_audio:
        problems.append(("error", "no audio stream (a generated talking video must carry its audio; "
                                  "score --allow-silent scores it anyway)"))
    fps_ok = MIN_FPS <= info.fps <= MAX_FPS
    if not fps_ok:
        problems.append(("error", f"frame rate {info.fps:.3f} fps outside the supported [{MIN_FPS:g}, {MAX_FPS:g}]"))
    if info.n_frames < 2:
        problems.append(("error", f"only {info.n_frames} frame(s); at least 2 are needed"))
    if fps_ok:
        problem = duration_problem(info.duration, clip.duration, info.fps)
        if problem:
            problems.append(("error", problem))
    return problems


def decode_problem(path: str | os.PathLike) -> tuple[int, str | None]:
    """Decode every frame: (frames decoded, None) or (frames decoded before the error, reason)."""
    from interactive_eyes.media.errors import MediaError
    from interactive_eyes.media.video import iter_frames

    n = 0
    try:
        for _ in iter_frames(path):
            n += 1
    except MediaError as exc:
        return n, exc.reason
    return n, None


def check_video(path: str | os.PathLike, clip, *, require_audio: bool = True, decode: bool = False,
                info=None) -> ClipCheck:
    """Every per-clip check on one file; never raises for a bad file."""
    from interactive_eyes.media.errors import MediaError
    from interactive_eyes.media.video import probe

    result = ClipCheck(Path(path))
    problem = read_problem(path)
    if problem:
        result.problems.append(("error", problem))
        return result
    if info is None:
        try:
            info = probe(path)
        except MediaError as exc:
            result.problems.append(("error", exc.reason))
            return result
        except OSError as exc:  # e.g. permissions changed between the read check and the probe
            result.problems.append(("error", f"cannot read the file ({exc.strerror or one_line(exc)})"))
            return result
    result.info = info
    result.problems += check_info(info, clip, require_audio=require_audio)
    if decode:
        result.n_decoded, problem = decode_problem(path)
        if problem:
            result.problems.append(("error", problem))
    return result


def require_device(device: str) -> None:
    """``cuda``/``cuda:N`` must exist here: never a silent CPU run recorded as cuda."""
    from interactive_eyes.app.errors import DeviceUnavailable

    if not str(device).startswith("cuda"):
        return
    try:
        import torch
    except ImportError:
        raise DeviceUnavailable(f"--device {device}: torch is not installed") from None
    if not torch.cuda.is_available():
        raise DeviceUnavailable(f"--device {device}: no CUDA device is available here "
                                f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); use --device cpu")
    _, _, index = str(device).partition(":")
    if index:
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise DeviceUnavailable(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")


# --------------------------------------------------------------------------- folder -> clips


@dataclass
class ClipPlan:
    clip: Any
    video: Path | None
    video_sha256: str | None = None
    todo: list[str] = field(default_factory=list)  # metric names still to compute
    problem: str | None = None  # missing file, ambiguous names, failed check
    info: Any = None  # the probe of a file that passed its checks


def plan_inputs(generated_dir: Path, benchmark, clip_ids: list[str]) -> tuple[dict[str, ClipPlan], list[dict]]:
    """Match ``<clip_id>.mp4`` files to the manifest; list missing, ambiguous, extra and misnamed files."""
    generated_dir = Path(generated_dir)
    entries = sorted(generated_dir.iterdir())
    videos: dict[str, list[Path]] = {}  # clip id -> candidate files (extension in any case)
    for p in entries:
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            videos.setdefault(p.stem, []).append(p)
    # names that differ only in case (x.mp4 / X.mp4 / x.MP4) on a case-sensitive file system
    by_folded: dict[str, list[Path]] = {}
    for p in entries:
        if p.is_file():
            by_folded.setdefault(p.name.lower(), []).append(p)
    plans = {}
    for cid in clip_ids:
        clip = benchmark.clip(cid)
        same = by_folded.get(f"{cid}.mp4".lower(), [])
        if len(same) > 1:
            names = " and ".join(p.name for p in same)
            plans[cid] = ClipPlan(clip=clip, video=None,
                                  problem=f"{generated_dir}: {names} differ only in case; keep one of them")
            continue
        cand = videos.get(cid, [])
        p = cand[0] if cand else None
        plans[cid] = ClipPlan(clip=clip, video=p, problem=None if p else f"{generated_dir / (cid + '.mp4')}: missing file")
    extras = []
    for p in entries:
        if p.is_dir() or p.name in IGNORED_FILES or p.name.startswith("."):
            continue
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.stem in benchmark.clip_ids:
            continue
        close = difflib.get_close_matches(p.stem, benchmark.clip_ids, n=1, cutoff=0.8)
        extras.append({"file": p.name, "did_you_mean": f"{close[0]}.mp4" if close else None})
    return plans, extras
