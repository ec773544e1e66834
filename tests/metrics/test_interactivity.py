"""Interactivity: each paper rule on synthetic landmark sequences, the corrected computation on
analytic cases, ground truth from a synthetic video of a real face, and interact_11."""

from __future__ import annotations

import numpy as np
import pytest

from interactive_eyes.data.manifest import Clip, Person, complement
from interactive_eyes.faces.landmarks import EYE_BROW_POINTS
from interactive_eyes.faces.types import FaceBox
from interactive_eyes.media.video import VideoInfo
from interactive_eyes.metrics import interactivity as ia
from interactive_eyes.metrics.base import ClipContext, FrameData

MP = EYE_BROW_POINTS["mediapipe"]


# =============================================================================================
# helpers: build clips and feed synthetic frames straight into the metric


def person(role, speaking, duration, raw=None):
    return Person(role=role, audio=f"{role}.wav", speaking=tuple(speaking), listening=complement(speaking, duration),
                  speaking_raw=None if raw is None else tuple(raw))


def make_clip(people, duration, cid="synthetic"):
    return Clip(id=cid, duration=duration, people=tuple(people))


def info(fps, size=(640, 480), n=0):
    return VideoInfo(path="synthetic.mp4", width=size[0], height=size[1], fps=fps, n_frames=n, duration=n / fps,
                     has_audio=False, audio_rate=None, audio_duration=None, codec="h264")


def feed(metric, clip, fps, boxes, landmarks, size=(640, 480), times=None, backend="mediapipe-tasks", frames=None):
    """boxes[t][k]: FaceBox or None; landmarks[t][k]: (K, 2) or None; frames: the RGB frames (default:
    one still textured frame: face crops pass the blank-crop test, the background gives the
    identity). Returns the ClipResult."""
    state = metric.start(ClipContext(clip=clip, video_path="synthetic.mp4", info=info(fps, size, len(boxes))))
    still = np.random.default_rng(7).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    for t, (b, lm) in enumerate(zip(boxes, landmarks)):
        rgb = still if frames is None else frames[t]
        metric.update(state, FrameData(index=t, time=t / fps if times is None else times[t], rgb=rgb, faces=tuple(b),
                                       landmarks=tuple(lm), landmark_backend=backend))
    return metric.finish(state)


def moving_person(n, velocity, side, start=(200.0, 200.0), seed=0):
    """A 478-point face translating by ``velocity`` px/frame inside a fixed box of ``side`` px."""
    base = np.random.default_rng(seed).uniform(-side / 2, side / 2, size=(478, 2)) + np.asarray(start)
    lms = [base + k * np.asarray(velocity, dtype=float) for k in range(n)]
    box = FaceBox(start[0] - side / 2, start[1] - side / 2, start[0] + side / 2, start[1] + side / 2)
    return [box] * n, lms


# =============================================================================================
# paper mode: one rule at a time


def test_paper_reads_released_numbers_as_decimal_seconds_corrected_as_timecodes():
    from interactive_eyes.data.manifest import load

    left = load().clip("interact_11").person("left")
    assert left.speaking_raw == ((4.16, 8.18),)
    assert ia.decimal_intervals(left) == ((4.16, 8.18),)  # the script: 4.16 s
    assert left.speaking[0][0] == pytest.approx(4 + 16 / 30)  # the truth: 4 s + 16 frames at 30 fps
    t = 4.3  # inside the mislabelled stretch
    assert ia.in_closed_intervals(t, ia.decimal_intervals(left))  # paper: speaking
    assert not ia.in_half_open_intervals(t, left.speaking)  # corrected: still listening


def test_paper_intervals_are_closed():
    assert ia.in_closed_intervals(2.0, [(1.0, 2.0)]) and ia.in_closed_intervals(1.0, [(1.0, 2.0)])
    assert not ia.in_half_open_intervals(2.0, [(1.0, 2.0)])
    assert ia.in_closed_intervals(0.0, [(0.0, 0.0)])  # [[0, 0]]: t = 0 counts as speaking in the script
    assert not ia.in_half_open_intervals(0.0, [(0.0, 0.0)])


