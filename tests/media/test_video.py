"""Video IO: write then read back (frame count, fps, size, audio length), errors, VFR timestamps."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from interactive_eyes.media.audio import load_audio
from interactive_eyes.media.errors import MediaError
from interactive_eyes.media.video import iter_frames, probe, read_frames, write_video


def _frames(n, h=64, w=96):
    rng = np.random.default_rng(0)
    # 8x8 blocks: survives yuv420p chroma subsampling and H.264 quantisation (per-pixel noise does not)
    blocks = rng.integers(0, 255, ((h + 7) // 8, (w + 7) // 8, 3), dtype=np.uint8)
    base = np.ascontiguousarray(blocks.repeat(8, 0).repeat(8, 1)[:h, :w])
    for i in range(n):
        f = base.copy()
        f[:, (i * 3) % w] = 255  # a moving bar so frames differ
        yield f


def test_round_trip_video_and_audio(tmp_path):
    fps, n, rate = 25, 40, 16000
    t = np.arange(int(n / fps * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = write_video(tmp_path / "a.mp4", _frames(n), fps, audio=tone, audio_rate=rate)
    info = probe(path)
    assert (info.width, info.height, info.n_frames) == (96, 64, n)
    assert info.fps == pytest.approx(fps)
    assert info.duration == pytest.approx(n / fps, abs=1e-6)
    assert info.has_audio and info.audio_rate == rate
    audio = load_audio(path, rate)
    # AAC adds encoder priming/padding: at most one AAC frame (1024 samples) of difference
    assert abs(len(audio) - len(tone)) <= 1024
    frames, times = read_frames(path)
    assert frames.shape == (n, 64, 96, 3)
    np.testing.assert_allclose(times, np.arange(n) / fps, atol=1e-6)
    # lossy, but close to what was written
    first = next(_frames(1))
    assert np.abs(frames[0].astype(int) - first).mean() < 6


def test_odd_size_and_ntsc_rate(tmp_path):
    path = write_video(tmp_path / "odd.mp4", _frames(5, h=33, w=47), 30000 / 1001)
    info = probe(path)
    assert (info.width, info.height) == (48, 34)
    assert info.fps == pytest.approx(29.97, abs=1e-2)


def test_variable_frame_rate_timestamps(tmp_path):
    """Frame times come from presentation timestamps, not index / fps."""
    import av

    path = tmp_path / "vfr.mp4"
    times = [0.0, 0.04, 0.2, 0.24, 0.5, 0.9]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for t, img in zip(times, _frames(len(times), 32, 32)):
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts = int(round(t * 1000))
            vf.time_base = Fraction(1, 1000)
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    got = [f.time for f in iter_frames(path)]
    np.testing.assert_allclose(got, times, atol=2e-3)


def test_max_side_downscales_while_decoding(tmp_path):
    path = write_video(tmp_path / "big.mp4", _frames(3, h=120, w=200), 10)
    f = next(iter_frames(path, max_side=100))
    assert max(f.rgb.shape[:2]) == 100 and f.rgb.shape[1] == 100 and f.rgb.shape[0] == 60


@pytest.mark.parametrize(
    "make, expect",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"not a video at all" * 50), "not a readable media file"),
        (lambda p: None, "not found"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, make, expect):
    path = tmp_path / "bad.mp4"
    make(path)
    with pytest.raises(MediaError) as err:
        probe(path)
    msg = str(err.value)
    assert str(path) in msg and expect in msg and "\n" not in msg


def test_truncated_file(tmp_path):
    good = write_video(tmp_path / "g.mp4", _frames(50), 25)
    data = good.read_bytes()
    bad = tmp_path / "t.mp4"
    bad.write_bytes(data[: len(data) // 2])  # moov atom at the end is lost
    with pytest.raises(MediaError) as err:
        list(iter_frames(bad))
    assert str(bad) in str(err.value)


def test_no_video_stream(tmp_path):
    import av

    path = tmp_path / "audio_only.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream("aac", rate=16000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        frame.pts = 0
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode():
            out.mux(p)
    with pytest.raises(MediaError, match="no video stream"):
        probe(path)
    assert len(load_audio(path)) > 0


def test_real_clip_probe(interact_11):
    info = probe(interact_11)
    assert (info.width, info.height, info.n_frames) == (832, 448, 205)
    assert info.fps == pytest.approx(24.0)
    assert info.audio_duration == pytest.approx(8.597, abs=1e-3)


def test_prefetch_yields_the_same_frames_and_errors(tmp_path):
    from interactive_eyes.media.video import iter_frames_prefetch

    path = write_video(tmp_path / "p.mp4", _frames(30), 25)
    a = [(f.index, f.time, f.rgb.sum()) for f in iter_frames(path)]
    b = [(f.index, f.time, f.rgb.sum()) for f in iter_frames_prefetch(path, depth=2)]
    assert a == b
    # stopping early does not hang the decoder thread
    it = iter_frames_prefetch(path, depth=1)
    next(it)
    it.close()
    data = path.read_bytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError):
        list(iter_frames_prefetch(bad))
