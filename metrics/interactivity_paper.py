"""Interactivity, ``paper`` mode: the released AnyTalker script's rules, one pure function each.

``benchmark/calculate_interactivity.py`` at HKUST-C4G/AnyTalker ``e5490b6`` (spec/metrics.md
§5.2). Every rule here is rule-for-rule the script's; ``paper_interactivity`` runs them on
arrays. The corrected mode (``interactivity_tracks``) shares only the segment helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

REF_SIZE = 224.0  # the face frame is scaled to 224 px (script: crop resized to 224, §5.2 step 4)
FPS_REF = 25.0  # interactivity_25fps = per-frame displacement * fps / 25 (the script's own unit is per frame)

PAPER_EMA = 0.7  # c <- 0.7 c_raw + 0.3 c_prev
PAPER_CENTER_GATE = 10.0  # px in the original frame (the script's comment says 20; its code uses 10)
PAPER_LANDMARK_GATE = 10.0  # mean distance over all K points, in 224/M units


# =============================================================================================
# Pure functions: segments


def decimal_intervals(person) -> tuple[tuple[float, float], ...]:
    """The speaking segments as the script reads them: the released numbers as decimal seconds
    (the manifest's ``speaking_raw``; manifests without it hold plain seconds in ``speaking``)."""
    raw = getattr(person, "speaking_raw", None)
    if raw:
        return tuple((float(s), float(e)) for s, e in raw)
    return tuple(person.speaking)


def in_closed_intervals(t: float, intervals: Sequence[tuple[float, float]]) -> bool:
    """The script's test: ``s <= t <= e`` for any interval (so [[0, 0]] marks t = 0 as speaking)."""
    return any(s <= t <= e for s, e in intervals)


def in_half_open_intervals(t: float, intervals: Sequence[tuple[float, float]]) -> bool:
    return any(s <= t < e for s, e in intervals)


# =============================================================================================
# Pure functions: paper mode


def square_box(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """The script's square box: side = max(w, h) around the box centre, shifted inside the image,
    then clipped to it (§5.2 pass 1)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1)
    cx, cy = 0.5 * (x1 + x2), 0.5 * (y1 + y2)
    nx1, ny1 = cx - side / 2, cy - side / 2
    nx1 = min(max(nx1, 0.0), max(width - side, 0.0))
    ny1 = min(max(ny1, 0.0), max(height - side, 0.0))
    nx2, ny2 = min(nx1 + side, float(width)), min(ny1 + side, float(height))
    return max(nx1, 0.0), max(ny1, 0.0), nx2, ny2


def paper_crop_size(square_sides: np.ndarray) -> float:
    """M = max(224, largest int(side)) over frames in which every person has a box (§5.2 pass 1).

    ``square_sides``: (T, N) square-box sides, NaN where a person has no box."""
    s = np.asarray(square_sides, dtype=np.float64)
    full = s[np.all(np.isfinite(s), axis=1)]
    biggest = int(np.max(np.floor(full))) if full.size else 0
    return float(max(REF_SIZE, biggest))


@dataclass
class PaperTrack:
    """One person through the script's pass 2."""

    motion: np.ndarray  # (T,) displacement at frame k (NaN: no face, or first frame)
    centers: np.ndarray  # (T, 2) smoothed crop centres (NaN: no face)
    center_outlier: np.ndarray  # (T,) bool: the 10 px centre gate fired
    landmark_outlier: np.ndarray  # (T,) bool: the 10-unit landmark gate fired


def paper_track(raw_centers: np.ndarray, landmarks: np.ndarray, eye_idx: Sequence[int], crop_size: float,
                ema: float = PAPER_EMA, center_gate: float = PAPER_CENTER_GATE,
                landmark_gate: float = PAPER_LANDMARK_GATE) -> PaperTrack:
    """The script's per-person state machine (§5.2 pass 2, steps 3-6 and 9).

    ``raw_centers``: (T, 2) square-box centres in frame pixels; ``landmarks``: (T, K, 2) in frame
    pixels; NaN rows where the person has no face (such frames change no state)."""
    t_n = len(raw_centers)
    motion = np.full(t_n, np.nan)
    centers = np.full((t_n, 2), np.nan)
    c_out = np.zeros(t_n, bool)
    l_out = np.zeros(t_n, bool)
    eye_idx = np.asarray(eye_idx)
    scale = REF_SIZE / crop_size
    c_prev = c_stable = None
    x_prev = s_stable = None
    for k in range(t_n):
        c_raw = np.asarray(raw_centers[k], dtype=np.float64)
        lm = np.asarray(landmarks[k], dtype=np.float64)
        if not (np.all(np.isfinite(c_raw)) and np.all(np.isfinite(lm))):
            continue
        # step 3: centre gate against the last stable centre, then the EMA
        outlier = c_stable is not None and float(np.hypot(*(c_raw - c_stable))) > center_gate
        if outlier:
            c_raw = c_stable
        c = c_raw if c_prev is None else ema * c_raw + (1.0 - ema) * c_prev
        if not outlier:
            c_stable = c
        c_prev = c
        centers[k], c_out[k] = c, outlier
        # step 4: into the 224-scaled crop of side M around c
        x = (lm - (c - crop_size / 2.0)) * scale
        # step 5: landmark gate (mean over all K points) against the last stable set
        l_outlier = s_stable is not None and float(np.mean(np.linalg.norm(x - s_stable, axis=1))) > landmark_gate
        if l_outlier:
            x = s_stable
        l_out[k] = l_outlier
        # step 6: motion over the 22 eye/brow points
        if x_prev is not None:
            motion[k] = float(np.mean(np.linalg.norm(x[eye_idx] - x_prev[eye_idx], axis=1)))
        # step 9
        x_prev = x
        if not l_outlier:
            s_stable = x
    return PaperTrack(motion, centers, c_out, l_out)


def paper_failure(counts: Sequence[int], n_people: int) -> str | None:
    """The script's rule: the first frame with any face sets the expected count; the clip fails
    if that is not N or any later frame differs (§5.2 step 1). None when the rule passes."""
    counts = [int(c) for c in counts]
    first = next((k for k, c in enumerate(counts) if c > 0), None)
    if first is None:
        return "no face in any frame"
    expected = counts[first]
    if expected != n_people:
        return f"paper failure rule: the first frame with faces (frame {first}) has {expected} of {n_people}"
    bad = [k for k in range(first + 1, len(counts)) if counts[k] != expected]
    if bad:
        return (f"paper failure rule: {len(bad)} frame(s) after frame {first} do not show all {n_people} "
                f"faces (first: frame {bad[0]} with {counts[bad[0]]})")
    return None


@dataclass
class PaperResult:
    value: float | None
    per_person: list  # per person: mean motion or None
    reason: str | None  # the failure rule's reason (None: the clip scores)
    crop_size: float
    tracks: list  # PaperTrack per person
    used: list  # (T,) bool per person: listening frames with a motion
    times: np.ndarray  # the script's t = index / fps


def paper_interactivity(boxes: np.ndarray, points: np.ndarray, eye_idx: Sequence[int], frame_size: tuple[int, int],
                        fps: float, intervals: Sequence[Sequence[tuple[float, float]]],
                        frame_index: np.ndarray | None = None) -> PaperResult:
    """The whole script on arrays: ``boxes`` (T, N, 4) and ``points`` (T, N, K, 2) in frame px
    (NaN where a person has no face), ``intervals[n]`` the released numbers read as decimal
    seconds, tested closed at t = index / fps; value = the plain mean of the included per-frame
    motions (the script's 1/fps weights cancel)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    t_n, n = boxes.shape[:2]
    width, height = frame_size
    present = np.all(np.isfinite(boxes), axis=2) & np.all(np.isfinite(points.reshape(t_n, n, -1)), axis=2)
    squares = np.full((t_n, n, 4), np.nan)
    for t in range(t_n):
        for k in range(n):
            if present[t, k]:
                squares[t, k] = square_box(boxes[t, k], width, height)
    crop = paper_crop_size(squares[:, :, 2] - squares[:, :, 0])
    centers = 0.5 * (squares[:, :, :2] + squares[:, :, 2:])
    index = np.arange(t_n) if frame_index is None else np.asarray(frame_index)
    times = index.astype(np.float64) / fps
    tracks, used, per_person = [], [], []
    for k in range(n):
        pts = np.where(present[:, k, None, None], points[:, k], np.nan)
        tr = paper_track(centers[:, k], pts, eye_idx, crop)
        listening = np.array([not in_closed_intervals(t, intervals[k]) for t in times])
        use = listening & np.isfinite(tr.motion)
        tracks.append(tr)
        used.append(use)
        per_person.append(float(np.mean(tr.motion[use])) if use.any() else None)
    reason = paper_failure(present.sum(axis=1), n)
    if reason is None and not any(u.any() for u in used):
        reason = "no listening frame with landmarks (paper rules)"
    value = None
    if reason is None:
        value = float(np.mean(np.concatenate([tr.motion[u] for tr, u in zip(tracks, used)])))
    return PaperResult(value, per_person, reason, crop, tracks, used, times)
