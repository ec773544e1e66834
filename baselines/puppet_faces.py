"""``puppet``: the faces of the reference frame (MediaPipe BlazeFace full-range, then the 468-point
FaceMesh inside each face's region), the N largest sorted left to right by box centre (the
AnyTalker binding rule, spec/baselines.md §2.4). See ``puppet.py``'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# MediaPipe 468-point mesh indices (the canonical face model; the 478-point refined mesh keeps them).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
FOREHEAD, CHIN = 10, 152
# eye contours: image-left eye (the subject's right) and image-right eye; (upper lid, lower lid) mid points
EYES = (
    {"contour": (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246), "lids": (159, 145)},
    {"contour": (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466), "lids": (386, 374)},
)
MOUTH_CORNERS = (61, 291)
INNER_LIPS = (13, 14)  # upper lip's lower edge, lower lip's upper edge (centre)


@dataclass(frozen=True)
class FaceGeometry:
    """Where one person's face parts are in the reference frame (pixels)."""

    box: tuple[float, float, float, float]  # face oval bounds x1, y1, x2, y2
    eyes: tuple[tuple[float, float, float, float], ...]  # (centre x, lid-midline y, width, half-height)
    mouth: tuple[float, float, float]  # (lip-line y, left corner x, right corner x)
    chin: tuple[float, float]
    source: str  # which landmark model gave them

    @property
    def height(self) -> float:
        return self.chin[1] - self.box[1]

    def to_dict(self) -> dict[str, Any]:
        r = lambda v: [round(float(x), 2) for x in v]  # noqa: E731
        return {"box": r(self.box), "eyes": [r(e) for e in self.eyes], "mouth": r(self.mouth),
                "chin": r(self.chin), "source": self.source}


def geometry_from_mesh(pts) -> FaceGeometry:
    """Face parts from a (468+, 2) MediaPipe mesh in frame pixels."""
    import numpy as np

    pts = np.asarray(pts, dtype=np.float64)
    oval = pts[list(FACE_OVAL)]
    eyes = []
    for eye in EYES:
        c = pts[list(eye["contour"])]
        up, lo = pts[eye["lids"][0]], pts[eye["lids"][1]]
        eyes.append((float(c[:, 0].mean()), float((up[1] + lo[1]) / 2), float(np.ptp(c[:, 0])),
                     float(max(0.5, (lo[1] - up[1]) / 2))))
    lip_y = float((pts[INNER_LIPS[0], 1] + pts[INNER_LIPS[1], 1]) / 2)
    return FaceGeometry(
        box=(float(oval[:, 0].min()), float(oval[:, 1].min()), float(oval[:, 0].max()), float(oval[:, 1].max())),
        eyes=tuple(eyes),
        mouth=(lip_y, float(pts[MOUTH_CORNERS[0], 0]), float(pts[MOUTH_CORNERS[1], 0])),
        chin=(float(pts[CHIN, 0]), float(pts[CHIN, 1])),
        source="mediapipe-facemesh",
    )


def _mediapipe_solutions():
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - mediapipe is a hard dependency
        raise ImportError(f"puppet needs mediapipe==0.10.21 ({exc})") from None
    if not hasattr(mp, "solutions"):  # removed in 0.10.31 (spec/metrics.md, known issue 10)
        raise ImportError(f"puppet needs mediapipe's legacy `solutions` API (mediapipe==0.10.21), "
                          f"found mediapipe {getattr(mp, '__version__', '?')}")
    return mp.solutions


def detect_face_boxes(rgb) -> list[tuple[float, float, float, float]]:
    """Face boxes (x1, y1, x2, y2) from BlazeFace full-range (MediaPipe ``model_selection=1``).

    The full-range model is used because the mesh's own short-range detector misses the smaller
    faces of wide two-person shots (measured: it finds no face in two 512 px portraits side by side).
    """
    import numpy as np

    sol = _mediapipe_solutions()
    h, w = rgb.shape[:2]
    # min_detection_confidence 0.5: MediaPipe's own default
    with sol.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as det:
        res = det.process(np.ascontiguousarray(rgb))
    boxes = []
    for d in res.detections or []:
        bb = d.location_data.relative_bounding_box
        x1, y1 = bb.xmin * w, bb.ymin * h
        boxes.append((x1, y1, x1 + bb.width * w, y1 + bb.height * h))
    return boxes


def locate_faces(rgb, n_people: int, boxes=None) -> list[FaceGeometry]:
    """The face geometry of up to ``n_people`` people, left to right.

    ``boxes``: known face boxes (x1, y1, x2, y2), one per person; otherwise the N largest faces
    found by ``detect_face_boxes`` are used. FaceMesh (static-image mode) then runs on a square
    region of twice the box side around each box; the mesh whose centre is nearest the box centre
    is kept. A face whose mesh is not found is left out (the caller counts them).
    """
    import numpy as np

    h, w = rgb.shape[:2]
    if boxes is None:
        boxes = sorted(detect_face_boxes(rgb), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)[:n_people]
    boxes = sorted(boxes, key=lambda b: (b[0] + b[2]) / 2)
    sol = _mediapipe_solutions()
    out = []
    # max_num_faces=2: when the neighbour's face reaches into the region both come back and the
    # nearest is kept, rather than whichever face the mesh's detector scores higher
    with sol.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=2, refine_landmarks=False,
                                min_detection_confidence=0.5) as mesh:
        for x1, y1, x2, y2 in boxes:
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            half = max(x2 - x1, y2 - y1)
            rx0, ry0 = max(0, int(cx - half)), max(0, int(cy - half))
            rx1, ry1 = min(w, int(cx + half) + 1), min(h, int(cy + half) + 1)
            crop = np.ascontiguousarray(rgb[ry0:ry1, rx0:rx1])
            if crop.shape[0] < 16 or crop.shape[1] < 16:
                continue
            res = mesh.process(crop)
            meshes = [np.array([(p.x * crop.shape[1] + rx0, p.y * crop.shape[0] + ry0) for p in f.landmark])
                      for f in res.multi_face_landmarks or []]
            if meshes:
                best = min(meshes, key=lambda m: float(np.hypot(*(m.mean(axis=0) - (cx, cy)))))
                out.append(geometry_from_mesh(best))
    return out
