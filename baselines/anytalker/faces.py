"""Face boxes on the reference image, for the left-to-right binding of AnyTalker (§8.1).

Two detectors:

- ``"tracker"`` (default, offline): the project's own face tracker
  (``interactive_eyes.faces.track.FaceTracker``) on the reference image as a one-frame clip. It
  binds the n largest of up to n + 1 faces left to right, exactly the selection the scorer's
  face tracks start from, so generation and scoring agree on who is who. Boxes are the extent of
  the 478-point MediaPipe mesh (forehead to chin, cheek to cheek).
- ``"insightface"``: the official detector (InsightFace ``FaceAnalysis``, buffalo_l SCRFD, 640x640,
  threshold 0.15 as in every official command), then the official selection (largest n by raw box
  area, sorted by x1; ``masks.select_faces``). Needs the ``insightface`` package and its model
  files in ``~/.insightface``.

Difference: SCRFD boxes are tighter around the face and include less forehead than the mesh
extent; both are squared and enlarged by ``masks.build_face_masks`` the same way, so the masks
differ by the box difference only. Ordering differs only for faces whose left edges and centres
disagree in order (overlapping faces of very different sizes).

Unlike the official code, fewer faces than tracks is an error (:class:`FaceBindingError`): the
official pipeline silently drops the extra tracks (or uses a centred fallback box when it finds
no face), which would produce a video where someone's audio drives nobody.
"""

from __future__ import annotations

import numpy as np

DETECTORS = ("tracker", "insightface")
INSIGHTFACE_THRESHOLD = 0.15  # --det_thresh in all official commands (§8.1)
INSIGHTFACE_DET_SIZE = (640, 640)


class FaceBindingError(RuntimeError):
    """The reference image does not show one face per audio track (one line)."""


def detect_faces(rgb: np.ndarray, n_people: int, detector: str = "tracker") -> np.ndarray:
    """[n_people, 4] float32 (x1, y1, x2, y2) boxes in image pixels, left to right."""
    if detector == "tracker":
        return _tracker_boxes(rgb, n_people)
    if detector == "insightface":
        return _insightface_boxes(rgb, n_people)
    raise ValueError(f"face detector must be one of {DETECTORS}, not {detector!r}")


def _tracker_boxes(rgb: np.ndarray, n_people: int) -> np.ndarray:
    from interactive_eyes.faces.track import FaceTracker

    with FaceTracker(n_people, landmarks=None) as tracker:
        boxes, _ = tracker.update(np.ascontiguousarray(rgb))
        summary = tracker.summary()
    if any(b is None for b in boxes):
        raise FaceBindingError(f"{summary.max_faces} face(s) found on the reference frame for {n_people} "
                               f"audio track(s); every track needs its own face")
    return np.array([[b.x1, b.y1, b.x2, b.y2] for b in boxes], dtype=np.float32)


def _insightface_boxes(rgb: np.ndarray, n_people: int) -> np.ndarray:
    try:
        from insightface.app import FaceAnalysis
    except ImportError:
        raise FaceBindingError("face_detector=insightface needs the insightface package "
                               "(pip install 'ie-bench[insightface]')") from None
    from .masks import select_faces

    app = FaceAnalysis(allowed_modules=["detection"], providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    app.prepare(ctx_id=0, det_thresh=INSIGHTFACE_THRESHOLD, det_size=INSIGHTFACE_DET_SIZE)
    faces = app.get(np.ascontiguousarray(rgb[:, :, ::-1]))  # InsightFace reads BGR (the official cv2.imread)
    if len(faces) < n_people:
        raise FaceBindingError(f"{len(faces)} face(s) found on the reference frame for {n_people} "
                               f"audio track(s); every track needs its own face")
    boxes = np.stack([np.asarray(f.bbox, dtype=np.float32) for f in faces])
    return select_faces(boxes, n_people, rgb.shape[:2])
