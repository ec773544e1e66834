"""The face tracker's landmarks on demand (``update(want=...)``, faces.track step 6): a person
not wanted is followed by image motion alone, without the mesh model, on synthetic videos whose
motion is known."""

import numpy as np
import pytest

from interactive_eyes.faces.synthetic import ASTRONAUT_FACE_CENTER, Shot, astronaut
from interactive_eyes.faces.track import VERIFY_EVERY, FaceTracker

VELOCITY = np.array([3.0, 1.0])  # px per frame of the moving face (person 1)
N_FRAMES = 26


@pytest.fixture(scope="module")
def video():
    """Person 0 (the photo) still on the left, person 1 (its mirror image) moving right and down by
    VELOCITY px per frame on the right."""
    photo = astronaut()
    a = Shot(photo, zoom=1.5, size=(260, 260)).render()
    mirrored = np.ascontiguousarray(photo[:, ::-1])
    b = Shot(mirrored, face_center=(512 - ASTRONAUT_FACE_CENTER[0], ASTRONAUT_FACE_CENTER[1]), zoom=1.5,
             size=(260, 260)).render()
    frames = []
    for k in range(N_FRAMES):
        f = np.full((400, 820, 3), 128, np.uint8)
        f[40:300, 20:280] = a
        x, y = (np.array([420.0, 40.0]) + k * VELOCITY).astype(int)
        f[y:y + 260, x:x + 260] = b
        frames.append(f)
    return frames


def counting(tracker):
    """Count the mesh model's reads per call site (the tracker's ROI landmarker)."""
    calls = []
    inner = tracker._landmarker.locate

    def locate(rgb, roi):
        calls.append(roi)
        return inner(rgb, roi)

    tracker._landmarker.locate = locate
    return calls


def track(frames, wants):
    with FaceTracker(2) as tr:
        calls = counting(tr)
        out = [tr.update(f, k / 25, want=w) for k, (f, w) in enumerate(zip(frames, wants))]
        return out, tr.summary(), len(calls)


def test_a_person_not_wanted_is_followed_without_the_mesh_model(video):
    unwanted = range(4, 22)  # person 1 is not wanted in frames 4..21 (18 frames)
    wants = [(True, k not in unwanted) for k in range(N_FRAMES)]
    full, full_summary, full_calls = track(video, [None] * N_FRAMES)
    part, summary, calls = track(video, wants)
    assert summary.status == full_summary.status == "ok"
    # read by the mesh model once every VERIFY_EVERY frames while not wanted, carried otherwise
    carried = len(unwanted) - len(unwanted) // VERIFY_EVERY
    assert summary.n_followed_only == (0, carried) and full_summary.n_followed_only == (0, 0)
    assert full_calls - calls == carried
    assert summary.n_found == (N_FRAMES, N_FRAMES) and summary.n_missing == (0, 0)
    for k, ((boxes, lms), (full_boxes, full_lms)) in enumerate(zip(part, full)):
        # the still person 0 is wanted throughout: exactly the landmarks of a full track
        np.testing.assert_array_equal(lms[0], full_lms[0])
        # person 1: no landmarks where not wanted (even on a verification read), a box everywhere
        assert (lms[1] is None) == (k in unwanted)
        assert boxes[1] is not None
        # the carried box moves with the face: the known motion, within a pixel of the full track's box
        np.testing.assert_allclose(boxes[1].center, full_boxes[1].center, atol=1.0)
        np.testing.assert_allclose(boxes[1].width, full_boxes[1].width, rtol=0.02)
    moved = np.array(part[21][0][1].center) - np.array(part[3][0][1].center)
    np.testing.assert_allclose(moved, 18 * VELOCITY, atol=1.0)
    # once wanted again, person 1's landmarks are those of a full track to well under a pixel
    for k in range(22, N_FRAMES):
        assert np.abs(part[k][1][1] - full[k][1][1]).max() < 0.5


def test_nobody_wanted_still_reads_every_person_every_VERIFY_EVERY_frames(video):
    wants = [(False, False)] * N_FRAMES
    out, summary, calls = track(video, wants)
    assert summary.status == "ok" and summary.n_found == (N_FRAMES, N_FRAMES)
    after_binding = N_FRAMES - 1  # frame 0 binds both people with the detector and the mesh
    assert summary.n_followed_only == (after_binding - after_binding // VERIFY_EVERY,) * 2
    assert all(lms == (None, None) for _, lms in out)
    # binding reads each face twice (MediaPipe's ROI, then the ROI its landmarks imply)
    assert calls == 2 * 2 + 2 * (after_binding // VERIFY_EVERY)


def test_want_is_checked(video):
    with FaceTracker(2) as tr:
        with pytest.raises(ValueError, match="want has 1 entries for 2 people"):
            tr.update(video[0], 0.0, want=(True,))
