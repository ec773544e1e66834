"""Camera motion from the background: what moves in a frame that is not a person.

Generated videos carry whole-frame jitter and real ones pan and zoom; a landmark displacement
metric would read all of it as the people's motion. ``CameraMotion`` estimates, for every frame,
the similarity transform (translation, rotation, zoom) that carries the previous frame's
**background** onto this one, so that metrics can remove it from every person's landmarks while
the people's own motion relative to the scene (nods and turns) still counts.

How (all OpenCV, on a grey copy reduced by an integer factor to at least ``WORK_SIDE`` = 360 px):

* **What is background.** Everything outside each person's head region (the face box widened
  to 1.8 face sides, from 0.7 sides above it to 0.3 below: hair, ears) and body region (2.8 face
  sides wide, from just below the face to the bottom of the frame). A person missing in a frame
  keeps their last region.
* **Features.** Up to ``MAX_FEATURES`` = 100 Shi-Tomasi corners in the background
  (``cv2.goodFeaturesToTrack``), followed from frame to frame by pyramidal Lucas-Kanade
  (``cv2.calcOpticalFlowPyrLK``); the set is topped up only when fewer than half of the last
  search's survive, so most frames cost one LK pass; on a background without enough corners the
  search is retried after ``RETRY_EVERY`` frames, then after twice as many, up to
  ``MAX_RETRY_EVERY``.
* **Fit.** A robust similarity (``cv2.estimateAffinePartial2D``, RANSAC, 0.5 working px), so
  that one moving object in the background does not move the estimate.
* **Reliability.** A step is ``ok`` with at least ``MIN_INLIERS`` inliers forming at least
  ``MIN_INLIER_FRACTION`` of the tracked features; otherwise (a textureless wall, a frame filled
  by faces) its transform is the identity and the reason is kept. ``cumulative`` turns steps into
  per-frame transforms to the first frame; the metric decides what to do with unreliable clips.

**Second tier: the bodies** (``source='bodies'``). Where the background tier is unreliable on
a step (clip 11: a flat pink wall, 201 of 204 steps), the same LK + RANSAC similarity is run on
everything that is not a *face*: the whole frame outside each person's face box enlarged
``FACE_ENLARGE`` = 1.2x about its centre (hair, ears, neck, clothes, torso edges, shirt print,
and whatever background there is). This is a deviation from "the camera is what is not a
person": it removes motion that the head shares with the torso (whole-body sway, a lean), which
is not an eye/brow reaction; nods and turns move the head relative to the torso and still
count, though the hair in the fit moves with the head and pulls the estimate towards it
(docs/interactivity.md measures how much on clip 11: the clip value moves by -7% to +19% with
the exclusion, per person more). One fit across all people. Each step
says which tier gave it (``CameraStep.source``).

On identical frames LK returns zero flow exactly, so a still shot gives the identity and adds
nothing to a still face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# the working copy's longer side is at least this (px, an integer reduction); LK still reaches
# < 0.05 full-res px there (tests)
WORK_SIDE = 360
# LK's cost grows with the features it follows (~5 us each at 416 px, most of a step); 100 measure
# known shake, pan and zoom as precisely as 200 did (tests/faces/test_camera.py: max error
# 0.015-0.028 px against 0.016-0.032 px with 200; on the textureless wall 0.066-0.074 against
# 0.057-0.072), and a similarity has 4 unknowns
MAX_FEATURES = 100
MIN_DISTANCE = 8  # between features, working px
QUALITY = 0.005  # Shi-Tomasi quality level (relative to the strongest corner)
MIN_INLIERS = 20
# After a corner search that found too few features, a tier's (costly) search is retried only after
# RETRY_EVERY frames, and the wait doubles with every further such search in a row up to
# MAX_RETRY_EVERY frames (1 s at 24 fps): a textureless wall stays textureless (clip 11's
# background tier gave 24 of 204 steps and searched 73 times with a fixed wait of 3, ~0.7 ms/frame
# of the estimate's ~2.5 ms on a busy 2-core machine; now 22 searches), those steps fall to the
# next tier or the identity anyway, and a background that gains texture (a pan onto a shelf) is
# picked up within 1 s.
RETRY_EVERY = 3
MAX_RETRY_EVERY = 24
MIN_INLIER_FRACTION = 0.5
RANSAC_PX = 0.5  # working px
LK_WINDOW = (15, 15)
LK_LEVELS = 2
# person regions, in face sides (see the module docstring)
HEAD_HALF_WIDTH, HEAD_ABOVE, HEAD_BELOW = 0.9, 0.7, 0.3
BODY_HALF_WIDTH, BODY_BELOW = 1.4, 0.2
# second tier: the face box (mesh extent, forehead to chin) enlarged by this about its centre is
# all that is excluded; 1.2x leaves a margin of 10 % of the side for the mesh's own jitter
FACE_ENLARGE = 1.2
SOURCES = ("background", "bodies")


@dataclass(frozen=True)
class CameraStep:
    """The motion from the previous frame to this one: ``matrix`` (2, 3) maps previous-frame
    pixels to this frame's (full resolution); identity where not ``ok``."""

    matrix: np.ndarray
    ok: bool
    n_features: int
    n_inliers: int
    reason: str | None = None
    source: str | None = "background"  # 'background' | 'bodies' (second tier) | None (not ok)

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


