"""Streaming video IO on PyAV: probe, frame iteration with exact timestamps, H.264+AAC writing.

Frames are decoded one at a time (``iter_frames``); nothing holds a whole video in memory
unless ``read_frames`` is asked for explicitly. Timestamps come from each frame's own
presentation time (``frame.time``), so variable-frame-rate files get their true times rather
than ``index / fps``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from interactive_eyes.media.errors import MediaError


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` learns from a container without decoding every frame."""

    path: str
    width: int
    height: int
    fps: float  # average frame rate (container / stream average_rate)
    n_frames: int  # counted by demuxing packets when the header does not say
    duration: float  # seconds, from the video stream
    has_audio: bool
    audio_rate: int | None
    audio_duration: float | None
    codec: str


@dataclass
class Frame:
    """One decoded frame: its index in decode order, its presentation time (s), RGB pixels."""

    index: int
    time: float
    rgb: np.ndarray  # H x W x 3, uint8


def _open(path: str | os.PathLike):
    import av

    p = Path(path)
    if not p.exists():
        raise MediaError(p, "file not found")
    if p.stat().st_size == 0:
        raise MediaError(p, "file is empty (0 bytes)")
    try:
        return av.open(str(p))
    except av.error.FFmpegError as exc:  # InvalidDataError, etc.
        raise MediaError(p, f"not a readable media file ({exc.__class__.__name__}: {exc})") from None


def _video_stream(container, path):
    if not container.streams.video:
        raise MediaError(path, "no video stream")
    return container.streams.video[0]


