"""Interactivity's corrected-mode track rules on synthetic arrays with known truth: glitches near
their thresholds (exact flags), multi-frame glitches, occlusion edges, the fixed 1/25 s step at
24/25/30/48 fps, the noise floor, and the functional API."""

from __future__ import annotations

import math

import numpy as np
import pytest

from interactive_eyes.metrics import interactivity as ia
from interactive_eyes.metrics import interactivity_tracks as it

P = 22


def still(n, seed=0):
    """(n, 22, 2) points of a face that does not move (units)."""
    base = np.random.default_rng(seed).uniform(-40, 40, (P, 2))
    return np.repeat(base[None], n, axis=0)


def flags_of(points, **kw):
    return np.flatnonzero(it.reject_glitches(points, **kw)[0]).tolist()


# --------------------------------------------------------------------------- the one-frame rule near its thresholds


def test_midpoint_distance_and_span_are_exact():
    p = still(30)
    p[2, :, 0] += 12.0  # frame 2 is 12 units right of its neighbours' midpoint
    p[3:, :, 1] += 4.0  # frames 1 and 3 are 4 units apart
    flags, dev, thr = it.spike_frames(p)
    assert dev[2] == pytest.approx(math.hypot(12.0, 2.0)) and thr == 10.0
    assert np.flatnonzero(flags).tolist() == [2]  # 12.17 > 10 and > 2 x 4


def test_neighbour_ratio_2_keeps_a_frame_only_1_5x_off_its_neighbours_line():
    """dev 12 > 10 units, neighbours 8 apart: 12 < 2 x 8, kept (with a ratio of 1 it would go)."""
    p = still(30)
    p[4:, :, 0] += 8.0  # a real 8-unit step between frames 3 and 4 ...
    p[3, :, 0] += 4.0  # ... with frame 3 at the step's midpoint, displaced 12 units upwards
    p[3, :, 1] += 12.0
    flags, dev, thr = it.spike_frames(p)
    assert dev[3] == pytest.approx(12.0) and thr == 10.0
    assert flags_of(p) == []
    assert np.flatnonzero(it.spike_frames(p, neighbour_ratio=1.0)[0]).tolist() == [3]
    q = p.copy()
    q[4:, :, 0] -= 4.0  # neighbours 4 apart: 12 > 2 x 4, a glitch
    assert flags_of(q) == [3]


@pytest.fixture()
def noisy_track():
    """A still face with robust noise large enough that the threshold rises above the floor:
    threshold = median + 6 x 1.4826 x MAD of the midpoint distance."""
    rng = np.random.default_rng(11)
    p = still(120) + rng.normal(0.0, 2.6, (120, 1, 2))  # every point moves together: a jittery face
    _, dev, _ = it.spike_frames(p)
    d = dev[np.isfinite(dev)]
    med, mad = np.median(d), np.median(np.abs(d - np.median(d)))
    with_factor, without = med + 6 * 1.4826 * mad, med + 6 * mad
    assert without > 10.5 and with_factor - without > 3.0  # the two candidate thresholds are apart
    return p, with_factor, without


def test_the_mad_is_scaled_by_1_4826(noisy_track):
    p, with_factor, without = noisy_track
    assert it.spike_frames(p)[2] == pytest.approx(with_factor, rel=0.02)
    k = 60

    def excursion(d):
        """Frame k moved to exactly ``d`` units above its neighbours' midpoint."""
        q = p.copy()
        q[k] = 0.5 * (p[k - 1] + p[k + 1]) + [0.0, d]
        flags, dev, thr = it.spike_frames(q)
        assert dev[k] == pytest.approx(d)
        assert d > 2 * np.mean(np.linalg.norm(p[k + 1] - p[k - 1], axis=1))  # the neighbour test passes
        return np.flatnonzero(flags).tolist(), thr

    # between the threshold with 1.4826 and the one without: kept (without the factor: rejected)
    flags, thr = excursion(0.5 * (with_factor + without))
    assert without + 1.0 < 0.5 * (with_factor + without) < thr - 1.0 and flags == []
    flags, thr = excursion(with_factor + 3.0)
    assert flags == [k]


