"""Moving a person's ROI with their face by image registration, so the mesh model sees the same crop.

Why: the mesh model is not equivariant to where the face lands in its 192x192 crop. With the
ROI held still (version 1 of the tracker) a face that moves rigidly by a known 1-4 px inside
the crop was read at 1.03-1.25x the true displacement on a frontal photo and 1.1-1.4x on a
stylised three-quarter face (docs/interactivity.md, accuracy table): the model's answer to a
sub-pixel shift of the face inside the crop is not that shift. Moving the crop with the face,
by a transform measured **from the image** (not from the landmarks, which would close a feedback
loop), makes the crop's content nearly the same from frame to frame; the landmarks then move by
the crop's own, exactly known transform plus whatever the face does inside it (eye and brow
motion, expressions). Measured: 1.00-1.07x on the same faces.

How: Shi-Tomasi corners in the person's face box (plus a margin), followed into the next frame
by pyramidal Lucas-Kanade, a RANSAC similarity fit (OpenCV), in the tracker's working image.
Features are kept from frame to frame and topped up when fewer than half survive. Where the fit
is unreliable (too few corners or inliers: a blank or blurred face), the ROI is left where it
is, as before. On identical frames the flow is exactly zero, so a still face keeps exactly its
crop and its landmarks.
"""

from __future__ import annotations

import math

import numpy as np

MARGIN = 0.15  # face sides added around the face box for the features' search
MAX_FEATURES = 50
QUALITY = 0.01
MIN_DISTANCE = 4
MIN_INLIERS = 10
RANSAC_PX = 0.5
LK_WINDOW = (13, 13)
LK_LEVELS = 1


class FaceFollower:
    """One person's face motion between consecutive working images."""

    def __init__(self):
        self._pts = None  # (M, 1, 2) float32 features in the previous image (working px)

    def reset(self) -> None:
        self._pts = None

    def step(self, prev: np.ndarray, cur: np.ndarray, box_xyxy) -> np.ndarray | None:
        """The similarity (2, 3) carrying ``prev``'s face (``box_xyxy`` in working px) onto ``cur``,
        or None when it cannot be measured reliably."""
        import cv2

        h, w = prev.shape
        x1, y1, x2, y2 = (float(v) for v in box_xyxy)
        s = max(x2 - x1, y2 - y1)
        c0, r0 = max(0, int(x1 - MARGIN * s)), max(0, int(y1 - MARGIN * s))
        c1, r1 = min(w, int(math.ceil(x2 + MARGIN * s))), min(h, int(math.ceil(y2 + MARGIN * s)))
        if c1 - c0 < 16 or r1 - r0 < 16:
            self._pts = None
            return None
        origin = np.array([c0, r0], np.float32)
        pts = self._pts
        if pts is not None:  # keep only the features still inside this frame's face region
            xy = pts[:, 0]
            inside = (xy[:, 0] >= c0) & (xy[:, 0] < c1) & (xy[:, 1] >= r0) & (xy[:, 1] < r1)
            pts = pts[inside]
        if pts is None or len(pts) < MAX_FEATURES // 2:
            found = cv2.goodFeaturesToTrack(prev[r0:r1, c0:c1], MAX_FEATURES, QUALITY, MIN_DISTANCE, blockSize=5)
            if found is None or len(found) < MIN_INLIERS:
                self._pts = None
                return None
            pts = found + origin
        a, b = prev[r0:r1, c0:c1], cur[r0:r1, c0:c1]
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(a, b, pts - origin, None, winSize=LK_WINDOW, maxLevel=LK_LEVELS)
        good = status[:, 0] == 1
        if good.sum() < MIN_INLIERS:
            self._pts = None
            return None
        src, dst = pts[good], nxt[good] + origin
        m, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX,
                                             maxIters=200, refineIters=10)
        if m is None or int(inl.sum()) < MIN_INLIERS:
            self._pts = None
            return None
        self._pts = dst[inl[:, 0] == 1].reshape(-1, 1, 2).astype(np.float32)
        return m.astype(np.float64)


def move_roi(roi, m: np.ndarray):
    """The ROI carried by the similarity ``m`` (centre mapped, size scaled, rotation turned)."""
    from interactive_eyes.faces.mediapipe_mesh import Roi

    c, scale = _carry(roi.cx, roi.cy, m)
    turn = math.atan2(m[1, 0], m[0, 0])
    return Roi(float(c[0]), float(c[1]), roi.width * scale, roi.height * scale, roi.rotation + turn)


def move_box(box, m: np.ndarray):
    """The axis-aligned box carried by the similarity ``m``: centre mapped, sides scaled (the
    rotation, a few degrees between frames, is the ROI's business; the box stays upright)."""
    from interactive_eyes.faces.types import FaceBox

    c, scale = _carry(*box.center, m)
    hw, hh = 0.5 * box.width * scale, 0.5 * box.height * scale
    return FaceBox(float(c[0] - hw), float(c[1] - hh), float(c[0] + hw), float(c[1] + hh), box.score)


def _carry(cx: float, cy: float, m: np.ndarray) -> tuple[np.ndarray, float]:
    """A centre mapped by the similarity ``m`` and ``m``'s scale."""
    return m[:, :2] @ np.array([cx, cy]) + m[:, 2], math.sqrt(abs(float(np.linalg.det(m[:, :2]))))
