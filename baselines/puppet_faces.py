"""``puppet``: the faces of the reference frame, the N largest sorted left to right by box centre
(the AnyTalker binding rule, spec/baselines.md §2.4). See ``puppet.py``'s docstring.

Faces and their 478-point meshes come from the current MediaPipe face models
(``face_landmarker.task``: BlazeFace short range, then the mesh model on the ROI each detection
implies), run through LiteRT by ``interactive_eyes.faces.mediapipe_tasks``: the same numbers under
numpy 1 and 2, with or without the legacy mediapipe 0.10.21 (whose BlazeFace full-range and
FaceMesh graphs puppet version 1 used).

BlazeFace short range is made for faces that fill a good part of a square picture: on a whole
wide two-person frame, letterboxed to 128x128, it finds nothing (measured: 0 faces in the test
pair of astronaut photos, 768x384, and in 1024x512). So the frame is searched in square windows
of its shorter side, half a window apart along the longer side: each person's face then has the
scale it has in a one-person portrait (measured: both faces found in that pair and in each of
the two-person examples 2p-0..2p-3, the one face of 1p-0, at 0.16-0.8 s a frame on one core).
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


def geometry_from_mesh(pts, source: str = "mediapipe-tasks-facemesh-478") -> FaceGeometry:
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
        source=source,
    )


# Enough detections per window that the N largest faces are among them whatever N is: BlazeFace
# returns its best ``max_faces`` after non-maximum suppression.
MIN_FACES_PER_WINDOW = 4


def _locator(max_faces: int):
    """The whole-picture face finder of the current MediaPipe models (detector + mesh, LiteRT)."""
    from interactive_eyes.faces.mediapipe_tasks import TaskLocator

    return TaskLocator(max(int(max_faces), MIN_FACES_PER_WINDOW))


def _source(loc) -> str:
    return f"{loc.name} (face_landmarker.task sha256 {loc.bundle.sha256[:12]})"


def search_windows(h: int, w: int) -> list[tuple[int, int, int]]:
    """(y0, x0, side) of the square windows that cover an h x w frame: side = the shorter side,
    starts every half side along the longer one, the last flush with the far edge."""
    side, length = min(h, w), max(h, w)
    starts = list(range(0, length - side + 1, max(1, side // 2)))
    if starts[-1] != length - side:
        starts.append(length - side)
    return [(0, s, side) if w >= h else (s, 0, side) for s in starts]


def _box(mesh) -> tuple[float, float, float, float]:
    oval = mesh[list(FACE_OVAL)]
    return float(oval[:, 0].min()), float(oval[:, 1].min()), float(oval[:, 0].max()), float(oval[:, 1].max())


def find_meshes(rgb, max_faces: int = MIN_FACES_PER_WINDOW, loc=None) -> list:
    """Every face mesh in the frame, (478, 2) arrays in its pixels, one per face.

    A face seen by two overlapping windows is kept once: two meshes whose face-oval box centres
    are less than half the smaller box's width apart are one face, and the mesh read through the
    window whose centre is nearest the face is kept (its crop has the most context around it).
    """
    import numpy as np

    loc = loc or _locator(max_faces)
    h, w = rgb.shape[:2]
    found = []  # (distance of the face from its window's centre, mesh)
    for y0, x0, side in search_windows(h, w):
        for mesh in loc.locate(np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side])):
            mesh = mesh + (x0, y0)
            c = mesh.mean(axis=0)
            found.append((float(np.hypot(c[0] - (x0 + side / 2), c[1] - (y0 + side / 2))), mesh))
    kept: list = []
    for _, mesh in sorted(found, key=lambda f: f[0]):
        x1, y1, x2, y2 = _box(mesh)
        for other in kept:
            u1, v1, u2, v2 = _box(other)
            gap = np.hypot((x1 + x2 - u1 - u2) / 2, (y1 + y2 - v1 - v2) / 2)
            if gap < min(x2 - x1, u2 - u1) / 2:
                break
        else:
            kept.append(mesh)
    return kept


def detect_face_boxes(rgb) -> list[tuple[float, float, float, float]]:
    """Face boxes (x1, y1, x2, y2): the face-oval bounds of every mesh ``find_meshes`` finds."""
    return [_box(m) for m in find_meshes(rgb)]


def locate_faces(rgb, n_people: int, boxes=None) -> list[FaceGeometry]:
    """The face geometry of up to ``n_people`` people, left to right.

    ``boxes``: known face boxes (x1, y1, x2, y2), one per person: the face models then run on a
    square region of twice the box side around each box and the mesh whose centre is nearest the
    box centre is kept. Otherwise the N largest faces (face-oval box area) that ``find_meshes``
    finds are used. A face whose mesh is not found is left out (the caller counts them).
    """
    import numpy as np

    loc = _locator(n_people)
    source = _source(loc)
    h, w = rgb.shape[:2]
    if boxes is None:
        geoms = [geometry_from_mesh(m, source) for m in find_meshes(rgb, n_people, loc)]
        largest = sorted(geoms, key=lambda g: (g.box[2] - g.box[0]) * (g.box[3] - g.box[1]), reverse=True)[:n_people]
        return sorted(largest, key=lambda g: (g.box[0] + g.box[2]) / 2)
    out = []
    for x1, y1, x2, y2 in sorted(boxes, key=lambda b: (b[0] + b[2]) / 2):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        half = max(x2 - x1, y2 - y1)
        rx0, ry0 = max(0, int(cx - half)), max(0, int(cy - half))
        rx1, ry1 = min(w, int(cx + half) + 1), min(h, int(cy + half) + 1)
        crop = np.ascontiguousarray(rgb[ry0:ry1, rx0:rx1])
        if crop.shape[0] < 16 or crop.shape[1] < 16:
            continue
        # when the neighbour's face reaches into the region both come back and the nearest is
        # kept, rather than whichever face the detector scores higher
        meshes = [m + (rx0, ry0) for m in loc.locate(crop)]
        if meshes:
            best = min(meshes, key=lambda m: float(np.hypot(*(m.mean(axis=0) - (cx, cy)))))
            out.append(geometry_from_mesh(best, source))
    return out
