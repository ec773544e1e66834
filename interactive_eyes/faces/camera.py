"""Camera motion from the background: what moves in a frame that is not a person.

Generated videos carry whole-frame jitter and real ones pan and zoom; a landmark displacement
metric would read all of it as the people's motion. ``CameraMotion`` estimates, for every frame,
the similarity transform (translation, rotation, zoom) that carries the previous frame's
**background** onto this one, so that metrics can remove it from every person's landmarks while
the people's own motion relative to the scene (nods and turns) still counts.

How (all OpenCV, on a grey copy reduced to at most ``WORK_SIDE`` = 360 px):

* **What is background.** Everything outside each person's head region (the face box widened
  to 1.8 face sides, from 0.7 sides above it to 0.3 below: hair, ears) and body region (2.8 face
  sides wide, from just below the face to the bottom of the frame). A person missing in a frame
  keeps their last region.
* **Features.** Shi-Tomasi corners in the background (``cv2.goodFeaturesToTrack``), followed
  from frame to frame by pyramidal Lucas-Kanade (``cv2.calcOpticalFlowPyrLK``); the set is topped
  up only when fewer than half survive, so a frame costs one LK pass (~1 ms at 360 px); on a
  background without enough corners the search is retried every ``RETRY_EVERY`` frames only.
* **Fit.** A robust similarity (``cv2.estimateAffinePartial2D``, RANSAC, 0.5 working px), so
  that one moving object in the background does not move the estimate.
* **Reliability.** A step is ``ok`` with at least ``MIN_INLIERS`` inliers forming at least
  ``MIN_INLIER_FRACTION`` of the tracked features; otherwise (a textureless wall, a frame filled
  by faces) its transform is the identity and the reason is kept. ``cumulative`` turns steps into
  per-frame transforms to the first frame; the metric decides what to do with unreliable clips.

On identical frames LK returns zero flow exactly, so a still shot gives the identity and adds
nothing to a still face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORK_SIDE = 360  # the longer side of the working copy (px): LK still reaches < 0.05 full-res px there (tests)
MAX_FEATURES = 200
MIN_DISTANCE = 8  # between features, working px
QUALITY = 0.005  # Shi-Tomasi quality level (relative to the strongest corner)
MIN_INLIERS = 20
# After a frame without enough background features, the (costly) corner search is retried only on
# every RETRY_EVERY-th frame: a textureless background stays textureless, and those steps fall
# back to the identity anyway.
RETRY_EVERY = 3
MIN_INLIER_FRACTION = 0.5
RANSAC_PX = 0.5  # working px
LK_WINDOW = (15, 15)
LK_LEVELS = 2
# person regions, in face sides (see the module docstring)
HEAD_HALF_WIDTH, HEAD_ABOVE, HEAD_BELOW = 0.9, 0.7, 0.3
BODY_HALF_WIDTH, BODY_BELOW = 1.4, 0.2


@dataclass(frozen=True)
class CameraStep:
    """The motion from the previous frame to this one: ``matrix`` (2, 3) maps previous-frame
    pixels to this frame's (full resolution); identity where not ``ok``."""

    matrix: np.ndarray
    ok: bool
    n_features: int
    n_inliers: int
    reason: str | None = None

    @property
    def shift_px(self) -> float:
        return float(np.hypot(*self.matrix[:, 2]))


IDENTITY = np.eye(2, 3)


def person_mask(shape: tuple[int, int], boxes, factor: float = 1.0) -> np.ndarray:
    """uint8 mask (255 = background) of an image of ``shape`` (h, w) whose people have face
    ``boxes`` (x1, y1, x2, y2) in pixels of an image ``factor`` times larger."""
    h, w = shape
    mask = np.full((h, w), 255, np.uint8)

    def clear(x1, y1, x2, y2):
        c0, c1 = max(0, int(np.floor(x1 / factor))), min(w, int(np.ceil(x2 / factor)))
        r0, r1 = max(0, int(np.floor(y1 / factor))), min(h, int(np.ceil(y2 / factor)))
        if c1 > c0 and r1 > r0:
            mask[r0:r1, c0:c1] = 0

    for b in boxes:
        if b is None or not np.all(np.isfinite(b)):
            continue
        x1, y1, x2, y2 = (float(v) for v in b)
        s, cx = max(x2 - x1, y2 - y1), 0.5 * (x1 + x2)
        clear(cx - HEAD_HALF_WIDTH * s, y1 - HEAD_ABOVE * s, cx + HEAD_HALF_WIDTH * s, y2 + HEAD_BELOW * s)
        clear(cx - BODY_HALF_WIDTH * s, y2 + BODY_BELOW * s, cx + BODY_HALF_WIDTH * s, h * factor)
    return mask