def _stream_seconds(stream, value) -> float | None:
    if value is None or stream.time_base is None:
        return None
    return float(value * stream.time_base)


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate, frame count and durations of a video file.

    The frame count is taken by demuxing the packets of the video stream (cheap: no decoding),
    because many containers carry no or a wrong ``nb_frames``.
    """
    import av

    with _open(path) as container:
        vs = _video_stream(container, path)
        ctx = vs.codec_context
        rate = vs.average_rate or vs.base_rate or vs.guessed_rate
        fps = float(rate) if rate else 0.0
        n = 0
        first_pts = None
        last_end = None
        try:
            for packet in container.demux(vs):
                if packet.size == 0 or packet.pts is None:
                    continue
                n += 1
                t0 = float(packet.pts * vs.time_base)
                t1 = t0 + float((packet.duration or 0) * vs.time_base)
                first_pts = t0 if first_pts is None else min(first_pts, t0)
                last_end = t1 if last_end is None else max(last_end, t1)
        except av.error.FFmpegError as exc:
            raise MediaError(path, f"cannot demux video ({exc})") from None
        if n == 0:
            raise MediaError(path, "video stream has no frames")
        duration = _stream_seconds(vs, vs.duration)
        if duration is None and last_end is not None:
            duration = last_end - (first_pts or 0.0)
        if not duration:
            duration = n / fps if fps else 0.0
        audio_rate = audio_duration = None
        has_audio = bool(container.streams.audio)
        if has_audio:
            a = container.streams.audio[0]
            audio_rate = a.codec_context.sample_rate or a.rate
            audio_duration = _stream_seconds(a, a.duration)
        return VideoInfo(
            path=str(path),
            width=int(ctx.width),
            height=int(ctx.height),
            fps=fps,
            n_frames=n,
            duration=float(duration),
            has_audio=has_audio,
            audio_rate=audio_rate,
            audio_duration=audio_duration,
            codec=ctx.name,
        )


def iter_frames(path: str | os.PathLike, *, max_side: int | None = None) -> Iterator[Frame]:
    """Decode the first video stream frame by frame as RGB uint8.

    ``max_side``: if set, frames larger than this on their longer side are scaled down (by
    FFmpeg's swscale, area filter) while decoding, so a 4K video can be processed in bounded
    memory. The time of each frame is its presentation time relative to the stream start.

    Raises ``MediaError`` (one line, naming the file) for unreadable or truncated files; a
    file that ends early yields the frames that could be decoded and then raises.
    """
    import av

    with _open(path) as container:
        vs = _video_stream(container, path)
        vs.thread_type = "AUTO"
        start = _stream_seconds(vs, vs.start_time) or 0.0
        index = 0
        try:
            for frame in container.decode(vs):
                if max_side and max(frame.width, frame.height) > max_side:
                    scale = max_side / max(frame.width, frame.height)
                    # even sizes keep yuv420p conversions exact
                    w = max(2, int(round(frame.width * scale / 2)) * 2)
                    h = max(2, int(round(frame.height * scale / 2)) * 2)
                    rgb = frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")
                else:
                    rgb = frame.to_ndarray(format="rgb24")
                t = frame.time
                t = (index / float(vs.average_rate)) if t is None and vs.average_rate else t
                yield Frame(index=index, time=float(t) - start if t is not None else float(index), rgb=rgb)
                index += 1
        except av.error.FFmpegError as exc:
            raise MediaError(path, f"decoding failed after {index} frames ({exc})") from None
        if index == 0:
            raise MediaError(path, "no decodable video frames")


def read_frames(path: str | os.PathLike, *, max_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All frames at once, as (T x H x W x 3 uint8, T times). Only for short clips and tests."""
    frames, times = [], []
    for f in iter_frames(path, max_side=max_side):
        frames.append(f.rgb)
        times.append(f.time)
    return np.stack(frames), np.asarray(times, dtype=np.float64)


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    audio: np.ndarray | None = None,
    audio_rate: int = 16000,
    crf: int = 18,
    audio_bitrate: int = 192_000,
) -> Path:
    """Write RGB uint8 frames as H.264 (yuv420p) MP4, with mono/stereo audio muxed as AAC.

    ``audio``: float32 in [-1, 1] or int16, shape (n,) or (n, channels). Odd frame sizes are
    padded by one pixel (yuv420p needs even sizes). The file is written to a temporary name and
    renamed, so a crash never leaves a half-written ``path``.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    rate = Fraction(fps).limit_denominator(1001)
    try:
        with av.open(str(tmp), mode="w", format="mp4") as out:
            vs = out.add_stream("libx264", rate=rate)
            vs.pix_fmt = "yuv420p"
            vs.options = {"crf": str(crf), "preset": "medium"}
            vs.codec_context.time_base = 1 / rate
            astream = None
            if audio is not None:
                astream = out.add_stream("aac", rate=audio_rate)
                astream.bit_rate = audio_bitrate
                ch = 1 if audio.ndim == 1 else audio.shape[1]
                astream.layout = "mono" if ch == 1 else "stereo"
            n = 0
            for rgb in frames:
                rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
                if n == 0:
                    h, w = rgb.shape[:2]
                    vs.width, vs.height = w + (w % 2), h + (h % 2)
                if rgb.shape[0] % 2 or rgb.shape[1] % 2:
                    rgb = np.pad(rgb, ((0, rgb.shape[0] % 2), (0, rgb.shape[1] % 2), (0, 0)), mode="edge")
                vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                vf.pts = n
                for packet in vs.encode(vf):
                    out.mux(packet)
                n += 1
            if n == 0:
                raise ValueError(f"{path}: no frames to write")
            for packet in vs.encode():
                out.mux(packet)
            if astream is not None:
                _encode_audio(out, astream, audio, audio_rate)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _encode_audio(out, astream, audio: np.ndarray, rate: int) -> None:
    import av

    a = np.asarray(audio)
    if a.dtype == np.int16:
        a = a.astype(np.float32) / 32768.0
    a = a.astype(np.float32)
    if a.ndim == 1:
        a = a[:, None]
    planar = np.ascontiguousarray(a.T)  # channels x samples, 'fltp'
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    chunk = 1024
    pts = 0
    for i in range(0, planar.shape[1], chunk):
        part = np.ascontiguousarray(planar[:, i : i + chunk])
        af = av.AudioFrame.from_ndarray(part, format="fltp", layout=layout)
        af.sample_rate = rate
        af.pts = pts
        pts += part.shape[1]
        for packet in astream.encode(af):
            out.mux(packet)
    for packet in astream.encode():
        out.mux(packet)


def iter_frames_prefetch(path: str | os.PathLike, *, depth: int = 8, max_side: int | None = None) -> Iterator[Frame]:
    """``iter_frames`` decoded one step ahead in a background thread (FFmpeg releases the GIL).

    On a machine with a spare core this hides decoding behind the per-frame work of the caller
    (face tracks and metrics). At most ``depth`` frames wait in the queue, so memory stays
    bounded; an error in the decoder is raised in the caller at the frame where it happened.
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    end = object()

    def produce():
        try:
            for frame in iter_frames(path, max_side=max_side):
                while not stop.is_set():
                    try:
                        q.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item = end
        except BaseException as exc:  # handed to the consumer
            item = exc
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    worker = threading.Thread(target=produce, name="ie-bench-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