def face_mask(shape: tuple[int, int], boxes, factor: float = 1.0, enlarge: float = FACE_ENLARGE) -> np.ndarray:
    """uint8 mask (255 = usable by the second tier): everything but each face box enlarged
    ``enlarge`` times about its centre (boxes in pixels of an image ``factor`` times larger)."""
    h, w = shape
    mask = np.full((h, w), 255, np.uint8)
    for b in boxes:
        if b is None or not np.all(np.isfinite(b)):
            continue
        x1, y1, x2, y2 = (float(v) / factor for v in b)
        cx, cy, hw, hh = 0.5 * (x1 + x2), 0.5 * (y1 + y2), 0.5 * enlarge * (x2 - x1), 0.5 * enlarge * (y2 - y1)
        c0, c1 = max(0, int(np.floor(cx - hw))), min(w, int(np.ceil(cx + hw)))
        r0, r1 = max(0, int(np.floor(cy - hh))), min(h, int(np.ceil(cy + hh)))
        if c1 > c0 and r1 > r0:
            mask[r0:r1, c0:c1] = 0
    return mask


class _Tier:
    """One feature set (background or bodies): LK from the previous working image, topped up by
    a corner search in the tier's mask, a RANSAC similarity."""

    def __init__(self, name: str, max_features: int, min_inliers: int, min_inlier_fraction: float):
        self.name, self.max_features = name, max_features
        self.min_inliers, self.min_inlier_fraction = min_inliers, min_inlier_fraction
        self.pts = None  # features in the previous image, (M, 1, 2) float32
        self.wait = 0  # frames to go before the corner search is retried
        self.misses = 0  # corner searches in a row that found too few
        self.n_found = 0  # features the last corner search found

    def skip(self) -> None:
        """The previous image's features are not carried over (this tier was not run on a step)."""
        self.pts = None

    def _miss(self, n_features: int, n_inliers: int, reason: str, *, textureless: bool = False) -> CameraStep:
        """A step this tier cannot give: its features are dropped. When its corner search found
        too few (``textureless``), the next search waits RETRY_EVERY, then 2 x, 4 x ... up to
        MAX_RETRY_EVERY frames while that goes on; otherwise (features lost or no consensus:
        things moved) it searches again on the next step."""
        self.pts = None
        if textureless:
            self.wait = min(RETRY_EVERY << self.misses, MAX_RETRY_EVERY) - 1
            self.misses += 1
        return CameraStep(IDENTITY.copy(), False, n_features, n_inliers, reason, None)

    def step(self, prev, grey, prev_mask, mask, factor) -> CameraStep:
        import cv2

        pts, what = self.pts, ("background" if self.name == "background" else "non-face") + " features"
        if pts is None and self.wait > 0:
            self.wait -= 1
            reason = f"too few {what} (searched again in {self.wait + 1} frames)"
            return CameraStep(IDENTITY.copy(), False, 0, 0, reason, None)
        # topped up when fewer than half of the last search's features survive (not half of
        # max_features: a region with 120 corners would otherwise be searched on every frame, the
        # costliest part of a step, 0.6 ms on clip 11)
        if pts is None or len(pts) < max(self.min_inliers, self.n_found // 2):
            found = cv2.goodFeaturesToTrack(prev, self.max_features, QUALITY, MIN_DISTANCE, mask=prev_mask, blockSize=7)
            pts = found if found is not None else np.zeros((0, 1, 2), np.float32)
            self.n_found = len(pts)
        if len(pts) < self.min_inliers:
            return self._miss(len(pts), 0, f"{len(pts)} {what} (< {self.min_inliers})", textureless=True)
        self.misses = 0  # enough corners: the next shortage starts the waits again
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(prev, grey, pts, None, winSize=LK_WINDOW, maxLevel=LK_LEVELS)
        good = status[:, 0] == 1
        if good.any():  # a feature that slid into an excluded region no longer belongs to the tier
            xy = np.round(nxt[good, 0]).astype(int)
            inside = (xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] < grey.shape[1]) & (xy[:, 1] < grey.shape[0])
            keep = np.zeros(len(xy), bool)
            keep[inside] = mask[xy[inside, 1], xy[inside, 0]] > 0
            good[np.flatnonzero(good)] = keep
        src, dst = pts[good], nxt[good]
        n = len(src)
        if n < self.min_inliers:
            return self._miss(n, 0, f"{n} {what} followed (< {self.min_inliers})")
        if np.array_equal(src, dst):  # identical frames: LK's flow is exactly zero, and so is the motion
            self.pts = dst
            return CameraStep(IDENTITY.copy(), True, n, n, None, self.name)
        m, inl = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX,
                                             maxIters=500, refineIters=10)
        n_in = int(inl.sum()) if inl is not None else 0
        if m is None or n_in < self.min_inliers or n_in < self.min_inlier_fraction * n:
            return self._miss(n, n_in, f"{n_in} of {n} {what} agree on one motion")
        self.pts = dst[inl[:, 0] == 1].reshape(-1, 1, 2)
        full = m.astype(np.float64).copy()
        full[:, 2] *= factor  # a similarity in working px -> the same in full-resolution px
        return CameraStep(full, True, n, n_in, None, self.name)


