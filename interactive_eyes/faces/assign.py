"""Gated Hungarian assignment of detected faces to the people a tracker follows (``faces.track``).

A face can be person k's only if
    |centre - last centre| / last side + |log(side / last side)|  <=  gate,
gate = ``GATE_BASE`` + ``GATE_PER_MISS`` x frames missed, up to ``GATE_MAX`` (see ``faces.track``).
"""

from __future__ import annotations

import math

import numpy as np

from interactive_eyes.faces.types import FaceBox

# 0.6 face sides between consecutive frames is far beyond natural head motion at >= 12 fps and
# well below the ~2-3 face sides between neighbours in a shot; a person lost for a while is
# looked for farther away, up to GATE_MAX. The same gate rejects a tracked face that jumped.
GATE_BASE = 0.6
GATE_PER_MISS = 0.1
GATE_MAX = 3.0
_UNREACHABLE = 1e6


def assignment_cost(box: FaceBox, last: FaceBox) -> float:
    """Centre distance in units of the last face side, plus the absolute log size ratio."""
    side = max(last.side, 1.0)
    (cx, cy), (px, py) = box.center, last.center
    return math.hypot(cx - px, cy - py) / side + abs(math.log(max(box.side, 1.0) / side))


def assign(last: list[FaceBox | None], missed: list[int], faces: list[FaceBox]) -> list[int | None]:
    """Hungarian assignment of ``faces`` to people (their last boxes), gated; None = no face."""
    from scipy.optimize import linear_sum_assignment

    out: list[int | None] = [None] * len(last)
    if not faces:
        return out
    cost = np.full((len(last), len(faces)), _UNREACHABLE)
    for i, (box, m) in enumerate(zip(last, missed)):
        if box is None:
            continue
        gate = min(GATE_BASE + GATE_PER_MISS * m, GATE_MAX)
        for j, f in enumerate(faces):
            c = assignment_cost(f, box)
            if c <= gate:
                cost[i, j] = c
    rows, cols = linear_sum_assignment(cost)
    for i, j in zip(rows, cols):
        if cost[i, j] < _UNREACHABLE:
            out[i] = int(j)
    return out
