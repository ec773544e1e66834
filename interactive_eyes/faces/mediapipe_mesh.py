"""MediaPipe FaceMesh as the face tracker's detector and landmark model.

``mediapipe==0.10.21``'s legacy ``solutions`` API bundles its TFLite models in the wheel, so it
runs offline on CPU (spec/metrics.md §6.3; later releases removed ``solutions`` and need a
separately downloaded ``.task`` file).

``MeshLocator`` runs FaceMesh with ``refine_landmarks=True`` (478 points: the 468-point mesh plus
10 iris points; indices 0..467 are those of the 468-point mesh) on the whole frame in **static
image mode**: BlazeFace (short range) finds the faces in every frame and the mesh model reads
each face from a crop placed by that frame's own detection, so the landmarks of a frame depend on
that frame only. Video mode (``static_image_mode=False``) instead places each frame's crop from
the previous frame's landmarks; the model is not equivariant to where its crop lands, so that
feedback loop moves the landmarks of a perfectly still video (measured on a still synthetic
video: 0.3 px/frame of eye/brow motion, decaying over ~20 frames, and a 1-1.5 px/frame tail for
~5 frames after each real movement), which a displacement metric reads as motion. In static mode
a still video gives exactly 0 (tests/faces/test_track.py). Static mode costs one detection per
frame: on interact_11 (832x448, two faces) it ran at ~155-180 frames/s against ~185-200 for
video mode on one core.
"""

from __future__ import annotations

import threading

import numpy as np

N_MESH_POINTS = 478  # refine_landmarks=True: 468 mesh + 2 x 5 iris points

# FaceMesh's own default detection threshold (mediapipe/python/solutions/face_mesh.py), kept
# as it is so the model runs as its authors tuned it.
MIN_DETECTION_CONFIDENCE = 0.5

# Frames larger than this (longer side, px) are reduced with an area filter before FaceMesh and
# the landmarks are mapped back to full-resolution pixels. The detector reads the frame at
# 128x128 and the mesh model reads each face at 192x192, so a 1280 px frame still holds every
# face of a talking-video shot at or above the model's own resolution; 4K frames cost 4x less to
# hand over and resample. Frames up to 1280 px (832x448, 720p) are never resampled by ie-bench.
MAX_SIDE = 1280


def _solutions():
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - mediapipe is a hard dependency
        raise ImportError(f"the MediaPipe face tracker needs mediapipe==0.10.21 ({exc})") from None
    if not hasattr(mp, "solutions"):
        raise ImportError(
            f"mediapipe {getattr(mp, '__version__', '?')} has no legacy `solutions` API (removed in 0.10.31); "
            "install mediapipe==0.10.21 (setup.cfg pins it)"
        )
    return mp.solutions


class MeshLocator:
    """FaceMesh (478 points, static image mode) on whole frames; landmarks in frame pixels."""

    name = "mediapipe-facemesh-478-static"
    n_points = N_MESH_POINTS

    def __init__(self, max_faces: int = 2, min_confidence: float = MIN_DETECTION_CONFIDENCE, max_side: int = MAX_SIDE):
        sol = _solutions()
        self.max_faces = int(max_faces)
        self.max_side = int(max_side)
        self._mesh = sol.face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=self.max_faces,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
        )
        self._lock = threading.Lock()

    def locate(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Every face mesh found in the frame, as (478, 2) float64 arrays in frame pixels
        (continuous coordinates: MediaPipe's normalised x times the frame width)."""
        h, w = rgb.shape[:2]
        img = rgb
        if max(h, w) > self.max_side:
            import cv2

            f = self.max_side / max(h, w)
            img = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        with self._lock:
            res = self._mesh.process(np.ascontiguousarray(img))
        out = []
        for face in res.multi_face_landmarks or []:
            pts = np.array([(p.x, p.y) for p in face.landmark], dtype=np.float64)
            pts[:, 0] *= w  # normalised coordinates are resolution-free: map straight to full size
            pts[:, 1] *= h
            out.append(pts)
        return out

    def close(self) -> None:
        self._mesh.close()
