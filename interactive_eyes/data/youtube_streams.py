"""Reading the YouTube sources: yt-dlp resolves a video id to stream URLs (nothing else is
downloaded), PyAV seeks and decodes the audio and video ranges a clip needs, over HTTP or from
local files. Used by ``youtube.py``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from interactive_eyes.data.fetch_items import FetchError, MissingExtraError

# YouTube: 480p at most. The release's own reference frame of clip 11 is 852x480
# (shared anytalker_examples/images/2p-0.png), i.e. the release worked from 480p sources.
YOUTUBE_FORMAT = "bestvideo[height<=480]+bestaudio/best[height<=480]/best"

@dataclass(frozen=True)
class SourceStreams:
    """Where PyAV can read one source video: stream URLs (or local files) and HTTP headers."""

    video: str
    audio: str
    headers: dict[str, str] = field(default_factory=dict)


Resolver = Callable[[str], SourceStreams]


def import_yt_dlp():
    try:
        import yt_dlp
    except ImportError:
        raise MissingExtraError(
            "--frames/--videos need yt-dlp, which is not installed: pip install 'ie-bench[youtube]'"
        ) from None
    return yt_dlp


def resolve_youtube(youtube_id: str) -> SourceStreams:
    """Ask yt-dlp for the stream URLs of a YouTube video (no download); PyAV reads them."""
    yt_dlp = import_yt_dlp()
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
