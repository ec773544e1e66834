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
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from interactive_eyes.data.fetch_items import FetchError, FetchItem, MissingExtraError
from interactive_eyes.data.manifest import Benchmark, Clip
from interactive_eyes.data.release import RELEASED_VIDEO_SHA256
from interactive_eyes.data.verify import select_clips

# YouTube: 480p at most. The release's own reference frame of clip 11 is 852x480
# (shared anytalker_examples/images/2p-0.png), i.e. the release worked from 480p sources.
YOUTUBE_FORMAT = "bestvideo[height<=480]+bestaudio/best[height<=480]/best"
# Search window for the clip start around the reference time: the release gives whole seconds,
# so the true start lies within a second of it; two leave room for rounding either way.
ALIGN_MARGIN = 2.0
# Alignment runs at 16 kHz (62.5 us lags: far finer than a video frame).
ALIGN_RATE = 16000
# Audio muxed into the ground-truth clips: the source's own, at 48 kHz (AAC, ``write_video``).
OUTPUT_AUDIO_RATE = 48000


@dataclass(frozen=True)
class SourceStreams:
    """Where PyAV can read one source video: stream URLs (or local files) and HTTP headers."""

    video: str
    audio: str
    headers: dict[str, str] = field(default_factory=dict)


Resolver = Callable[[str], SourceStreams]


def _import_yt_dlp():
    try:
        import yt_dlp
    except ImportError:
        raise MissingExtraError(
            "--frames/--videos need yt-dlp, which is not installed: pip install 'ie-bench[youtube]'"
        ) from None
    return yt_dlp


def resolve_youtube(youtube_id: str) -> SourceStreams:
    """Ask yt-dlp for the stream URLs of a YouTube video (no download); PyAV reads them."""
    yt_dlp = _import_yt_dlp()
    url = f"https://www.youtube.com/watch?v={youtube_id}"
    opts = {"quiet": True, "no_warnings": True, "skip_download": True, "format": YOUTUBE_FORMAT, "noplaylist": True}
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(url, download=False)
    except Exception as exc:  # yt_dlp.utils.DownloadError / ExtractorError and network errors
        raise FetchError(f"{url}: yt-dlp could not resolve the video ({' '.join(str(exc).split())})") from None
    formats = info.get("requested_formats") or [info]
    video = next((f for f in formats if f.get("vcodec") not in (None, "none")), None)
    audio = next((f for f in formats if f.get("acodec") not in (None, "none")), None)
    if video is None or audio is None or not video.get("url") or not audio.get("url"):
        raise FetchError(f"{url}: yt-dlp found no {'video' if video is None else 'audio'} stream")
    headers = dict(video.get("http_headers") or info.get("http_headers") or {})
    return SourceStreams(video=video["url"], audio=audio["url"], headers=headers)


def _open(src: str, headers: dict[str, str] | None):
    import av

    options = {}
    if headers and "://" in src:
        options["headers"] = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    try:
        return av.open(src, options=options, timeout=60.0)
    except av.error.FFmpegError as exc:
        raise FetchError(f"{_short(src)}: cannot open ({exc.__class__.__name__}: {exc})") from None


def _short(src: str) -> str:
    return src if len(src) <= 120 else src[:117] + "..."


def _seek(container, stream, t: float) -> None:
    """Seek to the last keyframe at or before ``t`` (source time, seconds)."""
    if t > 0:
        container.seek(int(t / stream.time_base), stream=stream, backward=True, any_frame=False)


def decode_audio_range(src: str, start: float, end: float, sample_rate: int, *, mono: bool = True,
                       headers: dict[str, str] | None = None) -> np.ndarray:
    """Source audio over times ``[start, end)`` at ``sample_rate`` (float32; (n,) or (n, channels)).

    Decodes native-rate frames from a keyframe before ``start``, places them on the stream's
    timeline by their presentation times, and resamples with ``scipy.signal.resample_poly``
    (zero-phase, so sample ``i`` is at time ``start + i / sample_rate`` exactly). Parts of the
    range that the stream does not cover (before its first or after its last sample) are zeros.
    """
    import av
    from scipy.signal import resample_poly

    with _open(src, headers) as container:
        if not container.streams.audio:
            raise FetchError(f"{_short(src)}: no audio stream")
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate or stream.rate)
        _seek(container, stream, start - 1.0)
        chunks: list[np.ndarray] = []
        t_first = None
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if t_first is None:
                    t_first = float(frame.time)
                if frame.time >= end:
                    break
                raw = frame.to_ndarray()
                a = raw.T if frame.format.is_planar else raw.reshape(-1, len(frame.layout.channels))
                a = a.astype(np.float32)
                if np.issubdtype(raw.dtype, np.integer):  # s16/s32 -> [-1, 1)
                    a /= float(np.iinfo(raw.dtype).max) + 1.0
                chunks.append(a)
        except av.error.FFmpegError as exc:
            raise FetchError(f"{_short(src)}: audio decoding failed ({exc})") from None
    if not chunks or t_first is None:
        raise FetchError(f"{_short(src)}: no audio between {start:.3f} s and {end:.3f} s")
    native = np.concatenate(chunks, axis=0)
    if mono:
        native = native.mean(axis=1, keepdims=True)
    g = math.gcd(rate, sample_rate)
    resampled = resample_poly(native, sample_rate // g, rate // g, axis=0).astype(np.float32)
    n = int(round((end - start) * sample_rate))
    out = np.zeros((n, resampled.shape[1]), dtype=np.float32)
    first = int(round((t_first - start) * sample_rate))  # index in `out` of resampled[0]
    lo, hi = max(first, 0), min(first + len(resampled), n)
    if hi > lo:
        out[lo:hi] = resampled[lo - first : hi - first]
    return out[:, 0] if mono else out


def iter_video_range(src: str, start: float, n_frames: int, *, headers: dict[str, str] | None = None):
    """Yield ``(fps, time, rgb)`` for ``n_frames`` frames from the first at time >= ``start``.

    A frame counts as at ``start`` if it lies within half a frame of it (timestamps are rounded
    to the stream's time base).
    """
    import av

    with _open(src, headers) as container:
        if not container.streams.video:
            raise FetchError(f"{_short(src)}: no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if fps <= 0:
            raise FetchError(f"{_short(src)}: unknown frame rate")
        _seek(container, stream, start)
        got = 0
        try:
            for frame in container.decode(stream):
                if frame.time is None or frame.time < start - 0.5 / fps:
                    continue
                yield fps, float(frame.time), frame.to_ndarray(format="rgb24")
                got += 1
                if got >= n_frames:
                    return
        except av.error.FFmpegError as exc:
            raise FetchError(f"{_short(src)}: video decoding failed after {got} frames ({exc})") from None
        if got < n_frames:
            raise FetchError(f"{_short(src)}: only {got} of {n_frames} frames after {start:.3f} s")


def source_fps(src: str, headers: dict[str, str] | None = None) -> float:
    with _open(src, headers) as container:
        if not container.streams.video:
            raise FetchError(f"{_short(src)}: no video stream")
        s = container.streams.video[0]
        rate = s.average_rate or s.guessed_rate or s.base_rate
        return float(rate) if rate else 0.0


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
        _import_yt_dlp()  # fail before any work, with the install hint
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
