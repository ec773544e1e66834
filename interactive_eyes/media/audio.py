"""Audio decoding on PyAV: any container to mono (or native-channel) samples at a requested rate.

Resampling uses FFmpeg's swresample through ``av.AudioResampler`` (a windowed-sinc resampler),
not a naive interpolation. ``pcm_sha256`` hashes the decoded int16 samples, so the released
WAV files and lossless FLAC copies of them hash the same.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from interactive_eyes.media.errors import MediaError
from interactive_eyes.media.video import _open


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    channels: int
    duration: float  # seconds, counted from decoded samples


def _audio_stream(container, path):
    if not container.streams.audio:
        raise MediaError(path, "no audio stream")
    return container.streams.audio[0]


def load_audio(
    path: str | os.PathLike,
    sample_rate: int | None = 16000,
    *,
    mono: bool = True,
    dtype: str = "float32",
) -> np.ndarray:
    """Decode the first audio stream.

    Returns shape (n,) when ``mono`` else (n, channels). ``sample_rate=None`` keeps the native
    rate. ``dtype``: ``"float32"`` (in [-1, 1]) or ``"int16"`` (full int16 scale, as SyncNet's
    MFCC expects). Mono is the plain mean of the channels.
    """
    import av

    if dtype not in ("float32", "int16"):
        raise ValueError(f"dtype must be 'float32' or 'int16', not {dtype!r}")
    with _open(path) as container:
        stream = _audio_stream(container, path)
        native_rate = stream.codec_context.sample_rate or stream.rate
        rate = int(sample_rate or native_rate)
        # Resample in float keeping every channel; the downmix is done below as a plain channel
        # mean. (Letting swresample downmix would scale stereo->mono by 0.707 per channel for
        # float output but by 0.5 for int16 output: the two dtypes would disagree.)
        resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout.name, rate=rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                frame.pts = None  # let the resampler keep its own timeline
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except av.error.FFmpegError as exc:
            raise MediaError(path, f"audio decoding failed ({exc})") from None
    if not chunks:
        raise MediaError(path, "audio stream has no samples")
    data = np.concatenate(chunks, axis=1)  # channels x samples, float32 in [-1, 1]
    data = data.mean(axis=0) if mono else np.ascontiguousarray(data.T)
    if dtype == "int16":
        # full int16 scale, as `ffmpeg -ac 1 -f s16le` gives (SyncNet's MFCC depends on it)
        return np.clip(np.round(data * 32768.0), -32768, 32767).astype(np.int16)
    return data.astype(np.float32, copy=False)


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Native rate, channel count and exact duration (by decoding) of an audio file."""
    with _open(path) as container:
        stream = _audio_stream(container, path)
        rate = stream.codec_context.sample_rate or stream.rate
        channels = stream.codec_context.channels
        n = 0
        try:
            for frame in container.decode(stream):
                n += frame.samples
        except Exception as exc:  # av.error.FFmpegError
            raise MediaError(path, f"audio decoding failed ({exc})") from None
    if not rate or n == 0:
        raise MediaError(path, "audio stream has no samples")
    return AudioInfo(path=str(path), sample_rate=int(rate), channels=int(channels), duration=n / float(rate))


def pcm_sha256(path: str | os.PathLike) -> tuple[str, AudioInfo]:
    """sha256 of the decoded native-rate int16 interleaved samples, plus the stream facts.

    Format independent: a WAV file and its lossless FLAC copy give the same digest. Only
    int16-exact sources (PCM16 WAV, 16-bit FLAC) are hashed exactly; no resampling happens.
    """
    import av

    digest = hashlib.sha256()
    with _open(path) as container:
        stream = _audio_stream(container, path)
        rate = stream.codec_context.sample_rate or stream.rate
        channels = stream.codec_context.channels
        n = 0
        try:
            for frame in container.decode(stream):
                arr = frame.to_ndarray()
                fmt = frame.format.name
                if fmt in ("s16p",):
                    arr = arr.T  # planar -> interleaved
                elif fmt != "s16":
                    raise MediaError(path, f"audio is {fmt}, not 16-bit PCM: PCM hash undefined")
                digest.update(np.ascontiguousarray(arr, dtype="<i2").tobytes())
                n += frame.samples
        except av.error.FFmpegError as exc:
            raise MediaError(path, f"audio decoding failed ({exc})") from None
    if not rate or n == 0:
        raise MediaError(path, "audio stream has no samples")
    return digest.hexdigest(), AudioInfo(str(path), int(rate), int(channels), n / float(rate))


def write_wav(path: str | os.PathLike, samples: np.ndarray, rate: int) -> "os.PathLike":
    """Write 16-bit PCM WAV. ``samples``: (n,) or (n, channels), int16 as is, or float in [-1, 1]
    scaled by 32768 and clipped (the inverse of ``load_audio``'s int16 -> float conversion)."""
    import wave
    from pathlib import Path

    x = np.asarray(samples)
    if x.dtype != np.int16:
        x = np.clip(np.round(x.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if x.ndim == 1 else x.shape[1])
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(np.ascontiguousarray(x, dtype="<i2").tobytes())
    return path
