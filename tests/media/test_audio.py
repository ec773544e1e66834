"""Audio decode: resampling, dtype scale, channels, PCM hashes independent of the container."""

from __future__ import annotations

import numpy as np
import pytest

from interactive_eyes.media.audio import audio_info, load_audio, pcm_sha256, write_wav
from interactive_eyes.media.errors import MediaError


def _write_flac(path, samples: np.ndarray, rate: int):
    import av

    samples = np.asarray(samples, dtype=np.int16)
    layout = "mono" if samples.ndim == 1 else "stereo"
    with av.open(str(path), "w", format="flac") as out:
        s = out.add_stream("flac", rate=rate)
        s.layout = layout
        s.format = "s16"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout=layout)
        frame.sample_rate = rate
        frame.pts = 0
        for p in s.encode(frame):
            out.mux(p)
        for p in s.encode():
            out.mux(p)


def test_resample_tone_keeps_frequency_and_length(tmp_path):
    rate = 48000
    t = np.arange(rate) / rate
    x = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    write_wav(tmp_path / "a.wav", np.stack([x, x], 1), rate)
    y = load_audio(tmp_path / "a.wav", 16000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 16000) <= 16
    spec = np.abs(np.fft.rfft(y[1000:15000]))
    peak_hz = np.argmax(spec) * 16000 / 14000
    assert peak_hz == pytest.approx(1000, abs=2)
    assert np.abs(y).max() == pytest.approx(8000 / 32768, rel=0.02)  # mono = channel mean
    y16 = load_audio(tmp_path / "a.wav", 16000, dtype="int16")
    assert y16.dtype == np.int16 and np.abs(y16).max() == pytest.approx(8000, rel=0.02)


def test_native_rate_and_channels(tmp_path):
    x = np.stack([np.arange(1000), -np.arange(1000)], 1).astype(np.int16)
    write_wav(tmp_path / "s.wav", x, 8000)
    y = load_audio(tmp_path / "s.wav", None, mono=False, dtype="int16")
    np.testing.assert_array_equal(y, x)
    info = audio_info(tmp_path / "s.wav")
    assert (info.sample_rate, info.channels) == (8000, 2) and info.duration == pytest.approx(1000 / 8000)


def test_pcm_hash_equal_for_wav_and_flac(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(-20000, 20000, (4800, 2)).astype(np.int16)
    write_wav(tmp_path / "x.wav", x, 48000)
    _write_flac(tmp_path / "x.flac", x, 48000)
    h_wav, info = pcm_sha256(tmp_path / "x.wav")
    h_flac, _ = pcm_sha256(tmp_path / "x.flac")
    assert h_wav == h_flac and info.channels == 2
    import hashlib

    assert h_wav == hashlib.sha256(x.astype("<i2").tobytes()).hexdigest()


def test_errors(tmp_path):
    with pytest.raises(MediaError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(ValueError):
        load_audio(tmp_path / "missing.wav", dtype="float64")


def test_released_track(ie_root):
    """The FLAC copy decodes to the released WAV's samples: PCM hash as recorded in the manifest."""
    from interactive_eyes.data import manifest

    person = manifest.load().clip("interact_1").people[0]
    digest, info = pcm_sha256(ie_root / "audio_left" / "interact_1_left.flac")
    assert digest == person.pcm_sha256 and info.sample_rate == 48000 and info.channels == 2
