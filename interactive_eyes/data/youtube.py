"""Reference frames and ground-truth clips from the YouTube sources (``ie-bench data fetch --frames/--videos``).

Needs the optional extra ``youtube`` (yt-dlp): yt-dlp only resolves a video id to stream URLs;
PyAV reads the streams (seeking over HTTP, nothing else is downloaded). ``--frames``: each
clip's reference frame, the first frame at the release's reference time, as
``frames/<clip>.png``. ``--videos``: the ground-truth clip as ``<clip>.mp4`` (the manifest's
``video`` field), aligned to the released audio: the source's audio around the reference time is
cross-correlated with the sum of the clip's released tracks (``interactive_eyes.data.align``),
and the clip is cut where they match; the offset found is recorded in ``<clip>.align.json``. A
clip whose audio has no clear correlation peak is refused. Every file written stays inside the
data root (``paths.write_target``: a symlink out of the root is refused, one line per file).

Resolving and decoding the source streams is in ``youtube_streams.py`` (names re-exported here).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from interactive_eyes.data.fetch_items import FetchError, FetchItem
from interactive_eyes.data.manifest import Benchmark, Clip
from interactive_eyes.data.release import RELEASED_VIDEO_SHA256
from interactive_eyes.data.select import select_clips
from interactive_eyes.data.youtube_streams import (  # noqa: F401  (re-exported for fetch.py and tests)
    YOUTUBE_FORMAT,
    Resolver,
    SourceStreams,
    import_yt_dlp,
    decode_audio_range,
    iter_video_range,
    resolve_youtube,
    source_fps,
)

# Search window for the clip start around the reference time: the release gives whole seconds,
# so the true start lies within a second of it; two leave room for rounding either way.
ALIGN_MARGIN = 2.0
# Alignment runs at 16 kHz (62.5 us lags: far finer than a video frame).
ALIGN_RATE = 16000
# Audio muxed into the ground-truth clips: the source's own, at 48 kHz (AAC, ``write_video``).
OUTPUT_AUDIO_RATE = 48000


def reference_frame_path(root: str | os.PathLike, clip_id: str) -> Path:
    """Where ``--frames`` puts a clip's reference frame: ``<root>/frames/<clip>.png``.

    ``PathEscapeError`` when writing there would leave the root (a symlinked ``frames/``).
    """
    from interactive_eyes.data.paths import write_target

    return write_target(root, f"frames/{clip_id}.png", "reference frame")


def video_path(root: str | os.PathLike, clip: Clip) -> Path:
    """Where ``--videos`` puts a clip's ground truth: ``<root>/<clip.video>``, kept inside the root."""
    from interactive_eyes.data.paths import write_target

    return write_target(root, clip.video, "video")


def alignment_path(root: str | os.PathLike, clip: Clip) -> Path:
    """The record of a ground-truth clip's alignment, next to it: ``<clip>.align.json``."""
    from interactive_eyes.data.paths import write_target

    return write_target(root, str(Path(clip.video).with_suffix("")) + ".align.json", "alignment record")


def extract_reference_frame(streams: SourceStreams, time: float, dest: str | os.PathLike) -> Path:
    """The first frame at the reference time (as the release's script takes it), as PNG, atomically."""
    from PIL import Image

    _, _, rgb = next(iter_video_range(streams.video, time, 1, headers=streams.headers))
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    try:
        Image.fromarray(rgb).save(tmp, format="PNG")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def released_mix(root: str | os.PathLike, clip: Clip, sample_rate: int = ALIGN_RATE) -> np.ndarray:
    """The sum of a clip's released tracks (mono, ``sample_rate``): the dialogue as the source has it."""
    from interactive_eyes.data.paths import find_audio
    from interactive_eyes.media.audio import load_audio

    tracks = [load_audio(find_audio(root, p.audio), sample_rate) for p in clip.people]
    n = max(len(t) for t in tracks)
    mix = np.zeros(n, dtype=np.float32)
    for t in tracks:
        mix[: len(t)] += t
    return mix


def extract_ground_truth(streams: SourceStreams, clip: Clip, root: str | os.PathLike, t0: float, *,
                         margin: float = ALIGN_MARGIN) -> dict:
    """Cut the ground-truth clip from the source, aligned to the released audio; returns the record.

    The source audio over ``[t0 - margin, t0 + duration + margin]`` is searched for the sum of the
    clip's released tracks (``align.find_offset``: refused without a clear peak). The clip is
    the ``floor(duration * fps)`` source frames from the matched start (frames wholly covered by
    the released audio), muxed with the source's audio from the same start (H.264 + AAC).
    """
    from interactive_eyes.data.align import find_offset
    from interactive_eyes.media.video import write_video

    root = Path(root)
    dest = video_path(root, clip)  # both targets checked before any work (PathEscapeError)
    record_path = alignment_path(root, clip)
    template = released_mix(root, clip)
    window_start = max(0.0, t0 - margin)
    window_end = t0 + clip.duration + margin
    signal = decode_audio_range(streams.audio, window_start, window_end, ALIGN_RATE, headers=streams.headers)
    from interactive_eyes.data.align import AlignmentError

    try:
        found = find_offset(signal, template, ALIGN_RATE)
    except AlignmentError as exc:
        raise FetchError(f"{clip.id}: {exc} (searched {window_start:.2f}-{window_end:.2f} s of the source)") from None
    except ValueError as exc:
        raise FetchError(f"{clip.id}: {exc}") from None
    start = window_start + found.offset
    fps = source_fps(streams.video, streams.headers)
    n_frames = int(math.floor(clip.duration * fps + 1e-6))
    audio = decode_audio_range(streams.audio, start, start + n_frames / fps, OUTPUT_AUDIO_RATE, mono=False,
                               headers=streams.headers)
    times: list[float] = []

    def frames():
        for _, t, rgb in iter_video_range(streams.video, start, n_frames, headers=streams.headers):
            times.append(t)
            yield rgb

    write_video(dest, frames(), fps, audio=audio, audio_rate=OUTPUT_AUDIO_RATE)
    record = {
        "clip": clip.id,
        "video": clip.video,
        "reference_time": t0,
        "start": round(start, 6),  # source time of the clip's first audio sample
        "offset": round(start - t0, 6),  # start - reference time: what the alignment found
        "first_frame_time": round(times[0], 6) if times else None,
        "fps": fps,
        "n_frames": n_frames,
        "correlation_peak": round(found.peak, 4),
        "correlation_clarity": round(found.clarity, 3) if math.isfinite(found.clarity) else None,
        "align_rate": ALIGN_RATE,
    }
    _write_json_atomic(record_path, record)
    return record


