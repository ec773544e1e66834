"""Plain data types shared by the face tracker, the landmark backends and every face-based metric.

``FaceBox`` lives here (the foundation) so that ``interactive_eyes.faces`` never imports
``metrics/``; ``metrics.base`` re-exports it for the metric contract.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FaceBox:
    """A face in frame pixels: x1, y1, x2, y2 and the detector's score."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float = 1.0

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def center(self) -> tuple[float, float]:
        return (0.5 * (self.x1 + self.x2), 0.5 * (self.y1 + self.y2))

    def as_array(self) -> np.ndarray:
        return np.array([self.x1, self.y1, self.x2, self.y2], dtype=np.float64)

    # ---- helpers used by the tracker and the metrics (pure geometry, no state)

    @property
    def side(self) -> float:
        """Side of the square box this face is normalised by: ``max(width, height)``
        (the AnyTalker script's rule, spec/metrics.md §5.2 pass 1)."""
        return max(self.width, self.height)

    @classmethod
    def from_points(cls, points: np.ndarray, score: float = 1.0) -> "FaceBox":
        """The tight box around (K, 2) points."""
        lo = points.min(axis=0)
        hi = points.max(axis=0)
        return cls(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]), float(score))

    def scaled(self, factor: float) -> "FaceBox":
        """The same box in an image scaled by ``factor`` (e.g. from a downscaled detection copy)."""
        return FaceBox(self.x1 * factor, self.y1 * factor, self.x2 * factor, self.y2 * factor, self.score)

    def shifted(self, dx: float, dy: float) -> "FaceBox":
        return FaceBox(self.x1 + dx, self.y1 + dy, self.x2 + dx, self.y2 + dy, self.score)


def iou(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0
