"""Landmark backends: the 22 eye/eyebrow index sets, names, the optional insightface backend."""

import numpy as np
import pytest

from interactive_eyes.faces import landmarks as lmk
from interactive_eyes.faces.types import FaceBox
from test_mediapipe_tasks import task_file  # noqa: F401  (the fixture that finds face_landmarker.task)


def test_index_sets_match_the_spec_tables():
    # spec/metrics.md §6.1 flat lists
    assert lmk.EYE_BROW_POINTS["face-alignment"] == (17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
                                                     36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47)
    assert lmk.EYE_BROW_POINTS["mediapipe"] == (70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
                                                33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380)
    assert lmk.EYE_BROW_POINTS["insightface"] == (43, 48, 49, 51, 50, 102, 103, 104, 105, 101,
                                                  35, 41, 42, 39, 37, 36, 89, 95, 96, 93, 91, 90)
    assert lmk.EYE_BROW_POINTS["mediapipe-tasks"] == lmk.EYE_BROW_POINTS["mediapipe"]  # one 478-point topology
    assert set(lmk.EYE_BROW_POINTS) == set(lmk.BACKENDS) == set(lmk.N_POINTS)
    for name, idx in lmk.EYE_BROW_POINTS.items():
        assert len(idx) == 22 and len(set(idx)) == 22, name
        assert max(idx) < lmk.N_POINTS[name], name


@pytest.mark.parametrize("given, expected", [("mediapipe", "mediapipe"), ("MP", "mediapipe"),
                                             ("face_alignment", "face-alignment"), ("fan", "face-alignment"),
                                             ("insightface", "insightface"), ("mediapipe-tasks", "mediapipe-tasks"),
                                             ("mediapipe_tasks", "mediapipe-tasks"), ("mediapipe-legacy", "mediapipe")])
def test_canonical_names(given, expected):
    assert lmk.canonical_name(given) == expected


def test_unknown_backend_suggests_a_name():
    with pytest.raises(ValueError, match="did you mean 'mediapipe'"):
        lmk.canonical_name("mediapipes")


def test_insightface_missing_names_the_package_to_install():
    import importlib.util

    if importlib.util.find_spec("insightface") is not None:  # pragma: no cover - optional extra installed
        pytest.skip("insightface is installed here")
    with pytest.raises(ImportError, match=r"insightface==0\.7\.3"):
        lmk.load_backend("insightface")


def test_match_by_iou_gives_each_person_the_overlapping_face():
    people = [FaceBox(0, 0, 10, 10), None, FaceBox(100, 0, 110, 10)]
    a, b = np.zeros((106, 2)), np.ones((106, 2))
    found = [(FaceBox(99, 0, 109, 10), b), (FaceBox(1, 0, 11, 10), a), (FaceBox(50, 50, 60, 60), a + 5)]
    out = lmk.match_by_iou(people, found, min_iou=0.3)
    assert out[0] is a and out[1] is None and out[2] is b
    # a face overlapping too little is nobody's
    assert lmk.match_by_iou([FaceBox(0, 0, 10, 10)], [(FaceBox(8, 8, 18, 18), a)], 0.3) == [None]


@pytest.mark.parametrize("backend", [pytest.param("mediapipe", marks=pytest.mark.legacy_mediapipe), "mediapipe-tasks"])
def test_mediapipe_points_are_eyebrows_above_eyes_left_to_right(backend, request):
    """On a real face, the 22 MediaPipe indices land on the two brows above the two eyes, in the
    AnyTalker order (image-left brow, image-right brow, image-left eye, image-right eye), for the
    legacy FaceMesh and the Tasks bundle's model alike."""
    from interactive_eyes.faces.synthetic import astronaut

    if backend == "mediapipe":
        from interactive_eyes.faces.mediapipe_mesh import MeshLocator

        mesh = MeshLocator(max_faces=1)
    else:
        request.getfixturevalue("task_file")
        from interactive_eyes.faces.mediapipe_tasks import TaskLocator

        mesh = TaskLocator(max_faces=1)
    (pts,) = mesh.locate(astronaut())
    mesh.close()
    p = pts[list(lmk.EYE_BROW_POINTS[backend])]
    brow_l, brow_r, eye_l, eye_r = p[0:5], p[5:10], p[10:16], p[16:22]
    assert brow_l[:, 0].mean() < brow_r[:, 0].mean() and eye_l[:, 0].mean() < eye_r[:, 0].mean()
    assert brow_l[:, 1].mean() < eye_l[:, 1].mean() and brow_r[:, 1].mean() < eye_r[:, 1].mean()
    # brows run outer -> inner on the left, inner -> outer on the right
    assert np.all(np.diff(brow_l[:, 0]) > 0) and np.all(np.diff(brow_r[:, 0]) > 0)
    # each eye's 6 points: the corners (0 and 3) span the eye, the lids lie between them
    for eye in (eye_l, eye_r):
        lo, hi = sorted((eye[0, 0], eye[3, 0]))
        assert np.all((eye[[1, 2, 4, 5], 0] > lo) & (eye[[1, 2, 4, 5], 0] < hi))
        assert eye[[1, 2], 1].mean() < eye[[4, 5], 1].mean()  # upper lid above lower lid


def test_insightface_backend_calls_the_package_as_the_script_did(monkeypatch):
    """The real code path, with a stand-in ``insightface.app.FaceAnalysis`` recording its calls."""
    import sys
    import types

    calls = {}

    class FakeFace:
        def __init__(self, box, value):
            self.bbox = np.array(box, dtype=np.float32)
            self.det_score = 0.9
            self.landmark_2d_106 = np.full((106, 2), value, dtype=np.float32)

    class FakeAnalysis:
        def __init__(self, name, root, allowed_modules, providers):
            calls["init"] = dict(name=name, allowed_modules=allowed_modules, providers=providers)

        def prepare(self, ctx_id, det_thresh, det_size):
            calls["prepare"] = dict(ctx_id=ctx_id, det_thresh=det_thresh, det_size=det_size)

        def get(self, img):
            calls["image"] = img
            return [FakeFace((300, 10, 400, 110), 2.0), FakeFace((0, 0, 100, 100), 1.0)]

    app = types.ModuleType("insightface.app")
    app.FaceAnalysis = FakeAnalysis
    pkg = types.ModuleType("insightface")
    pkg.app = app
    monkeypatch.setitem(sys.modules, "insightface", pkg)
    monkeypatch.setitem(sys.modules, "insightface.app", app)

    rgb = np.zeros((120, 420, 3), np.uint8)
    rgb[..., 0] = 255  # pure red, so the colour order handed over is visible
    backend = lmk.load_backend("insightface")
    assert calls["prepare"] == dict(ctx_id=-1, det_thresh=0.2, det_size=(640, 640))
    assert calls["init"]["name"] == "buffalo_l" and "landmark_2d_106" in calls["init"]["allowed_modules"]
    out = backend.locate(rgb, [FaceBox(5, 0, 100, 95), FaceBox(310, 10, 400, 100)], [None, None])
    assert calls["image"][0, 0].tolist() == [255, 0, 0]  # RGB, as the AnyTalker script fed it
    assert out[0][0, 0] == 1.0 and out[1][0, 0] == 2.0 and out[0].shape == (106, 2)
    bgr = lmk.load_backend("insightface", script_colour_order=False)
    bgr.locate(rgb, [None, None], [None, None])
    assert calls["image"][0, 0].tolist() == [0, 0, 255]
    assert backend.describe()["colour_order"] == "rgb (script)"
