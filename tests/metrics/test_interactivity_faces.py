"""Known rigid head motion over a still scene, on several faces, with and without camera shake:
the tracker + MediaPipe + the metric against the analytic displacement."""

from __future__ import annotations

import os

import numpy as np
import pytest

from interactive_eyes.data.manifest import Clip, Person
from interactive_eyes.faces.landmarks import EYE_BROW_POINTS
from interactive_eyes.faces.synthetic import Pose, Shot, astronaut, render_head_motion
from interactive_eyes.faces.track import FaceTracker
from interactive_eyes.metrics import interactivity as ia
from interactive_eyes.metrics.base import ClipContext, FrameData
from interactive_eyes.media.video import VideoInfo

FPS, N, FACE_PX = 25.0, 40, 150.0


def _photo(name):
    if name == "astronaut":
        return astronaut()
    root = os.environ.get("IE_BENCH_TEST_DATA")
    if not root:
        pytest.skip("IE_BENCH_TEST_DATA is not set")
    from PIL import Image

    return np.asarray(Image.open(os.path.join(root, "anytalker_examples", "images", name)).convert("RGB"))


def _track(frames):
    with FaceTracker(1) as tr:
        return [tr.update(f) for f in frames]


def _score(frames, camera=True, out=None):
    out = _track(frames) if out is None else out
    clip = Clip(id="s", duration=N / FPS, people=(Person(role="p", audio="p.wav", speaking=(), listening=((0.0, N / FPS),)),))
    info = VideoInfo(path="s.mp4", width=640, height=480, fps=FPS, n_frames=N, duration=N / FPS, has_audio=False,
                     audio_rate=None, audio_duration=None, codec="h264")
    m = ia.Interactivity(camera=camera)
    st = m.start(ClipContext(clip=clip, video_path="s.mp4", info=info))
    for k, (f, (b, lm)) in enumerate(zip(frames, out)):
        m.update(st, FrameData(index=k, time=k / FPS, rgb=f, faces=b, landmarks=lm, landmark_backend="mediapipe-tasks"))
    return m.finish(st)


def _case(name, which, amplitude, shake, seed=0, pan=0.0, zoom_rate=0.0):
    """The face ``which`` (from the left) of photo ``name``, scaled to ~150 px, its head moving by a
    known 2-D sinusoid of ``amplitude`` px over the still scene, the scene shaken by +-``shake`` px,
    panned by ``pan`` px/frame and zoomed by ``zoom_rate`` per frame (about the face). Returns the
    frames and the true mean head displacement in the first frame's pixels."""
    img = _photo(name)
    with FaceTracker(2 if name.startswith("2p") else 1, landmarks=None) as tr:
        boxes = sorted((b for b in tr.update(img)[0] if b is not None), key=lambda b: b.center[0])
    box = boxes[which]
    zoom = FACE_PX / box.side
    shot = Shot(img, face_center=box.center, zoom=zoom, size=(640, 480))
    rng = np.random.default_rng(seed)
    head = [Pose(amplitude * np.sin(2 * np.pi * k / 10), 0.5 * amplitude * np.cos(2 * np.pi * k / 7)) for k in range(N)]
    cam = [Pose(*rng.uniform(-shake, shake, 2)) if shake else Pose() for _ in range(N)]
    cam = [Pose(c.tx + pan * k, c.ty) for k, c in enumerate(cam)]
    grow = (1.0 + zoom_rate) ** np.arange(N)
    shots = [Shot(img, face_center=box.center, zoom=zoom * g, size=(640, 480)) for g in grow]
    frames = [render_head_motion(s, c, h, radius=1.1 * FACE_PX * g) for s, c, h, g in zip(shots, cam, head, grow)]
    # the head's offset is in frame px at each frame's zoom; in the first frame's px it is / grow
    hx = np.array([[h.tx, h.ty] for h in head]) / grow[:, None]
    true_px = float(np.mean(np.linalg.norm(np.diff(hx, axis=0), axis=1)))  # every point moves with the head
    return frames, true_px


# (photo, face from the left, head motion amplitude px): frontal, three-quarter under a cap,
# stylised three-quarter. Measured ratios for every face at 1, 2 and 4 px: docs/interactivity.md.
FACES = [("astronaut", 0, 1.0), ("astronaut", 0, 4.0), pytest.param("2p-1.png", 0, 2.0, marks=pytest.mark.slow),
         pytest.param("2p-3.png", 0, 2.0, marks=pytest.mark.slow),
         pytest.param("2p-2.png", 0, 2.0, marks=pytest.mark.slow)]