# --------------------------------------------------------------------------- real movements are kept


def test_overshoot_and_settle_is_kept():
    """An eyebrow raise that overshoots: 0 -> 24 -> 20 and stays. Its first frame is 14 units
    from its neighbours' midpoint (> the 10-unit floor), but they are 20 apart: a movement."""
    p = still(12)
    p[5:, :, 1] -= 20.0
    p[5, :, 1] -= 4.0
    flags, dev, thr = it.spike_frames(p)
    assert dev[5] == pytest.approx(14.0) and dev[5] > thr
    assert flags_of(p) == []
    assert not it.reject_gap_edges(p, thr).any()


def test_a_step_and_a_four_frame_excursion_are_kept():
    p = still(20)
    p[8:, :, 0] += 30.0  # a fast move that stays
    assert flags_of(p) == []
    q = still(20)
    q[8:12, :, 0] += 15.0  # four frames away and back: longer than any glitch rejected
    assert flags_of(q) == []


# --------------------------------------------------------------------------- multi-frame glitches


@pytest.mark.parametrize("length", [1, 2, 3])
def test_glitches_of_up_to_three_frames_are_rejected(length):
    p = still(20)
    p[8:8 + length, :, 0] += 15.0
    flags, runs, _ = it.reject_glitches(p)
    assert np.flatnonzero(flags).tolist() == list(range(8, 8 + length))
    assert runs[8:8 + length].tolist() == [length] * length


# --------------------------------------------------------------------------- occlusion edges


def test_the_first_and_last_frame_of_an_occlusion_are_rejected_when_nothing_supports_them():
    p = still(30)
    p[10, :, 0] += 22.0  # the model still returns a face on the first grey frame, 22 units off
    p[11:16] = np.nan  # then nothing
    p[16, :, 1] += 18.0  # and a wrong one on the last grey frame
    flags, _, thr = it.reject_glitches(p)
    assert not flags.any()  # the glitch test cannot see them: one neighbour is missing
    assert np.flatnonzero(it.reject_gap_edges(p, thr)).tolist() == [10, 16]
    q = still(30)
    q[11:16] = np.nan  # a clean occlusion: its edges are real frames
    assert not it.reject_gap_edges(q, thr).any()


# --------------------------------------------------------------------------- the fixed 1/25 s step