class CameraMotion:
    """Streaming estimator: ``update(rgb, boxes)`` once per frame, in order. ``bodies=False``
    keeps the background tier only (version 2.0's estimator)."""

    def __init__(self, *, work_side: int = WORK_SIDE, max_features: int = MAX_FEATURES,
                 min_inliers: int = MIN_INLIERS, min_inlier_fraction: float = MIN_INLIER_FRACTION,
                 bodies: bool = True):
        self.work_side = int(work_side)
        self.max_features = int(max_features)
        self.min_inliers = int(min_inliers)
        self.min_inlier_fraction = float(min_inlier_fraction)
        self.bodies = bool(bodies)
        self._tiers = [_Tier(name, self.max_features, self.min_inliers, self.min_inlier_fraction)
                       for name in (SOURCES if self.bodies else SOURCES[:1])]
        self._prev = None  # previous grey working image
        self._prev_masks = None  # the previous image's mask per tier
        self._boxes: list = []

    def _grey(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """The grey working image, reduced by the integer factor k = floor(longer side / work_side)
        (640 px: kept, 832 -> 416, 1280 -> 427, 1920 -> 384; at least ``work_side``): OpenCV's
        area reduction by an integer factor is a plain k x k box mean (0.07 ms on clip 11's RGB
        frame against 1.1 ms for the non-integer 832 -> 360), and reducing before converting to grey gives the same image to
        rounding (both are linear) at a fraction of the cost."""
        import cv2

        h, w = rgb.shape[:2]
        k = max(1, max(h, w) // self.work_side)
        rgb = np.ascontiguousarray(rgb)
        if k == 1:
            return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 1.0
        # the last w % k columns and h % k rows are left out, so the reduction is exactly k x k
        hk, wk = h // k, w // k
        small = cv2.resize(rgb[: hk * k, : wk * k], (wk, hk), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), float(k)

    def _masks(self, shape, factor) -> list:
        masks = [person_mask(shape, self._boxes, factor)]
        if self.bodies:
            masks.append(face_mask(shape, self._boxes, factor))
        return masks

    def update(self, rgb: np.ndarray, boxes=()) -> CameraStep:
        """The step from the previous frame (the first frame: identity, ``ok``). ``boxes``: each
        person's face box (x1, y1, x2, y2) in frame pixels or None (their last box is kept)."""
        grey, factor = self._grey(rgb)
        boxes = list(boxes)
        if len(self._boxes) < len(boxes):
            self._boxes += [None] * (len(boxes) - len(self._boxes))
        for k, b in enumerate(boxes):
            if b is not None:
                self._boxes[k] = np.asarray(b.as_array() if hasattr(b, "as_array") else b, dtype=np.float64)
        masks = self._masks(grey.shape, factor)
        prev, prev_masks = self._prev, self._prev_masks
        self._prev, self._prev_masks = grey, masks
        if prev is None:
            for tier in self._tiers:
                tier.skip()
            return CameraStep(IDENTITY.copy(), True, 0, 0)
        failed = []
        for k, tier in enumerate(self._tiers):
            step = tier.step(prev, grey, prev_masks[k], masks[k], factor)
            if step.ok:
                for later in self._tiers[k + 1:]:
                    later.skip()  # not run on this step: its features are not in this image
                return step
            failed.append(step)
        first = failed[0]
        reason = "; ".join(s.reason for s in failed)
        return CameraStep(IDENTITY.copy(), False, first.n_features, first.n_inliers, reason, None)


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