def _write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(obj, indent=1) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _targets(root: Path, clip: Clip, frames: bool, videos: bool) -> tuple[list[tuple[str, Path]], list[FetchItem]]:
    """The files ``fetch_youtube`` would write for one clip, and a failed item for each that would
    leave the root (``PathEscapeError``: nothing is written for it; the other files go on)."""
    from interactive_eyes.data.paths import PathEscapeError

    wants, refused = [], []
    for kind, wanted in (("frame", frames), ("video", videos and bool(clip.video))):
        if not wanted:
            continue
        try:
            if kind == "frame":
                wants.append((kind, reference_frame_path(root, clip.id)))
            else:
                alignment_path(root, clip)  # its record is written next to it
                wants.append((kind, video_path(root, clip)))
        except PathEscapeError as exc:
            refused.append(FetchItem(f"{clip.id} {kind}", str(root), "failed", str(exc)))
    return wants, refused


def fetch_youtube(
    root: str | os.PathLike,
    benchmark: Benchmark,
    *,
    clips: Sequence[str] | None = None,
    frames: bool = True,
    videos: bool = False,
    resolver: Resolver | None = None,
    overwrite: bool = False,
) -> list[FetchItem]:
    """Reference frames and/or aligned ground-truth clips for every clip with a YouTube source.

    Needs the released audio under ``root`` for ``videos``. A clip without a source in the
    release (interact_10) is ``skipped`` with the reason, and so is a clip whose ground-truth
    video is itself released (interact_11: it comes with the release files, checked by sha256).
    Existing outputs are kept unless ``overwrite``.
    """
    import av

    from interactive_eyes.data.paths import PathEscapeError
    from interactive_eyes.media.errors import MediaError

    resolver = resolver or resolve_youtube
    if resolver is resolve_youtube:
        import_yt_dlp()  # fail before any work, with the install hint
    root = Path(root)
    items: list[FetchItem] = []
    for clip in select_clips(benchmark, clips):
        yt, t0 = clip.reference.get("youtube_id"), clip.reference.get("time")
        wants, refused = _targets(root, clip, frames, videos)
        items += refused
        if not wants:
            continue
        if not yt or t0 is None:
            why = clip.reference.get("note") or "no YouTube source in the manifest"
            items += [FetchItem(f"{clip.id} {k}", str(p), "skipped", why) for k, p in wants]
            continue
        todo = []
        for kind, path in wants:
            if kind == "video" and clip.video in RELEASED_VIDEO_SHA256:
                # the real video is part of the release (fetched and sha256-checked with it): never
                # replace it by, or mistake it for, a clip cut from YouTube
                items.append(FetchItem(f"{clip.id} video", str(path), "skipped",
                                       "the release ships this ground-truth video; it is fetched with the release files",
                                       yt))
            elif path.is_file() and not overwrite:
                items.append(FetchItem(f"{clip.id} {kind}", str(path), "present", "already present", yt))
            else:
                todo.append((kind, path))
        if not todo:
            continue
        try:
            streams = resolver(yt)
        except FetchError as exc:
            items += [FetchItem(f"{clip.id} {k}", str(p), "failed", str(exc), yt) for k, p in todo]
            continue
        for kind, path in todo:
            try:
                if kind == "frame":
                    extract_reference_frame(streams, float(t0), path)
                    items.append(FetchItem(f"{clip.id} frame", str(path), "downloaded", source=yt))
                else:
                    rec = extract_ground_truth(streams, clip, root, float(t0))
                    items.append(FetchItem(f"{clip.id} video", str(path), "downloaded",
                                           f"aligned: offset {rec['offset']:+.3f} s, peak {rec['correlation_peak']}",
                                           yt))
            except (FetchError, MediaError, FileNotFoundError, PathEscapeError) as exc:  # their messages name the file
                items.append(FetchItem(f"{clip.id} {kind}", str(path), "failed", str(exc), yt))
            except (OSError, ValueError, av.error.FFmpegError) as exc:
                reason = f"{clip.id}: {kind} to {path}: {exc.__class__.__name__}: {' '.join(str(exc).split())}"
                items.append(FetchItem(f"{clip.id} {kind}", str(path), "failed", reason, yt))
    return items