class CameraMotion:
    """Streaming estimator: ``update(rgb, boxes)`` once per frame, in order."""

    def __init__(self, *, work_side: int = WORK_SIDE, max_features: int = MAX_FEATURES,
                 min_inliers: int = MIN_INLIERS, min_inlier_fraction: float = MIN_INLIER_FRACTION):
        self.work_side = int(work_side)
        self.max_features = int(max_features)
        self.min_inliers = int(min_inliers)
        self.min_inlier_fraction = float(min_inlier_fraction)
        self._prev = None  # previous grey working image
        self._prev_mask = None
        self._pts = None  # features in the previous image, (M, 1, 2) float32
        self._boxes: list = []
        self._wait = 0  # frames to go before the corner search is retried

    def _grey(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        import cv2

        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        h, w = grey.shape
        if max(h, w) <= self.work_side:
            return grey, 1.0
        f = self.work_side / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        return cv2.resize(grey, size, interpolation=cv2.INTER_AREA), w / size[0]

    def update(self, rgb: np.ndarray, boxes=()) -> CameraStep:
        """The step from the previous frame (the first frame: identity, ``ok``). ``boxes``: each
        person's face box (x1, y1, x2, y2) in frame pixels or None (their last box is kept)."""
        import cv2

        grey, factor = self._grey(rgb)
        boxes = list(boxes)
        if len(self._boxes) < len(boxes):
            self._boxes += [None] * (len(boxes) - len(self._boxes))
        for k, b in enumerate(boxes):
            if b is not None:
                self._boxes[k] = np.asarray(b.as_array() if hasattr(b, "as_array") else b, dtype=np.float64)
        mask = person_mask(grey.shape, self._boxes, factor)
        prev, prev_mask, pts = self._prev, self._prev_mask, self._pts
        self._prev, self._prev_mask = grey, mask
        if prev is None:
            self._pts = None
            return CameraStep(IDENTITY.copy(), True, 0, 0)
        if pts is None and self._wait > 0:
            self._wait -= 1
            return CameraStep(IDENTITY.copy(), False, 0, 0, "too few background features (searched every "
                                                            f"{RETRY_EVERY} frames)")
        if pts is None or len(pts) < self.max_features // 2:
            found = cv2.goodFeaturesToTrack(prev, self.max_features, QUALITY, MIN_DISTANCE, mask=prev_mask, blockSize=7)
            pts = found if found is not None else np.zeros((0, 1, 2), np.float32)
        if len(pts) < self.min_inliers:
            self._pts, self._wait = None, RETRY_EVERY - 1
            return CameraStep(IDENTITY.copy(), False, len(pts), 0, f"{len(pts)} background features (< {self.min_inliers})")
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(prev, grey, pts, None, winSize=LK_WINDOW, maxLevel=LK_LEVELS)
        good = status[:, 0] == 1
        if good.any():  # a feature that slid into a person's region is no longer background
            xy = np.round(nxt[good, 0]).astype(int)
            inside = (xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] < grey.shape[1]) & (xy[:, 1] < grey.shape[0])
            keep = np.zeros(len(xy), bool)
            keep[inside] = mask[xy[inside, 1], xy[inside, 0]] > 0
            good[np.flatnonzero(good)] = keep
        src, dst = pts[good], nxt[good]
        n = len(src)
        if n < self.min_inliers:
            self._pts = None
            return CameraStep(IDENTITY.copy(), False, n, 0, f"{n} background features followed (< {self.min_inliers})")
        m, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX,
                                             maxIters=500, refineIters=10)
        n_in = int(inl.sum()) if inl is not None else 0
        if m is None or n_in < self.min_inliers or n_in < self.min_inlier_fraction * n:
            self._pts = None
            return CameraStep(IDENTITY.copy(), False, n, n_in,
                              f"{n_in} of {n} background features agree on one motion")
        self._pts = dst[inl[:, 0] == 1].reshape(-1, 1, 2)
        full = m.astype(np.float64).copy()
        full[:, 2] *= factor  # a similarity in working px -> the same in full-resolution px
        return CameraStep(full, True, n, n_in)


def cumulative(steps: list[np.ndarray]) -> np.ndarray:
    """Per-frame steps (frame t-1 -> t, step 0 ignored) -> (T, 2, 3) transforms from each frame's
    pixels to the first frame's."""
    out = np.zeros((len(steps), 2, 3))
    acc = np.eye(3)  # frame t -> frame 0
    for t, m in enumerate(steps):
        if t > 0:
            step = np.vstack([np.asarray(m, dtype=np.float64), [0.0, 0.0, 1.0]])
            acc = acc @ np.linalg.inv(step)
        out[t] = acc[:2]
    return out


def motion_at(steps: list[np.ndarray], points: np.ndarray) -> np.ndarray:
    """(T,) how far each step moves ``points`` (P, 2) (mean, px); NaN at t = 0."""
    p = np.asarray(points, dtype=np.float64)
    out = np.full(len(steps), np.nan)
    for t, m in enumerate(steps[1:], start=1):
        m = np.asarray(m, dtype=np.float64)
        out[t] = float(np.mean(np.linalg.norm(p @ m[:, :2].T + m[:, 2] - p, axis=1)))
    return out