def test_square_box_is_shifted_inside_then_clipped():
    assert ia.square_box((10, 20, 50, 100), 640, 480) == (0.0, 20.0, 80.0, 100.0)  # shifted right by 10
    assert ia.square_box((600, 10, 640, 50), 640, 480) == (600.0, 10.0, 640.0, 50.0)
    assert ia.square_box((620, 200, 640, 260), 640, 480) == (580.0, 200.0, 640.0, 260.0)  # shifted left
    x1, y1, x2, y2 = ia.square_box((0, 0, 100, 700), 640, 480)  # larger than the image: clipped
    assert (x1, y1, x2, y2) == (0.0, 0.0, 640.0, 480.0)


def test_crop_size_is_the_largest_int_side_but_never_below_224():
    assert ia.paper_crop_size(np.array([[100.0, 150.9], [220.0, 180.0]])) == 224.0
    assert ia.paper_crop_size(np.array([[300.9, 250.0], [180.0, 299.0]])) == 300.0  # int() of the side
    # only frames where every person has a box count (the script's pass 1 needs both faces)
    assert ia.paper_crop_size(np.array([[400.0, np.nan], [230.0, 240.0]])) == 240.0


def _still_landmarks(n, k_points=478):
    return np.zeros((n, k_points, 2)) + np.random.default_rng(3).uniform(-50, 50, size=(k_points, 2))


def test_paper_crop_centre_follows_an_ema():
    n = 6
    raw = np.zeros((n, 2))
    raw[2:, 0] = 5.0  # a 5 px step, below the 10 px gate
    lms = _still_landmarks(n) + 100.0  # the face itself does not move
    tr = ia.paper_track(raw, lms, MP, crop_size=224.0)
    c = [0.0, 0.0]
    for k in range(2, n):
        c.append(0.7 * 5.0 + 0.3 * c[-1])
    np.testing.assert_allclose(tr.centers[:, 0], c)
    assert not tr.center_outlier.any() and not tr.landmark_outlier.any()
    # the landmarks live in the moving crop, so the centre's motion is what is measured (M = 224: x1)
    np.testing.assert_allclose(tr.motion[1:], np.abs(np.diff(c)))


def test_paper_centre_gate_freezes_for_good():
    n = 8
    raw = np.zeros((n, 2))
    raw[3:, 1] = 15.0  # a genuine 15 px shift that stays: beyond the 10 px gate
    tr = ia.paper_track(raw, _still_landmarks(n), MP, crop_size=224.0)
    assert list(tr.center_outlier) == [False] * 3 + [True] * 5  # sticky: the stable centre never moves again
    np.testing.assert_allclose(tr.centers, 0.0)


def test_paper_landmark_gate_is_sticky_and_hides_real_motion():
    n = 10
    lms = _still_landmarks(n)
    lms[3:7] += [12.0, 0.0]  # the whole face moves 12 units (> 10) for four frames, then comes back
    tr = ia.paper_track(np.zeros((n, 2)), lms, MP, crop_size=224.0)
    assert list(tr.landmark_outlier) == [False] * 3 + [True] * 4 + [False] * 3
    np.testing.assert_allclose(tr.motion[1:], 0.0)  # two 12-unit movements, zero measured motion
    # below the gate the same movement is measured
    small = _still_landmarks(n)
    small[3:] += [8.0, 0.0]
    tr = ia.paper_track(np.zeros((n, 2)), small, MP, crop_size=224.0)
    assert not tr.landmark_outlier.any()
    assert tr.motion[3] == pytest.approx(8.0) and np.nansum(tr.motion) == pytest.approx(8.0)


def test_paper_scales_by_224_over_m():
    n = 3
    lms = _still_landmarks(n)
    lms[2] += [4.48, 0.0]
    tr = ia.paper_track(np.zeros((n, 2)), lms, MP, crop_size=448.0)
    assert tr.motion[2] == pytest.approx(2.24)


def test_paper_first_frame_of_a_person_contributes_nothing():
    n = 6
    raw = np.zeros((n, 2))
    lms = _still_landmarks(n)
    raw[:2] = np.nan
    lms[:2] = np.nan  # the person appears at frame 2
    tr = ia.paper_track(raw, lms, MP, crop_size=224.0)
    assert np.isnan(tr.motion[:3]).all() and np.isfinite(tr.motion[3:]).all()


@pytest.mark.parametrize(
    "counts, ok",
    [([2, 2, 2, 2], True), ([0, 0, 2, 2], True), ([2, 2, 1, 2], False), ([1, 2, 2], False), ([2, 2, 0], False),
     ([0, 0, 0], False)],
)
def test_paper_failure_rule(counts, ok):
    assert (ia.paper_failure(counts, 2) is None) == ok