def test_resampling_holds_the_frame_on_screen():
    t = np.arange(31) / 30.0
    p = still(31) + (np.arange(31) * 0.6)[:, None, None] * np.array([1.0, 0.0])  # 0.6 units per 1/30 s
    grid, at = it.resample(p, t)
    assert len(grid) == 26 and grid[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(at[:, 0, 0] - p[0, 0, 0], 0.6 * np.floor(np.arange(26) * 30 / 25 + 1e-9))
    d = it.displacements(at)[1:]
    assert d.mean() == pytest.approx(0.6 * 30 / 25)  # 18 units in 25 steps: per 1/25 s
    p[7] = np.nan  # a missing frame invalidates the grid times at which it is on screen
    _, at = it.resample(p, t)
    assert np.flatnonzero(~np.isfinite(at[:, 0, 0])).tolist() == [j for j in range(26) if math.floor(j * 1.2 + 1e-9) == 7]


def _listener(seconds=12.0, fps=24.0, noise=0.3, seed=5):
    """A listener at 24 fps: smooth head/brow motion (~0.5 units per 1/25 s) plus landmark noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    t = np.arange(n) / fps
    motion = np.stack([3 * np.sin(2 * np.pi * 0.7 * t) + 2 * np.sin(2 * np.pi * 1.9 * t + 1),
                       2 * np.sin(2 * np.pi * 1.1 * t + 2)], axis=1)
    return still(n) + motion[:, None, :] + rng.normal(0, noise, (n, P, 2)), t


def _value(p, t, fps):
    r = ia.interactivity(p[:, None], fps, [[]], times=t)
    assert r.ok, r.reason
    return r.value


@pytest.mark.parametrize("rate", [25.0, 30.0, 48.0])
def test_the_same_content_at_24_25_30_48_fps_scores_within_5_percent(rate):
    """Frames shown again as a player would (each output frame shows the latest 24 fps frame; 48 fps
    = every frame twice): identical landmarks on repeated frames, as the tracker gives."""
    p, t = _listener()
    ref = _value(p, t, 24.0)
    n_out = int(len(t) / 24.0 * rate)
    src = np.floor(np.arange(n_out) * 24.0 / rate + 1e-9).astype(int)
    got = _value(p[src], np.arange(n_out) / rate, rate)
    assert got == pytest.approx(ref, rel=0.05)
    # version 1's per-frame value x fps / 25 on the same frames: far off at 48 fps (the repeated
    # frames' zero steps halve the per-frame mean, then x 48 / 25 does not undo the noise part)
    v1 = np.nanmean(it.displacements(p[src])[1:]) * rate / 25.0
    v1_ref = np.nanmean(it.displacements(p)[1:]) * 24.0 / 25.0
    assert v1_ref == pytest.approx(ref, rel=0.01)


def test_noise_floor_of_pure_noise_is_its_mean_displacement():
    """Still face + white noise sigma: floor = sigma sqrt(pi) (Rayleigh mean of a 2-D difference),
    and that is what the value measures on it."""
    sigma = 0.4
    p = still(3000) + np.random.default_rng(2).normal(0, sigma, (3000, P, 2))
    assert it.noise_floor(p) == pytest.approx(sigma * math.sqrt(math.pi), rel=0.03)
    t = np.arange(3000) / 25.0
    r = ia.interactivity(p[:, None], 25.0, [[]], times=t)
    assert r.value == pytest.approx(sigma * math.sqrt(math.pi), rel=0.03)
    assert r.details["per_person"][0]["noise_floor"] == pytest.approx(r.value, rel=0.03)


# --------------------------------------------------------------------------- occlusions and glitches barely change a value


@pytest.mark.parametrize("gap", [1, 2, 3, 4, 5, 6])
def test_occlusions_of_1_to_6_frames_change_the_value_by_less_than_5_percent(gap):
    p, t = _listener()
    ref = _value(p, t, 24.0)
    for start in (40, 120, 200):
        q = p.copy()
        q[start] += [22.0, 0.0]  # a wrong face on the first occluded frame ...
        q[start + 1:start + gap] = np.nan  # ... and nothing on the rest
        assert _value(q, t, 24.0) == pytest.approx(ref, rel=0.05)


@pytest.mark.parametrize("length", [1, 2, 3])
def test_glitches_of_1_to_3_frames_change_the_value_by_less_than_5_percent(length):
    p, t = _listener()
    ref = _value(p, t, 24.0)
    q = p.copy()
    for start in (40, 120, 200):
        q[start:start + length] += [15.0, -8.0]
    assert _value(q, t, 24.0) == pytest.approx(ref, rel=0.05)
    r = ia.interactivity(q[:, None], 24.0, [[]], times=t)
    assert r.details["per_person"][0]["n_rejected"]["glitch_runs"][str(length)] == 3


# --------------------------------------------------------------------------- the functional API


def test_functional_api_on_arrays_two_people():
    """(T, N, K, 2) landmarks with NaN gaps, boxes for the scale, speaking segments in seconds."""
    fps, n = 25.0, 50
    t = np.arange(n) / fps
    lm = np.stack([still(n, 1) + (np.arange(n) * 0.5)[:, None, None] * [1, 0],
                   still(n, 2) + (np.arange(n) * 2.0)[:, None, None] * [0, 1]], axis=1) + 200.0
    boxes = np.zeros((n, 2, 4))
    boxes[:, 0] = [0, 0, 112, 100]  # side 112 -> x2
    boxes[:, 1] = [300, 0, 524, 224]  # side 224 -> x1
    lm[10, 1] = np.nan  # person 1 missing on frame 10
    r = ia.interactivity(lm, fps, [[(1.0, 2.0)], []], boxes=boxes, roles=["a", "b"])
    assert r.ok
    assert r.per_person == [pytest.approx(1.0), pytest.approx(2.0)]
    c0, c1 = r.details["per_person"]
    assert c0["n_listening_steps_used"] == 24 and c1["n_listening_steps_used"] == 49 - 2
    assert c1["n_missing_frames"] == 1 and c1["n_skipped_invalid"] == 2
    assert r.value == pytest.approx((24 * 1.0 + 47 * 2.0) / 71)
    with pytest.raises(ValueError, match="eye_idx"):
        ia.interactivity(np.zeros((5, 1, 68, 2)), fps, [[]])
    with pytest.raises(ValueError, match="speaking has 1 people"):
        ia.interactivity(lm, fps, [[]])
    few = lm.copy()
    few[:30, 0] = np.nan
    assert ia.interactivity(few, fps, [[], []], boxes=boxes, roles=["a", "b"]).reason == \
        "person a has landmarks in 20 of 50 frames (< 50%)"


def test_functional_api_camera_removes_a_known_shake():
    """A still face filmed by a shaking camera: the landmarks move with the frame; given the
    camera's transforms the value is that of the still face (0), without them the shake's."""
    from interactive_eyes.faces.camera import cumulative

    n, fps = 40, 25.0
    rng = np.random.default_rng(4)
    shake = rng.integers(-1, 2, (n, 2)).astype(float)
    lm = still(n) + 200.0 + shake[:, None, :]
    steps = [np.hstack([np.eye(2), (shake[k] - shake[k - 1] if k else np.zeros(2))[:, None]]) for k in range(n)]
    cam = cumulative(steps)
    assert ia.interactivity(lm[:, None], fps, [[]], camera=cam).value == pytest.approx(0.0, abs=1e-9)
    raw = ia.interactivity(lm[:, None], fps, [[]]).value
    assert raw == pytest.approx(np.mean(np.linalg.norm(np.diff(shake, axis=0), axis=1)))


# --------------------------------------------------------------------------- the blank-crop test


@pytest.mark.parametrize("zoom", [1.0, 2.0, 4.0])
def test_blank_crop_test_reads_a_grid_whose_spread_is_the_whole_box_s(zoom):
    """The face box's grey spread from a grid of at most 40 x 40 pixels agrees with the spread of
    every pixel (numpy, the same grey weights) to 5 % on a real face at 106-424 px, far from the
    4.0 threshold either way; a flat occluder with codec-like noise (std 1) is blank."""
    import cv2

    from interactive_eyes.faces.synthetic import ASTRONAUT_FACE_CENTER, ASTRONAUT_FACE_SIDE, astronaut

    photo = cv2.resize(astronaut(), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
    cx, cy, half = (ASTRONAUT_FACE_CENTER[0] * zoom, ASTRONAUT_FACE_CENTER[1] * zoom, ASTRONAUT_FACE_SIDE * zoom / 2)
    box = np.array([cx - half, cy - half, cx + half, cy + half])
    crop = photo[int(box[1]):int(np.ceil(box[3])), int(box[0]):int(np.ceil(box[2]))].astype(np.float64)
    full_std = float((crop @ np.array([0.299, 0.587, 0.114])).std())
    assert full_std > 20
    # the grid's own spread, through the threshold: blank exactly when the threshold exceeds it
    assert not ia.crop_is_blank(photo, box, threshold=0.95 * full_std)
    assert ia.crop_is_blank(photo, box, threshold=1.05 * full_std)
    flat = np.clip(128 + np.random.default_rng(0).normal(0, 1, photo.shape), 0, 255).astype(np.uint8)
    assert ia.crop_is_blank(flat, box)
