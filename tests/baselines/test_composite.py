"""``--composite``: a single-person method run per person on crops with that person's own track,
pasted back into the still reference (spec §5.6)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_adapters import configure, decode, make_item, media, tone_power, TONES  # noqa: F401

from interactive_eyes.baselines.composite import CompositeMethod, crop_box


def test_crop_box_aspect_and_bounds():
    assert crop_box((30, 14, 56, 44), (192, 96), 1.0) == (6, 0, 80, 74)
    x1, y1, x2, y2 = crop_box((60, 20, 100, 60), (400, 300), 1.5)  # Hallo3: 3:2
    assert (x2 - x1) / (y2 - y1) == pytest.approx(1.5, abs=0.02) and x1 >= 0 and y1 >= 0
    x1, y1, x2, y2 = crop_box((0, 0, 90, 90), (100, 80), 1.0)  # bigger than the image: shrunk, inside
    assert x2 - x1 == y2 - y1 <= 80 and x1 >= 0 and y2 <= 80


def test_composite_runs_each_person_with_their_own_track(media, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match="--composite is for single-person methods"):
        CompositeMethod(configure("multitalk", tmp_path / "mt", "multitalk"))
    inner = configure("sonic", tmp_path, "sonic")
    m = CompositeMethod(inner)
    item = make_item(media, 2, 1.2)
    assert inner.check(item) is not None and m.check(item) is None
    out = tmp_path / "run" / "clip_a.mp4"
    info = m.generate(item, out, seed=3)
    assert info["mode"] == "composite" and info["base_method"] == "sonic"
    vi, frames, audio = decode(out)
    assert (vi.width, vi.height) == (192, 96) and vi.n_frames == 30 == info["frames"]
    crops = [p["crop"] for p in info["people"]]
    assert crops[0][2] <= crops[1][0]  # left person's crop left of the right one's
    # each person's job got only their own track: the inner fake saw one audio, tone of that person
    for i, p in enumerate(info["people"]):
        sub_audio = decode(tmp_path / "run" / "jobs" / "clip_a" / f"p{i}" / f"clip_a_p{i}.mp4")[2]
        own, other = tone_power(sub_audio, TONES[i]), tone_power(sub_audio, TONES[1 - i])
        assert own > 100 * other
    # the pasted regions change over time (the fake draws a frame code), the rest is the still reference
    diff = np.abs(frames[2].astype(int) - frames[1].astype(int)).max(axis=2)
    inside, near = np.zeros(diff.shape, bool), np.zeros(diff.shape, bool)
    for x1, y1, x2, y2 in crops:
        inside[y1:y2, x1:x2] = True
        near[max(0, y1 - 8):y2 + 8, max(0, x1 - 8):x2 + 8] = True  # H.264 blocks straddling the crop edge
    assert diff[inside].max() > 100 and diff[~near].mean() < 1.0 and np.percentile(diff[~near], 99) < 8
    geo = json.loads((tmp_path / "run" / "jobs" / "clip_a" / "geometry.json").read_text())
    assert geo["policy"] == "composite" and [c["crop"] for c in geo["crops"]] == crops and geo["overlap_px"] == 0
    # the final video carries the full mix
    half = audio.size // 2
    assert tone_power(audio[:half], TONES[0]) > 50 * tone_power(audio[:half], TONES[1])
    assert tone_power(audio[half:], TONES[1]) > 50 * tone_power(audio[half:], TONES[0])
