"""Audio alignment by normalised cross-correlation: known offsets, refusals, real data."""

from __future__ import annotations

import numpy as np
import pytest

from interactive_eyes.data.align import AlignmentError, find_offset, normalized_correlation

RATE = 16000


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Noise shaped into ~4 Hz 'syllables' (speech's envelope rate), with pauses: unique, not periodic."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    carrier = rng.standard_normal(n)
    t = np.arange(n) / RATE
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0, None) ** 2
    envelope *= (rng.random(int(seconds * 2) + 1) > 0.3).repeat(RATE // 2)[:n]  # pauses of 0.5 s
    return (0.3 * carrier * envelope).astype(np.float32)


def test_normalized_correlation_matches_direct_formula():
    rng = np.random.default_rng(0)
    s, t = rng.standard_normal(300), rng.standard_normal(40)
    got = normalized_correlation(s, t)
    s0, t0 = s - s.mean(), t - t.mean()
    want = [np.dot(s0[k : k + 40], t0) / (np.linalg.norm(s0[k : k + 40]) * np.linalg.norm(t0)) for k in range(261)]
    np.testing.assert_allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("offset_samples", [0, 1, 12345, 3 * RATE + 7])
def test_known_offset_is_found_to_the_sample(offset_samples):
    template = speech_like(5.0, seed=1)
    lead = speech_like(offset_samples / RATE + 0.01, seed=2)[:offset_samples] * 0.5  # other sound before
    signal = np.concatenate([lead, template, speech_like(1.0, seed=3)])
    found = find_offset(signal, template, RATE)
    assert found.offset_samples == offset_samples
    assert found.offset == pytest.approx(offset_samples / RATE)
    assert found.peak > 0.999 and found.clarity > 5


def test_offset_survives_gain_noise_and_a_lossy_copy():
    """The source is a different rendering of the same dialogue: quieter, noisy, low-passed."""
    from scipy.signal import butter, sosfiltfilt

    template = speech_like(6.0, seed=4)
    rng = np.random.default_rng(5)
    k = int(1.2345 * RATE)
    copy = sosfiltfilt(butter(6, 5000, fs=RATE, output="sos"), template) * 0.4  # zero-phase: no delay
    signal = rng.standard_normal(k + template.size + RATE) * 0.02
    signal[k : k + template.size] += copy
    found = find_offset(signal, template, RATE)
    assert found.offset_samples == k
    # the low-pass keeps 5/8 of the white carrier's power (sqrt -> 0.79) and the noise ~10 dB below
    assert 0.6 < found.peak < 0.9 and found.clarity > 5


def test_noise_has_no_clear_peak_and_is_refused():
    rng = np.random.default_rng(6)
    signal = rng.standard_normal(10 * RATE)
    template = rng.standard_normal(5 * RATE)  # independent: not in the signal
    with pytest.raises(AlignmentError, match="no clear alignment: best normalised correlation"):
        find_offset(signal, template, RATE)


def test_periodic_sound_is_ambiguous_and_refused():
    """A steady tone matches at every period: the best lag does not stand out."""
    t = np.arange(8 * RATE) / RATE
    signal = np.sin(2 * np.pi * 5.0 * t)  # period 0.2 s, longer than the 50 ms exclusion
    template = signal[RATE : 3 * RATE].copy()
    with pytest.raises(AlignmentError, match="ambiguous"):
        find_offset(signal, template, RATE)


def test_template_longer_than_signal_is_an_error():
    with pytest.raises(ValueError, match="at least as long"):
        normalized_correlation(np.zeros(10), np.ones(20))


def test_silent_windows_score_zero_not_nan():
    template = speech_like(1.0, seed=7)
    signal = np.concatenate([np.zeros(2 * RATE), template])
    ncc = normalized_correlation(signal, template)
    assert np.isfinite(ncc).all() and abs(ncc[0]) < 1e-6
    assert int(np.argmax(ncc)) == 2 * RATE


def test_released_tracks_sum_to_the_real_ground_truth_audio(ie_root):
    """Real data: clip 11's AAC audio (interact_11.mp4) is the sum of its two released tracks,
    starting at the video's first sample."""
    from interactive_eyes.media.audio import load_audio

    video_audio = load_audio(ie_root / "interact_11.mp4", RATE)
    mix = sum(load_audio(ie_root / f"audio_{r}/interact_11_{r}.flac", RATE) for r in ("left", "right"))
    pad = np.zeros(RATE, dtype=np.float32)
    signal = np.concatenate([pad, video_audio, pad])  # the clip somewhere inside a longer recording
    found = find_offset(signal, mix[: 6 * RATE], RATE)
    assert found.offset_samples == RATE  # the pad: the video's audio starts with the tracks
    assert found.peak > 0.99
