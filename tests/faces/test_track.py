"""The face tracker on synthetic videos of a real face photo whose placement is known."""

import numpy as np
import pytest

from interactive_eyes.faces.synthetic import ASTRONAUT_FACE_CENTER, Shot, astronaut
from interactive_eyes.faces.track import FaceTracker, assign, assignment_cost
from interactive_eyes.faces.types import FaceBox

BACKGROUND = 128


@pytest.fixture(scope="module")
def photo():
    return astronaut()


@pytest.fixture(scope="module")
def patches(photo):
    """Two different-looking faces (the photo and its mirror image) as 260x260 patches."""
    a = Shot(photo, zoom=1.5, size=(260, 260)).render()
    mirrored = np.ascontiguousarray(photo[:, ::-1])
    b = Shot(mirrored, face_center=(512 - ASTRONAUT_FACE_CENTER[0], ASTRONAUT_FACE_CENTER[1]), zoom=1.5,
             size=(260, 260)).render()
    return a, b


def compose(size, placed):
    """A grey frame of ``size`` (w, h) with each (patch, (x, y)) pasted at its top-left corner."""
    w, h = size
    frame = np.full((h, w, 3), BACKGROUND, np.uint8)
    for patch, (x, y) in placed:
        ph, pw = patch.shape[:2]
        frame[y:y + ph, x:x + pw] = patch
    return frame


def run(tracker, frames):
    out = [tracker.update(f, k / 25) for k, f in enumerate(frames)]
    return out, tracker.summary()


def test_still_video_gives_identical_landmarks(photo):
    frame = Shot(photo, size=(640, 480)).render()
    with FaceTracker(1) as tr:
        out, summary = run(tr, [frame.copy() for _ in range(4)])
    assert summary.status == "ok" and summary.n_missing == (0,)
    first = out[0][1][0]
    assert first.shape == (478, 2)
    for boxes, lms in out[1:]:
        np.testing.assert_array_equal(lms[0], first)  # static image mode: same pixels, same points
        assert boxes[0] == out[0][0][0]


@pytest.mark.parametrize("follow", ["image", "hold"])
def test_a_still_face_keeps_exactly_its_landmarks_while_a_neighbour_moves(patches, follow):
    """Each person is read through their own ROI, held still while their face is: the moving
    neighbour (which changes whatever a whole-frame detector sees) cannot move them."""
    a, b = patches
    frames = [compose((800, 360), [(a, (20, 40)), (b, (420 + 6 * k, 40 + 2 * k))]) for k in range(12)]
    with FaceTracker(2, roi_follow=follow) as tr:
        out, summary = run(tr, frames)
    assert summary.status == "ok" and summary.n_roi_moves[0] == 0 and summary.roi_follow == follow
    # held ROIs are re-placed as the neighbour moves away; followed ones are carried along by the
    # neighbour's measured image motion and never need it
    assert (summary.n_roi_moves[1] > 0) if follow == "hold" else (summary.n_roi_moves[1] == 0)
    for _, lms in out[1:]:
        np.testing.assert_array_equal(lms[0], out[0][1][0])
    moved = out[-1][1][1].mean(axis=0) - out[0][1][1].mean(axis=0)
    np.testing.assert_allclose(moved, [66.0, 22.0], atol=2.0)  # the neighbour is followed: 11 x (6, 2) px


def test_people_keep_their_identity_when_they_pass_each_other(patches):
    """Face A starts top-left and ends top-right, face B the opposite on a lower row. A per-frame
    left-to-right sort would swap them half way; the tracker must not."""
    a, b = patches
    n = 24
    xs = np.linspace(40, 600, n).round().astype(int)
    frames = [compose((900, 700), [(a, (int(x), 20)), (b, (int(900 - 260 - x), 420))]) for x in xs]
    with FaceTracker(2) as tr:
        out, summary = run(tr, frames)
    assert summary.status == "ok" and summary.bound_at == 0 and summary.n_missing == (0, 0)
    first_boxes, last_boxes = out[0][0], out[-1][0]
    assert first_boxes[0].center[0] < first_boxes[1].center[0]  # bound left to right
    assert last_boxes[0].center[0] > last_boxes[1].center[0]  # ... and followed across
    for boxes, _ in out:  # person 0 is always face A, on the upper row
        assert boxes[0].center[1] < 350 < boxes[1].center[1]


def test_missed_frames_are_gaps_not_failures(patches):
    a, b = patches
    frames = [compose((700, 360), [(a, (30, 50))] + ([] if 4 <= k < 7 else [(b, (400, 50))])) for k in range(10)]
    with FaceTracker(2) as tr:
        out, summary = run(tr, frames)
    assert summary.status == "ok" and summary.reason is None
    assert summary.n_missing == (0, 3) and summary.n_found == (10, 7)
    for k, (boxes, lms) in enumerate(out):
        hidden = 4 <= k < 7
        assert (boxes[1] is None) == hidden and (lms[1] is None) == hidden
        assert boxes[0] is not None
    assert out[7][0][1].center[0] > 400  # person 1 is picked up again where they were