# =============================================================================================
# corrected mode: analytic cases


def test_displacements_are_exact():
    pts = np.zeros((4, 22, 2))
    pts[:, :, 0] = np.array([0.0, 3.0, 3.0, 7.0])[:, None]
    pts[3, :, 1] = 3.0
    np.testing.assert_allclose(ia.displacements(pts), [np.nan, 3.0, 0.0, 5.0])


def _walk(n, step=(1.0, 0.0), noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    pts = np.zeros((n, 22, 2)) + rng.uniform(-40, 40, (22, 2))
    pts += np.arange(n)[:, None, None] * np.asarray(step)
    return pts + rng.normal(0, noise, pts.shape)


def test_spike_test_rejects_one_frame_glitches_only():
    pts = _walk(30, noise=0.2)
    glitch = pts.copy()
    glitch[12] += [30.0, -20.0]  # the mesh lands elsewhere for one frame
    flags, _, thr = ia.spike_frames(glitch)
    assert thr == pytest.approx(ia.SPIKE_FLOOR)
    assert np.flatnonzero(flags).tolist() == [12]
    step = pts.copy()
    step[12:] += [30.0, 0.0]  # a genuine fast move that stays: kept
    assert not ia.spike_frames(step)[0].any()
    blink = pts.copy()
    blink[12, 10:22] += [0.0, 4.0]  # eyelids close for one frame: ~2 units on the 22-point mean
    assert not ia.spike_frames(blink)[0].any()


def test_spike_threshold_rises_with_the_noise():
    flags, dev, thr = ia.spike_frames(_walk(60, noise=6.0))
    assert thr > ia.SPIKE_FLOOR and not flags.any()


def test_corrected_track_scales_each_person_by_their_median_box():
    pts = _walk(5, step=(2.0, 0.0))
    sides = np.array([110.0, 112.0, 112.0, 500.0, 112.0])  # one bad box does not move the median
    tr = ia.corrected_track(pts, sides, np.arange(5) / 25.0)
    assert tr.side == 112.0 and tr.scale == pytest.approx(2.0)
    np.testing.assert_allclose(tr.motion[1:], 4.0)
    np.testing.assert_allclose(tr.step_motion[1:], 4.0)  # at 25 fps the 1/25 s grid is the frames


# =============================================================================================
# the metric on synthetic frames (two people, analytic answers)


@pytest.fixture()
def two_people():
    """24 fps, 2 s. Left listens during the first second (moves 0.5 px/frame, box 112 px ->
    x2 scale), right during the second (3 px/frame, box 224 px -> x1)."""
    fps, n, dur = 24.0, 48, 2.0
    left = person("left", [(1.0, 2.0)], dur, raw=[(1.0, 2.0)])
    right = person("right", [(0.0, 1.0)], dur, raw=[(0.0, 1.0)])
    lb, ll = moving_person(n, (0.5, 0.0), 112, start=(150, 200), seed=1)
    rb, rl = moving_person(n, (0.0, 3.0), 224, start=(450, 200), seed=2)
    boxes = [[lb[t], rb[t]] for t in range(n)]
    lms = [[ll[t], rl[t]] for t in range(n)]
    return make_clip([left, right], dur), fps, boxes, lms


def test_corrected_value_on_an_analytic_clip(two_people):
    clip, fps, boxes, lms = two_people
    res = feed(ia.Interactivity(), clip, fps, boxes, lms)
    assert res.status == "ok", res.reason
    # per 1/25 s on the grid j / 25 (j = 0..48 inside 0..47/24 s), each grid time holding frame
    # floor(24 j / 25): left (1 unit per frame: 0.5 px x 224/112) listens on steps j = 1..24, which
    # span frames 0..23 (23 frames); right (3 units per frame) on j = 26..48, frames 24..46 (22)
    assert res.per_person == {"left": pytest.approx(23 / 24), "right": pytest.approx(3 * 22 / 23)}
    assert res.value == pytest.approx((23 * 1.0 + 22 * 3.0) / 47)
    d = res.details
    assert d["per_person"]["left"]["n_listening_steps_used"] == 24 and d["per_person"]["right"]["scale"] == 1.0
    assert d["per_person"]["left"]["per_frame_mean"] == pytest.approx(1.0)
    assert d["interactivity_25fps"] == res.value
    assert d["mode"] == "corrected" and d["backend"] == "mediapipe-tasks" and d["fps"] == 24.0
    # a still frame: the background's motion is exactly zero (LK on identical images)
    assert d["camera"]["compensated"] is True and d["camera"]["mean_motion_px"] == 0.0
    assert d["camera"]["share_removed"] == pytest.approx(0.0, abs=1e-12)


def test_paper_value_on_the_same_clip(two_people):
    clip, fps, boxes, lms = two_people
    res = feed(ia.Interactivity("paper"), clip, fps, boxes, lms)
    assert res.status == "ok", res.reason
    # paper: one M = 224 for both (boxes <= 224), fixed boxes so a fixed crop centre: raw pixels.
    # left listens at t = k/24 < 1 (k = 1..23, frame 0 has no previous), right at t > 1 (k = 25..47)
    assert res.per_person == {"left": pytest.approx(0.5), "right": pytest.approx(3.0)}
    assert res.value == pytest.approx((23 * 0.5 + 23 * 3.0) / 46)
    assert res.details["crop_size_M"] == 224.0


def test_fps_normalised_value_is_frame_rate_free(two_people):
    clip, fps, boxes, lms = two_people
    full = feed(ia.Interactivity(), clip, fps, boxes, lms)
    half = feed(ia.Interactivity(), clip, fps / 2, boxes[::2], lms[::2], times=[k / 24 for k in range(0, 48, 2)])
    # per 1/25 s whatever the frame rate (the per-frame mean doubles): frames floor(12 j / 25):
    # left j = 1..24 spans 11 frames of 2 units; right j = 26..47 (the last frame is at 23/12 s)
    # spans 10 frames of 6 units
    assert half.per_person == {"left": pytest.approx(22 / 24), "right": pytest.approx(60 / 22)}
    assert half.details["per_person"]["left"]["per_frame_mean"] == pytest.approx(2.0)


def test_gaps_and_glitches_are_skipped_and_counted(two_people):
    clip, fps, boxes, lms = two_people
    boxes = [list(b) for b in boxes]
    lms = [[x.copy() for x in lm] for lm in lms]
    boxes[5][0], lms[5][0] = None, None  # left missing for one frame
    lms[10][0][list(MP)] += 40.0  # a one-frame glitch of left's eyes
    res = feed(ia.Interactivity(), clip, fps, boxes, lms)
    left = res.details["per_person"]["left"]
    assert res.status == "ok"
    # frame 5 is on screen at grid time 6/25 only, frame 10 at 11/25: each invalidates the 2 steps
    # touching that grid time
    assert left["n_missing_frames"] == 1 and left["n_rejected"]["glitch"] == 1
    assert left["n_rejected"]["glitch_runs"] == {"1": 1, "2": 0, "3": 0} and left["n_rejected"]["gap_edge"] == 0
    assert left["n_skipped_invalid"] == 4 and left["n_listening_steps_used"] == 24 - 4
    # neither the gap nor the glitch leaks into the value: 20 steps of one frame (1 unit), but step 1
    # holds frame 0 twice
    assert res.per_person["left"] == pytest.approx(19 / 20)


def test_a_person_who_never_listens_has_no_value_but_the_clip_scores():
    n, fps, dur = 24, 24.0, 1.0
    b0, l0 = moving_person(n, (1.0, 0.0), 224, start=(150, 200))
    b1, l1 = moving_person(n, (1.0, 0.0), 224, start=(450, 200))
    clip = make_clip([person("left", [], dur), person("right", [(0.0, 1.0)], dur)], dur)
    res = feed(ia.Interactivity(), clip, fps, [[a, b] for a, b in zip(b0, b1)], [[a, b] for a, b in zip(l0, l1)])
    assert res.status == "ok" and res.per_person["right"] is None
    assert res.value == pytest.approx(22 / 23, rel=1e-6)  # 23 steps of 1/25 s span 22 frames of 1 px


def test_failures_are_results_with_reasons(two_people):
    clip, fps, boxes, lms = two_people
    boxes = [list(b) for b in boxes]
    lms = [list(lm) for lm in lms]
    for t in range(0, 30):
        boxes[t][1], lms[t][1] = None, None
    res = feed(ia.Interactivity(), clip, fps, boxes, lms)
    assert res.status == "failed" and res.value is None
    assert res.reason == "person right has landmarks in 18 of 48 frames (< 50%)"
    boxes2 = [list(b) for b in two_people[2]]
    lms2 = [list(lm) for lm in two_people[3]]
    boxes2[20][1], lms2[20][1] = None, None  # one missed frame: fine in corrected mode ...
    assert feed(ia.Interactivity(), clip, fps, boxes2, lms2).status == "ok"
    paper = feed(ia.Interactivity("paper"), clip, fps, boxes2, lms2)  # ... fails the script's rule
    assert paper.status == "failed" and paper.value is None
    assert paper.reason.startswith("paper failure rule: 1 frame(s) after frame 0")


def test_metric_contract_and_params():
    m, p = ia.Interactivity(), ia.Interactivity("paper")
    assert m.name == "interactivity" and m.higher_is_better and m.needs == {"faces", "landmarks"}
    assert m.params()["mode"] == "corrected" and p.params()["ema"] == 0.7 and m.params() != p.params()
    with pytest.raises(ValueError, match="unknown mode"):
        ia.Interactivity("v2")


def test_frame_table_rows(two_people):
    clip, fps, boxes, lms = two_people
    res = feed(ia.Interactivity(frame_table=True), clip, fps, boxes, lms)
    rows = res.details["frame_table"]
    assert len(rows) == 2 * 48
    r = next(r for r in rows if r["frame"] == 5 and r["person"] == "left")
    assert r["listening"] and r["used"] and r["valid"] and not r["outlier"]
    assert r["motion"] == pytest.approx(1.0) and len(r["points"]) == 22 and len(r["crop_box"]) == 4


# =============================================================================================
# ground truth: a real face moved by known transforms (issue item 1)


FPS = 25
# still 0-14 | translation 15-38 (back and forth) | still 39-48 | rotation 49-72 (back and forth) | still 73-82
TRANSLATE = range(15, 39)
ROTATE = range(49, 73)
N_FRAMES = 83


def _poses():
    from interactive_eyes.faces.synthetic import Pose

    tx = ty = a = 0.0
    poses = []
    for k in range(N_FRAMES):
        if k in TRANSLATE:
            sign = 1 if (k - TRANSLATE.start) < 12 else -1
            tx, ty = tx + sign * 2.5, ty + sign * 1.0
        if k in ROTATE:
            sign = 1 if (k - ROTATE.start) % 16 < 8 else -1
            a += sign * 2.0
        poses.append(Pose(tx, ty, a))
    return poses


@pytest.fixture(scope="module")
def synthetic_video(tmp_path_factory):
    from interactive_eyes.faces.synthetic import Shot, astronaut
    from interactive_eyes.media.video import write_video

    shot = Shot(astronaut(), zoom=2.0, size=(640, 480))
    poses = _poses()
    root = tmp_path_factory.mktemp("synthetic")
    moving = write_video(root / "moving.mp4", (shot.render(p) for p in poses), FPS)
    still = write_video(root / "still.mp4", (shot.render(poses[0]) for _ in range(40)), FPS)
    return shot, poses, moving, still


def _segments_listening_only(frames, duration):
    """Speaking = everything except [first, last] frame times of each window (so the person
    listens exactly while moving)."""
    listen = [(w.start / FPS - 0.5 / FPS, (w.stop - 1) / FPS + 0.5 / FPS) for w in frames]
    return list(complement(listen, duration))


def test_recovers_the_true_keypoint_motion(synthetic_video):
    from interactive_eyes.app.cmd_interactivity import score_video
    from interactive_eyes.faces.synthetic import true_displacement
    from interactive_eyes.faces.track import FaceTracker
    from interactive_eyes.media.video import read_frames

    shot, poses, moving, _ = synthetic_video
    dur = N_FRAMES / FPS
    clip = make_clip([person("p0", _segments_listening_only([TRANSLATE, ROTATE], dur), dur)], dur)
    # the whole photo moves in this video, which is a camera pan by any definition: with the
    # camera tiers on it is removed (the photo's corners outside the person regions at 640 px, or
    # the second tier, tests/app/test_cmd_interactivity.py); here the tracker and the arithmetic are measured
    res = score_video(moving, clip, frame_table=True, camera=False)
    assert res.status == "ok", res.reason
    assert score_video(moving, clip).details["camera"]["compensated"] is True
    # truth: the 22 keypoints found on the first frame, carried through the known transforms
    first = read_frames(moving)[0][0]
    with FaceTracker(1) as tr:
        lm = tr.update(first)[1][0][list(MP)]
    photo_pts = shot.to_photo(poses[0], lm)
    truth_px = true_displacement(shot, poses, photo_pts)
    scale = res.details["per_person"]["p0"]["scale"]
    motion = np.array([np.nan if r["motion"] is None else r["motion"] for r in res.details["frame_table"]])
    used = np.array([r["used"] for r in res.details["frame_table"]])
    for window in (TRANSLATE, ROTATE):
        k = np.array([i for i in window if used[i]])
        assert len(k) == len(window) - 1  # every displacement inside the window, none across its edges
        measured, true = motion[k].mean(), truth_px[k].mean() * scale
        assert true > 2.0
        assert measured == pytest.approx(true, rel=0.05), (window, measured, true)
    all_true = np.nanmean(np.where(used, truth_px * scale, np.nan))
    assert res.value == pytest.approx(all_true, rel=0.05)
    # the still stretches outside the listening windows barely move
    assert np.nanmean(motion[1:15]) < 0.1


def test_a_still_video_scores_at_most_0_1(synthetic_video):
    from interactive_eyes.app.cmd_interactivity import score_video

    *_, still = synthetic_video
    clip = make_clip([person("p0", [], 40 / FPS)], 40 / FPS)
    res = score_video(still, clip)
    assert res.status == "ok" and res.value <= 0.1
    assert res.details["n_listening_steps_used"] == 39


# =============================================================================================
# interact_11 (needs IE_BENCH_TEST_DATA): both modes, shake, mirror, half resolution, 12 fps, 3 people

# corrected: version 2.2 (camera from outside the faces, clip 11's wall being textureless; 2.1, with
# 200 camera features and a fixed retry, gave 0.6908 = 0.8124 / 0.5507, shake 0.6497); version
# 2.0 (no compensation possible there) gave 0.6865 = 0.6958 / 0.6757, which is now
# value_without_compensation; the +-1 px shake gave 1.8432 (+168 %) in 2.0
# version 3.0: the default landmark backend is mediapipe-tasks (face_landmarker.task through LiteRT);
# the legacy 0.10.21 graph gives the 2.2 figures above (0.6884 = 0.8379 / 0.5161, uncompensated
# 0.6865, shake 0.6752, paper 0.4555 = 0.5763 / 0.3324; docs/landmark_backends.md)
CLIP11 = {"corrected": 0.6847, "left": 0.8656, "right": 0.4762, "uncompensated": 0.6803, "shake": 0.6879,
          "paper": 0.4226, "paper_left": 0.5301, "paper_right": 0.3130}


def _track(frames, n_people):
    from interactive_eyes.faces.track import FaceTracker

    with FaceTracker(n_people) as tr:
        out = [tr.update(f) for f in frames]
        assert tr.summary().status == "ok", tr.summary().reason
    return [o[0] for o in out], [o[1] for o in out], tr.summary()


@pytest.fixture(scope="module")
def interact11(interact_11):
    """Every variant tracked once (frames transformed in memory, so only the transform differs)."""
    import cv2

    from interactive_eyes.data.manifest import load
    from interactive_eyes.faces.synthetic import Shot, astronaut
    from interactive_eyes.media.video import probe, read_frames

    frames, times = read_frames(interact_11)
    h, w = frames.shape[1:3]
    fps = probe(interact_11).fps
    rng = np.random.default_rng(0)
    shake = rng.integers(-1, 2, size=(len(frames), 2)).astype(np.float32)  # +-1 px whole-frame shake
    shaken = np.stack([cv2.warpAffine(f, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REFLECT_101)
                       for f, (dx, dy) in zip(frames, shake)])
    margin = 50  # a 1 px/frame pan that turns back every 50 frames, inside a crop of 50 px less width
    offset = [margin - abs(k % (2 * margin) - margin) for k in range(len(frames))]
    variants = {
        "original": (frames, times, fps),
        "shake": (shaken, times, fps),
        "crop": (np.ascontiguousarray(frames[:, :, : w - margin]), times, fps),
        "pan": (np.stack([f[:, o: o + w - margin] for f, o in zip(frames, offset)]), times, fps),
        "mirrored": (frames[:, :, ::-1], times, fps),
        "half": (np.stack([cv2.resize(f, (w // 2, h // 2), interpolation=cv2.INTER_AREA) for f in frames]), times, fps),
        "12fps": (frames[::2], np.arange(len(frames[::2])) / (fps / 2), fps / 2),
    }
    tracked = {}
    for name, (fr, ts, f) in variants.items():
        boxes, lms, summary = _track(fr, 2)
        tracked[name] = (boxes, lms, ts, f, (fr.shape[2], fr.shape[1]), summary)
    tracked["frames"] = {k: variants[k][0] for k in ("original", "shake", "crop", "pan")}
    panel = Shot(astronaut(), zoom=1.7, size=(320, h)).render()
    three = np.stack([np.concatenate([f, panel], axis=1) for f in frames])
    boxes, lms, summary = _track(three, 3)
    tracked["three"] = (boxes, lms, times, fps, (three.shape[2], three.shape[1]), summary)
    return load().clip("interact_11"), tracked


def _score(clip, tracked, mode, frames=None):
    boxes, lms, times, fps, size, _ = tracked
    return feed(ia.Interactivity(mode), clip, fps, boxes, lms, size=size, times=list(times), frames=frames)


def _swapped(clip):
    """The clip as seen in the mirrored video: the right person is now on the left."""
    people = [Person(role=role, audio=p.audio, speaking=p.speaking, listening=p.listening, speaking_raw=p.speaking_raw)
              for role, p in zip(("left", "right"), reversed(clip.people))]
    return make_clip(people, clip.duration, clip.id)


def test_interact_11_both_modes(interact11):
    clip, tracked = interact11
    frames = tracked["frames"]["original"]
    corrected = _score(clip, tracked["original"], "corrected", frames)
    paper = _score(clip, tracked["original"], "paper", frames)
    assert corrected.status == paper.status == "ok"
    # listening: timecode segments (left listens until 4.533 s, right from there) on the 1/25 s grid,
    # vs the script's decimal reading (left until 4.16 s and again after 8.18 s; right after 4.16 s)
    c, p = corrected.details["per_person"], paper.details["per_person"]
    assert (c["left"]["n_listening_steps_used"], c["right"]["n_listening_steps_used"]) == (113, 98)
    assert (p["left"]["n_listening_frames_used"], p["right"]["n_listening_frames_used"]) == (107, 105)
    assert paper.details["crop_size_M"] == 224.0  # faces are ~180-195 px: the script measures raw pixels
    # values measured on the reference machine (mediapipe-tasks through LiteRT 2.3.0, CPU; the same under
    # numpy 1.26 and 2.4); they reproduce to 4 digits

    assert corrected.value == pytest.approx(CLIP11["corrected"], abs=1e-4)
    assert corrected.per_person == {"left": pytest.approx(CLIP11["left"], abs=1e-4),
                                    "right": pytest.approx(CLIP11["right"], abs=1e-4)}
    # paper rules on the tracker's landmarks (ROIs carried by the faces' image motion; with held
    # ROIs, version 1, the same rules gave 0.4953 = 0.5732 / 0.4160)
    assert paper.value == pytest.approx(CLIP11["paper"], abs=1e-4)
    assert paper.per_person == {"left": pytest.approx(CLIP11["paper_left"], abs=1e-4),
                                "right": pytest.approx(CLIP11["paper_right"], abs=1e-4)}
    # the pink wall behind them has too few features for the background tier: the second tier
    # (outside the 1.2x face boxes: hair, shirts, torsos) gives most steps (190 of 204; the
    # background tier 13: a few corners at the frame's edges), said and counted
    cam = corrected.details["camera"]
    assert cam["compensated"] is True and cam["source"] == "bodies" and cam["n_steps"] == 204
    per = cam["n_steps_per_source"]
    assert per["bodies"] > 0.8 * 204 and per["background"] + per["bodies"] + per["none"] == 204
    assert cam["value_without_compensation"] == pytest.approx(CLIP11["uncompensated"], abs=1e-4)
    # noise floor beside the value: an upper estimate, below the value itself
    assert 0.1 < c["left"]["noise_floor"] < corrected.per_person["left"]


def test_interact_11_shaken_by_the_camera(interact11):
    """+-1 px whole-frame shake (integer shifts, reflected border). Clip 11's wall is textureless;
    the second tier removes the shake from what is not a face: < 10 % change (issue 10's target;
    version 2.0, without it: +168 %)."""
    clip, tracked = interact11
    base = _score(clip, tracked["original"], "corrected", tracked["frames"]["original"])
    shaken = _score(clip, tracked["shake"], "corrected", tracked["frames"]["shake"])

    cam = shaken.details["camera"]
    assert cam["compensated"] is True and cam["source"] == "bodies" and cam["mean_motion_px"] > 1.0
    assert shaken.value == pytest.approx(base.value, rel=0.10)
    assert shaken.value == pytest.approx(CLIP11["shake"], abs=1e-4)
    assert cam["value_without_compensation"] > 2.5 * base.value  # what the shake adds uncompensated


def test_interact_11_slow_pan(interact11):
    """A 1 px/frame horizontal pan (a window 50 px narrower than the frame sliding right and back):
    against the same window held still, the value changes by < 10 % (issue 10's target)."""
    clip, tracked = interact11
    still = _score(clip, tracked["crop"], "corrected", tracked["frames"]["crop"])
    panned = _score(clip, tracked["pan"], "corrected", tracked["frames"]["pan"])
    cam = panned.details["camera"]
    assert cam["compensated"] is True and cam["source"] == "bodies"
    assert 0.9 < cam["mean_motion_px"] < 1.3  # the pan, plus the bodies' own sway the still window shows
    assert panned.value == pytest.approx(still.value, rel=0.10)
    assert cam["value_without_compensation"] > 1.4 * still.value


def test_interact_11_mirrored_swaps_the_people(interact11):
    clip, tracked = interact11
    original = _score(clip, tracked["original"], "corrected")
    mirrored = _score(_swapped(clip), tracked["mirrored"], "corrected")
    assert mirrored.status == "ok"
    assert mirrored.per_person["left"] == pytest.approx(original.per_person["right"], rel=0.03)
    assert mirrored.per_person["right"] == pytest.approx(original.per_person["left"], rel=0.03)


def test_interact_11_half_resolution(interact11):
    clip, tracked = interact11
    full = _score(clip, tracked["original"], "corrected")
    half = _score(clip, tracked["half"], "corrected")
    assert half.value == pytest.approx(full.value, rel=0.05)
    # the script's rule is not resolution-free: raw pixels below M = 224
    assert _score(clip, tracked["half"], "paper").value < 0.75 * _score(clip, tracked["original"], "paper").value


def test_interact_11_at_12_fps(interact11):
    clip, tracked = interact11
    full = _score(clip, tracked["original"], "corrected")
    twelve = _score(clip, tracked["12fps"], "corrected")
    assert twelve.details["fps"] == 12.0
    assert twelve.value == pytest.approx(full.value, rel=0.05)  # per 1/25 s at both rates
    # the per-frame mean is not frame-rate free
    assert twelve.details["per_person"]["left"]["per_frame_mean"] > 1.5 * full.details["per_person"]["left"]["per_frame_mean"]


def test_three_people_bound_left_to_right(interact11):
    clip, tracked = interact11
    boxes3, *_, summary = tracked["three"]
    boxes2 = tracked["original"][0]
    xs = [c[0] for c in summary.binding_centers]
    assert xs == sorted(xs) and xs[2] > 832  # the added face is the third person, on the right
    for b3, b2 in zip(boxes3, boxes2):  # the two real people keep their tracks
        for k in range(2):
            d = np.hypot(*(np.subtract(b3[k].center, b2[k].center)))
            assert d < 0.05 * b2[k].side
    third = person("p2", [], clip.duration)  # the photo listens throughout and never moves
    people = [Person(role=f"p{k}", audio=p.audio, speaking=p.speaking, listening=p.listening) for k, p in
              enumerate(clip.people)] + [third]
    res = _score(make_clip(people, clip.duration, clip.id), tracked["three"], "corrected")
    two = _score(clip, tracked["original"], "corrected")
    assert res.status == "ok" and set(res.per_person) == {"p0", "p1", "p2"}
    assert res.per_person["p0"] == pytest.approx(two.per_person["left"], rel=0.10)
    assert res.per_person["p1"] == pytest.approx(two.per_person["right"], rel=0.10)
    # a still photo read through a fixed ROI: its landmarks never change (a detector-placed crop
    # that jitters with the moving people next to it measured 0.26 here)
    assert res.per_person["p2"] < 0.01
