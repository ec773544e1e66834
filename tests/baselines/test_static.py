"""The static method and the adapter contract (base.py): duration, fps, size, audio = the mix,
frames = the reference; capability checks; track loading and mixing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from interactive_eyes.baselines import METHODS
from interactive_eyes.baselines.base import (
    Capabilities,
    Item,
    ItemPerson,
    frame_count,
    load_reference_frame,
    load_tracks,
    mix_tracks,
)
from interactive_eyes.media.audio import load_audio, write_wav
from interactive_eyes.media.video import probe, read_frames


def _psnr(a, b) -> float:
    """PSNR of the luma (BT.601 weights): H.264 yuv420p keeps luma at full resolution, so only
    quantisation separates a faithful frame from its reference (chroma is subsampled 2x)."""
    w = np.array([0.299, 0.587, 0.114])
    mse = np.mean((np.asarray(a, np.float64) @ w - np.asarray(b, np.float64) @ w) ** 2)
    return float(10 * np.log10(255.0**2 / mse)) if mse > 0 else float("inf")


def _envelope(x, rate, win_s=0.04):
    n = int(rate * win_s)
    m = len(x) // n
    return np.sqrt((x[: m * n].reshape(m, n) ** 2).mean(axis=1))


@pytest.fixture(scope="module")
def interact_11_static(test_data, tmp_path_factory):
    from interactive_eyes.data import manifest

    clip = manifest.load().clip("interact_11")
    ref = test_data / "anytalker_examples" / "images" / "2p-0.png"
    item = Item.from_clip(clip, test_data / "interactive_eyes", ref)
    out = tmp_path_factory.mktemp("static") / "interact_11.mp4"
    info = METHODS.get("static")().generate(item, out, seed=0)
    return item, out, info


def test_static_duration_fps_size(interact_11_static):
    item, out, info = interact_11_static
    vi = probe(out)
    assert vi.fps == 25.0 and (vi.width, vi.height) == (852, 480)  # 2p-0.png is 852x480 (even already)
    assert vi.n_frames == info["frames"] == 215  # round(25 * 8.5973)
    assert abs(vi.n_frames / 25.0 - item.duration) <= 1 / 25.0
    assert vi.has_audio and vi.audio_rate == 48000  # the tracks' own rate
    assert abs(vi.audio_duration - item.duration) < 0.03


def test_static_frames_are_the_reference(interact_11_static):
    item, out, _ = interact_11_static
    frames, times = read_frames(out)
    ref = load_reference_frame(item.reference_frame)
    # H.264 at crf 18: luma PSNR >= 40 dB on every frame, while the same frame against the
    # reference moved by one pixel is below 36 dB: the test tells an exact copy from a shifted one
    psnr = [_psnr(f, ref) for f in frames]
    assert min(psnr) > 40.0
    assert _psnr(frames[0][:, 1:], ref[:, :-1]) < min(psnr) - 4.0
    assert np.allclose(np.diff(times), 1 / 25.0)


def test_static_audio_is_the_mix(interact_11_static, test_data):
    item, out, _ = interact_11_static
    rate = 16000
    muxed = load_audio(out, sample_rate=rate)
    tracks = [load_audio(p.audio, sample_rate=rate) for p in item.people]
    n = min(len(muxed), *(len(t) for t in tracks))
    mix = sum(t[:n] for t in tracks)
    env_out, env_mix = _envelope(muxed[:n], rate), _envelope(mix, rate)
    r = np.corrcoef(env_out, env_mix)[0, 1]
    assert r > 0.99
    # the plain sum, not a level-normalised or averaged mix: same RMS level within 0.5 dB
    assert abs(20 * np.log10(np.sqrt(np.mean(muxed[:n] ** 2)) / np.sqrt(np.mean(mix**2)))) < 0.5
    for t in tracks:  # and both people are in it (one track alone does not explain it)
        assert np.corrcoef(env_out, _envelope(t[:n], rate))[0, 1] < r - 0.1
    # time alignment: the envelope cross-correlation peaks at lag 0 (40 ms resolution)
    lags = range(-5, 6)
    xc = [np.dot(np.roll(env_out, k), env_mix) for k in lags]
    assert list(lags)[int(np.argmax(xc))] == 0


def test_odd_reference_is_cut_to_even(synthetic_item, tmp_path):
    from PIL import Image

    rgb = np.asarray(Image.open(synthetic_item.reference_frame).convert("RGB"))[:301, :401]
    odd = tmp_path / "odd.png"
    Image.fromarray(rgb).save(odd)
    item = replace(synthetic_item, duration=1.0, reference_frame=odd)
    info = METHODS.get("static")().generate(item, tmp_path / "odd.mp4", seed=0)
    vi = probe(tmp_path / "odd.mp4")
    assert (vi.width, vi.height, vi.n_frames) == (400, 300, 25) == (info["width"], info["height"], info["frames"])
    frames, _ = read_frames(tmp_path / "odd.mp4")
    assert _psnr(frames[0], rgb[:300, :400]) > 40.0
    assert _psnr(frames[0], rgb[1:301, :400]) < 35.0  # not the bottom-aligned cut


def test_frame_count_rule():
    assert frame_count(8.597333333333333, 25) == 215
    assert frame_count(0.02, 25) == 1  # 0.5 frames: halves round up
    assert frame_count(0.06, 25) == 2  # 1.5
    assert frame_count(7.36, 25) == 184
    assert frame_count(0.001, 25) == 1  # never zero frames


def test_load_tracks_pads_and_mix_clips(tmp_path):
    def wav(path, x, rate=16000):
        return write_wav(path, np.asarray(x), rate)

    a = wav(tmp_path / "a.wav", np.full(16000, 0.7))  # 1.0 s
    b = wav(tmp_path / "b.wav", np.full(8000, 0.6))  # 0.5 s, overlapping a
    item = Item("x", 1.25, (ItemPerson("left", a), ItemPerson("right", b)))
    tracks, rate = load_tracks(item)
    assert rate == 16000 and tracks.shape == (2, 20000, 1)
    assert np.all(tracks[0, 16000:] == 0) and np.all(tracks[1, 8000:] == 0)  # padded with silence
    mix, clipped = mix_tracks(tracks)
    assert clipped == 8000 and mix.max() == pytest.approx(1.0)  # 0.7 + 0.6 > 1 for 0.5 s
    assert mix[10000, 0] == pytest.approx(0.7, abs=1e-4)


def test_tracks_at_different_rates_are_brought_to_the_highest(tmp_path):
    def tone(path, rate):
        t = np.arange(rate) / rate
        return write_wav(path, 0.5 * np.sin(2 * np.pi * 440 * t), rate)

    item = Item("x", 1.0, (ItemPerson("left", tone(tmp_path / "a.wav", 16000)), ItemPerson("right", tone(tmp_path / "b.wav", 48000))))
    tracks, rate = load_tracks(item)
    assert rate == 48000 and tracks.shape == (2, 48000, 1)
    core = slice(1000, 47000)  # away from the resampler's edges
    assert np.corrcoef(tracks[0, core, 0], tracks[1, core, 0])[0, 1] > 0.999


def test_check_uses_capabilities(synthetic_item, tmp_path):
    static = METHODS.get("static")()
    assert static.check(synthetic_item) is None
    assert static.check(replace(synthetic_item, reference_frame=None)) == "no reference frame given"
    missing = tmp_path / "nope.png"
    assert static.check(replace(synthetic_item, reference_frame=missing)) == f"{missing}: reference frame not found"

    class Capped(type(static)):
        capabilities = replace(static.capabilities, max_people=1, min_duration=5.0, max_duration=10.0,
                               offline_files=(str(tmp_path / "weights.bin"),))

    capped = Capped()
    assert capped.check(synthetic_item) == "2 people, static handles at most 1"
    one = replace(synthetic_item, people=synthetic_item.people[:1])
    assert capped.check(one) == "duration 4.00 s is below static's minimum 5 s"
    assert capped.check(replace(one, duration=12.0)) == "duration 12.00 s is above static's maximum 10 s"
    assert capped.check(replace(one, duration=6.0)) == f"{tmp_path / 'weights.bin'}: required file missing (offline run)"
    (tmp_path / "weights.bin").write_bytes(b"x")
    assert capped.check(replace(one, duration=6.0)) is None


def test_params_and_capabilities_are_validated():
    cls = METHODS.get("static")
    with pytest.raises(ValueError, match="method 'static': unknown parameter 'crff' \\(known: crf\\)"):
        cls(crff=20)
    assert cls(crf=23).params() == {"crf": 23}
    with pytest.raises(ValueError, match="binding must be one of"):
        Capabilities(max_people=2, binding="magic", native_fps=25, frame_rule="", resolution="")
    d = cls.capabilities.to_dict()
    import json

    assert json.loads(json.dumps(d)) == d and d["native_fps"] == 25 and d["binding"] == "none"


def test_unreadable_reference_is_one_line(tmp_path):
    from interactive_eyes.media.errors import MediaError

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(MediaError) as err:
        load_reference_frame(bad)
    assert str(err.value).startswith(f"{bad}: not a readable image") and "\n" not in str(err.value)


def test_item_from_clip_finds_flac_and_names_missing_audio(test_data, tmp_path):
    from interactive_eyes.data import manifest

    clip = manifest.load().clip("interact_1")
    item = Item.from_clip(clip, test_data / "interactive_eyes")
    assert [p.role for p in item.people] == ["left", "right"]
    assert all(Path(p.audio).suffix == ".flac" and Path(p.audio).is_file() for p in item.people)
    assert item.people[0].speaking == clip.people[0].speaking and item.duration == clip.duration
    with pytest.raises(FileNotFoundError, match="audio_left/interact_1_left.wav: audio track not found"):
        Item.from_clip(clip, tmp_path)