def test_person_missing_from_most_frames_fails_the_clip_with_a_reason(patches):
    a, b = patches
    frames = [compose((700, 360), [(a, (30, 50))] + ([(b, (400, 50))] if k < 4 else [])) for k in range(10)]
    with FaceTracker(2) as tr:
        _, summary = run(tr, frames)
    assert summary.status == "failed"
    assert summary.reason == "person 1 (position 2 of 2 from the left) found in 4 of 10 frames (< 50%)"


def test_fewer_faces_than_people_fails(patches):
    a, b = patches
    frames = [compose((700, 360), [(a, (30, 50)), (b, (400, 50))])] * 3
    with FaceTracker(3) as tr:
        out, summary = run(tr, frames)
    assert out[0] == ((None, None, None), (None, None, None))
    assert summary.status == "failed" and summary.bound_at is None
    assert summary.reason == "fewer faces than people: at most 2 of 3 faces found in any of 3 frames"


def test_binding_waits_for_all_people_and_keeps_the_largest_faces(photo, patches):
    a, b = patches
    small = Shot(photo, zoom=1.25, size=(200, 200)).render()
    empty = compose((900, 360), [(a, (20, 50))])
    full = compose((900, 360), [(a, (20, 50)), (small, (320, 80)), (b, (600, 50))])
    with FaceTracker(2) as tr:
        out, summary = run(tr, [empty, empty, full, full])
    assert summary.bound_at == 2 and summary.n_missing == (2, 2)
    assert summary.max_faces == 3 and summary.n_detector_frames == 3  # no detection once everyone is followed
    boxes = out[2][0]
    assert boxes[0].center[0] < 300 and boxes[1].center[0] > 600  # the small middle face is nobody


def test_large_frames_are_processed_reduced_and_mapped_back(photo):
    import cv2

    frame = Shot(photo, zoom=2.5, size=(1280, 960)).render()
    big = cv2.resize(frame, (2560, 1920), interpolation=cv2.INTER_CUBIC)
    with FaceTracker(1) as tr:
        (_, small_lm) = tr.update(frame)
    with FaceTracker(1) as tr:
        (boxes, big_lm) = tr.update(big)
    # the 2560 frame is reduced to 1280 for FaceMesh, and its points come back at full size
    assert boxes[0].width > 400
    assert np.median(np.abs(big_lm[0] - 2 * small_lm[0])) < 1.0


def test_boxes_only_and_argument_checks(photo):
    frame = Shot(photo, size=(480, 400)).render()
    with FaceTracker(1, landmarks=None) as tr:
        boxes, lms = tr.update(frame)
        assert lms is None and isinstance(boxes[0], FaceBox)
        assert tr.summary().landmark_backend is None and tr.summary().n_landmarks is None
        with pytest.raises(ValueError, match="H x W x 3"):
            tr.update(frame[:, :, 0])
    with pytest.raises(ValueError, match="n_people"):
        FaceTracker(0)
    with pytest.raises(TypeError, match="unknown option"):
        FaceTracker(1, colour="red")
    with pytest.raises(ValueError, match="unknown landmark backend"):
        FaceTracker(1, landmarks="dlib68")


def test_assignment_is_gated_and_optimal():
    last = [FaceBox(0, 0, 100, 100), FaceBox(300, 0, 400, 100)]
    # two faces, each nearer the other person's *current* position than a greedy x-sort would say
    faces = [FaceBox(310, 5, 410, 105), FaceBox(20, 0, 120, 100)]
    assert assign(last, [0, 0], faces) == [1, 0]
    # a face 1 side away is beyond the 0.6 gate for a person seen in the previous frame ...
    far = [FaceBox(100, 0, 200, 100)]
    assert assignment_cost(far[0], last[0]) == pytest.approx(1.0)
    assert assign(last[:1], [0], far) == [None]
    # ... but within reach of one missing for 5 frames (0.6 + 5 x 0.1)
    assert assign(last[:1], [5], far) == [0]
    assert assign(last, [0, 0], []) == [None, None]


def test_more_faces_than_people_fails_only_when_it_persists(photo, patches):
    a, b = patches
    small = Shot(photo, zoom=1.25, size=(200, 200)).render()
    two = compose((900, 360), [(a, (20, 50)), (b, (600, 50))])
    three = compose((900, 360), [(a, (20, 50)), (small, (320, 80)), (b, (600, 50))])
    with FaceTracker(2) as tr:  # a third person throughout: which two are "the people"?
        _, summary = run(tr, [three] * 30)
    assert summary.status == "failed"
    assert summary.reason == "more faces than people: 3 faces for 2 people in 2 of 2 frames counted"
    # faces are counted on frames 0, 24 and 48 while everyone is followed; one stray face is fine
    frames = [three if k == 24 else two for k in range(50)]
    with FaceTracker(2) as tr:
        _, summary = run(tr, frames)
    assert summary.status == "ok" and summary.n_detector_frames == 3 and summary.n_extra_face_frames == 1