@pytest.mark.parametrize("name, which, amplitude", FACES)
def test_known_head_motion_and_shake_on_several_faces(name, which, amplitude):
    # the target is +-15 %; measured 0.990-1.040 (docs), so 2-4 px is held to +-6 %, which
    # version 1's held ROI misses (1.08-1.37 at 2 px); 1 px motion carries more noise bias
    tol = 0.15 if amplitude < 2 else 0.06
    frames, true_px = _case(name, which, amplitude, 0.0)
    still = _score(frames)
    assert still.status == "ok", still.reason
    scale = still.details["per_person"]["p"]["scale"]
    truth = true_px * scale  # 25 fps: one frame per 1/25 s step
    assert still.value == pytest.approx(truth, rel=tol)
    shaken_frames, _ = _case(name, which, amplitude, 1.0)
    shaken = _score(shaken_frames)
    raw = _score(shaken_frames, camera=False)
    cam = shaken.details["camera"]
    assert cam["compensated"] and cam["n_fallback_steps"] == 0 and 0.8 < cam["mean_motion_px"] < 1.2
    # a textured scene: the background tier gives every step, the second tier is never needed
    assert cam["source"] == "background" and cam["n_steps_per_source"]["bodies"] == 0
    # the shake adds 8-120 % without compensation (more to slower motion) and < 10 % with it
    assert raw.value > 1.05 * still.value
    assert shaken.value == pytest.approx(still.value, rel=0.10)


@pytest.mark.parametrize("gap", [1, 6])
def test_grey_occlusion_over_the_face_changes_the_value_by_less_than_5_percent(gap):
    """The issue's case: grey frames over a listener's face. The model may still return a face on
    an occluded frame; the blank-crop test and the gap-edge rule keep it out of the value."""
    frames, true_px = _case("astronaut", 0, 2.0, 0.0)
    ref = _score(frames)
    occluded = [f.copy() for f in frames]
    for k in range(20, 20 + gap):
        occluded[k][120:360, 200:440] = 128  # the whole face region (the face is ~150 px at the centre)
    res = _score(occluded)
    assert res.status == "ok", res.reason
    d = res.details["per_person"]["p"]
    rejected = d["n_rejected"]["blank_crop"] + d["n_rejected"]["gap_edge"] + d["n_rejected"]["glitch"]
    assert d["n_missing_frames"] + rejected >= gap  # every occluded frame is out
    assert res.value == pytest.approx(ref.value, rel=0.05)
    # the tracker here finds no face on grey frames; when a model does return one (22 px off, as in
    # the issue), the blank-crop test rejects it
    out = _track(occluded)
    clean = _track(frames)
    box, lm = clean[20][0][0], clean[20][1][0]
    out[20] = ((box.shifted(22.0, 0.0),), (lm + [22.0, 0.0],))
    res = _score(occluded, out=out)
    d = res.details["per_person"]["p"]
    assert d["n_rejected"]["blank_crop"] == 1 and d["n_missing_frames"] == gap - 1
    assert res.value == pytest.approx(ref.value, rel=0.05)
    # without the blank-crop flags the jump is still caught: as a one-frame glitch between two good
    # frames (gap 1), as an unsupported jump at the edge of a gap (gap 6)
    eye = list(EYE_BROW_POINTS["mediapipe"])
    lms = np.stack([[np.full((22, 2), np.nan) if l[0] is None else l[0][eye]] for _, l in out])
    boxes = np.stack([[np.full(4, np.nan) if b[0] is None else b[0].as_array()] for b, _ in out])
    bare = ia.interactivity(lms, FPS, [[]], boxes=boxes).details["per_person"][0]["n_rejected"]
    assert (bare["glitch"], bare["gap_edge"]) == ((1, 0) if gap == 1 else (0, 1))


@pytest.mark.parametrize("pan, zoom_rate", [(1.0, 0.0), (0.0, 0.002)])
def test_slow_pan_and_zoom_change_the_value_by_less_than_10_percent(pan, zoom_rate):
    """A 1 px/frame pan, or a 0.2 %/frame zoom (8 % over the clip), of a textured scene with a
    listener moving by 2 px: compensated, the value stays that of the still camera and the truth."""
    frames, true_px = _case("astronaut", 0, 2.0, 0.0)
    still = _score(frames)
    moved_frames, true_moved = _case("astronaut", 0, 2.0, 0.0, pan=pan, zoom_rate=zoom_rate)
    moved = _score(moved_frames)
    cam = moved.details["camera"]
    assert cam["compensated"] and cam["n_fallback_steps"] == 0 and cam["source"] == "background"
    assert moved.value == pytest.approx(still.value, rel=0.10)
    scale = moved.details["per_person"]["p"]["scale"]
    assert moved.value == pytest.approx(true_moved * scale, rel=0.06)
    if pan:  # a pan moves the face in the frame: uncompensated, it is counted
        raw = _score(moved_frames, camera=False)
        assert abs(raw.value / still.value - 1) > abs(moved.value / still.value - 1)
