"""Camera motion from the background, on a real photo moved as a camera would move it (known
shake, pan, zoom), and the cases where it must decline."""

from __future__ import annotations

import numpy as np
import pytest

from interactive_eyes.faces.camera import CameraMotion, cumulative, motion_at, person_mask
from interactive_eyes.faces.synthetic import ASTRONAUT_FACE_SIDE, Pose, Shot, astronaut

SIZE = (640, 480)
ZOOM = 1.5


def _shot(zoom=ZOOM):
    return Shot(astronaut(), zoom=zoom, size=SIZE)


def _face_box(shot, pose):
    """The face's box in the frame (the photo's known face square carried by the transform)."""
    half = ASTRONAUT_FACE_SIDE / 2
    fc = np.asarray(shot.face_center)
    corners = shot.apply(pose, np.array([fc - half, fc + half]))
    return np.concatenate([corners.min(axis=0), corners.max(axis=0)])


def _true_step(shots, poses, k):
    """Frame k-1 pixels -> frame k pixels."""
    a = np.vstack([shots[k - 1].matrix(poses[k - 1]), [0, 0, 1]])
    b = np.vstack([shots[k].matrix(poses[k]), [0, 0, 1]])
    return (b @ np.linalg.inv(a))[:2]


def _run(shots, poses):
    cam = CameraMotion()
    steps = [cam.update(s.render(p), [_face_box(s, p)]) for s, p in zip(shots, poses)]
    return steps


def _errors(shots, poses, steps, at):
    """Per step: how far the estimated and the true motion put the point ``at`` apart (px)."""
    out = []
    for k in range(1, len(steps)):
        est, true = steps[k].matrix, _true_step(shots, poses, k)
        out.append(np.linalg.norm((est - true) @ np.append(at, 1.0)))
    return np.array(out)


@pytest.mark.parametrize("amplitude", [0.5, 1.0, 2.0])
def test_shake_is_measured_to_a_twentieth_of_a_pixel(amplitude):
    """Sub-pixel and 1-2 px random whole-frame shake, bicubic resampling on every frame."""
    rng = np.random.default_rng(int(amplitude * 10))
    shot = _shot()
    poses = [Pose(*rng.uniform(-amplitude, amplitude, 2)) for _ in range(16)]
    steps = _run([shot] * len(poses), poses)
    assert all(s.ok for s in steps), [s.reason for s in steps if not s.ok]
    err = _errors([shot] * len(poses), poses, steps, np.array(SIZE) / 2)
    assert err.max() < 0.05, err
    # and it is not zero: the shake is there to be measured
    assert np.mean([s.shift_px for s in steps[1:]]) > 0.4 * amplitude


def test_slow_pan_and_zoom():
    """1 px/frame pan to the right, and a 0.3 %/frame zoom about the face."""
    shot = _shot()
    pan = [Pose(tx=float(k)) for k in range(12)]
    steps = _run([shot] * 12, pan)
    err = _errors([shot] * 12, pan, steps, np.array(SIZE) / 2)
    assert all(s.ok for s in steps) and err.max() < 0.05
    shots = [_shot(ZOOM * 1.003 ** k) for k in range(12)]
    still = [Pose()] * 12
    steps = _run(shots, still)
    assert all(s.ok for s in steps)
    corner = np.array([40.0, 40.0])  # far from the zoom's centre: a zoom error shows most here
    assert _errors(shots, still, steps, corner).max() < 0.1
    scale = [np.sqrt(np.linalg.det(s.matrix[:, :2])) for s in steps[1:]]
    np.testing.assert_allclose(scale, 1.003, atol=3e-4)


def test_a_still_shot_gives_exactly_the_identity():
    shot = _shot()
    frame = shot.render()
    cam = CameraMotion()
    steps = [cam.update(frame.copy(), [_face_box(shot, Pose())]) for _ in range(5)]
    assert all(s.ok for s in steps)
    for s in steps:
        np.testing.assert_array_equal(s.matrix, np.eye(2, 3))


def test_a_textureless_background_is_declined():
    """A flat wall gives no features: identity, not ok, with the reason."""
    frame = np.full((SIZE[1], SIZE[0], 3), 180, np.uint8)
    cam = CameraMotion()
    steps = [cam.update(frame, []) for _ in range(3)]
    assert steps[0].ok and not steps[1].ok and not steps[2].ok
    assert steps[1].reason == "0 background features (< 20)"
    np.testing.assert_array_equal(steps[1].matrix, np.eye(2, 3))


def test_the_person_is_not_background():
    """The face and body are masked: a person moving in front of a still background does not
    move the estimate."""
    shot = _shot()
    bg = shot.render()
    face = _face_box(shot, Pose())
    mask = person_mask(bg.shape[:2], [face])
    x1, y1, x2, y2 = face
    assert mask[int((y1 + y2) / 2), int((x1 + x2) / 2)] == 0 and mask[SIZE[1] - 1, int((x1 + x2) / 2)] == 0
    assert mask[5, 5] == 255 or mask[5, SIZE[0] - 5] == 255
    cam = CameraMotion()
    steps = []
    for k in range(8):
        frame = bg.copy()
        r0, r1, c0, c1 = int(y1), int(y2), int(x1), int(x2)
        frame[r0:r1, c0:c1] = np.roll(bg[r0:r1, c0:c1], 3 * k, axis=1)  # the face region moves
        steps.append(cam.update(frame, [face]))
    assert all(s.ok for s in steps)
    assert max(s.shift_px for s in steps) < 1e-3


def test_cumulative_and_motion_at():
    steps = [np.eye(2, 3), np.array([[1.0, 0, 2.0], [0, 1.0, -1.0]]), np.array([[1.0, 0, 1.0], [0, 1.0, 0.0]])]
    cum = cumulative(steps)
    np.testing.assert_allclose(cum[2][:, 2], [-3.0, 1.0])  # frame 2 -> frame 0 undoes both steps
    np.testing.assert_allclose(motion_at(steps, np.zeros((1, 2)))[1:], [np.hypot(2, 1), 1.0])
