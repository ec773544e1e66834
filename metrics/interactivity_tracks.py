"""Interactivity, ``corrected`` mode: one person's eye/eyebrow track from landmarks to displacements.

Each step is a pure function on arrays (T frames, P points, NaN rows where a frame is missing),
in the order ``corrected_track`` applies them:

1. ``stabilise``: the camera's motion is removed (``faces.camera`` estimates it from the
   background): every frame's points are mapped into the first frame's pixels.
2. Scale: 224 / s, s = the person's median (stabilised) square-box side.
3. ``reject_glitches``: runs of 1 to ``MAX_GLITCH_RUN`` frames whose points lie far from the
   line between the frames before and after the run, while those two agree
   (``spike_frames`` is the one-frame case); and ``reject_gap_edges``: a frame next to a gap
   whose jump from its only neighbour is as large as a glitch (nothing supports it: the first
   frame of an occlusion, when the model still returns a face).
4. ``resample``: positions at a fixed 1/25 s time step (the frame on screen at each time), so
   that the displacement is per 1/25 s at any frame rate without multiplying the per-frame noise
   floor by fps / 25 (issue 10 item 4).
5. ``noise_floor``: the displacement pure landmark noise would give, from the track's own
   second differences (reported beside the value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

REF_SIZE = 224.0  # the face frame is scaled to 224 px (as the script's crop)
STEP = 1.0 / 25.0  # the fixed time step of the corrected value (s)

SPIKE_FLOOR = 10.0  # units: the script's own gate size; blinks move the 22-point mean by ~2
SPIKE_Z = 6.0  # robust z of a glitch (median + 6 * 1.4826 * MAD)
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this = its standard deviation
SPIKE_NEIGHBOUR_RATIO = 2.0  # a glitch is > 2x farther from its neighbours' line than they are apart
MAX_GLITCH_RUN = 3  # glitches of up to 3 consecutive frames are rejected (issue 10 item 3)


# --------------------------------------------------------------------------- geometry


def displacements(points: np.ndarray) -> np.ndarray:
    """(T, P, 2) points -> (T,) mean point displacement from frame k-1 to k (NaN at k = 0 and
    wherever either frame is missing)."""
    p = np.asarray(points, dtype=np.float64)
    out = np.full(len(p), np.nan)
    if len(p) > 1:
        out[1:] = np.mean(np.linalg.norm(p[1:] - p[:-1], axis=2), axis=1)
    return out


def stabilise(points: np.ndarray, camera: np.ndarray | None) -> np.ndarray:
    """Points (T, P, 2) of frame t mapped by ``camera[t]`` (T, 2, 3), the affine from frame t's
    pixels to the reference frame's (``faces.camera.cumulative``); None: unchanged."""
    p = np.asarray(points, dtype=np.float64)
    if camera is None:
        return p
    c = np.asarray(camera, dtype=np.float64)
    return np.einsum("tij,tpj->tpi", c[:, :, :2], p) + c[:, None, :, 2]


def camera_scale(camera: np.ndarray | None, n: int) -> np.ndarray:
    """(T,) linear scale of each frame's camera transform (a zoom changes the face's size)."""
    if camera is None:
        return np.ones(n)
    c = np.asarray(camera, dtype=np.float64)
    return np.sqrt(np.abs(np.linalg.det(c[:, :, :2])))


# --------------------------------------------------------------------------- glitches


def _threshold(dev: np.ndarray, floor: float, z: float) -> float:
    finite = dev[np.isfinite(dev)]
    if not finite.size:
        return floor
    med = float(np.median(finite))
    mad = float(np.median(np.abs(finite - med)))
    return max(floor, med + z * MAD_TO_SIGMA * mad)


def spike_frames(points: np.ndarray, floor: float = SPIKE_FLOOR, z: float = SPIKE_Z,
                 neighbour_ratio: float = SPIKE_NEIGHBOUR_RATIO) -> tuple[np.ndarray, np.ndarray, float]:
    """One-frame glitches: frame k's points lie farther than the threshold from the midpoint of
    frames k-1 and k+1, **and** more than ``neighbour_ratio`` times as far as those two are apart.
    Threshold = max(floor, median + z * 1.4826 * MAD) of that midpoint distance over the track.

    ``points``: (T, P, 2) in face units, NaN rows for missing frames. Returns (flags (T,) bool,
    midpoint distance (T,) with NaN where untestable, threshold used)."""
    p = np.asarray(points, dtype=np.float64)
    t_n = len(p)
    dev = np.full(t_n, np.nan)
    span = np.full(t_n, np.nan)
    if t_n >= 3:
        mid = 0.5 * (p[:-2] + p[2:])
        dev[1:-1] = np.mean(np.linalg.norm(p[1:-1] - mid, axis=2), axis=1)
        span[1:-1] = np.mean(np.linalg.norm(p[2:] - p[:-2], axis=2), axis=1)
    thr = _threshold(dev, floor, z)
    with np.errstate(invalid="ignore"):
        flags = np.isfinite(dev) & (dev > thr) & (dev > neighbour_ratio * span)
    return flags, dev, thr


def reject_glitches(points: np.ndarray, floor: float = SPIKE_FLOOR, z: float = SPIKE_Z,
                    neighbour_ratio: float = SPIKE_NEIGHBOUR_RATIO, max_run: int = MAX_GLITCH_RUN
                    ) -> tuple[np.ndarray, np.ndarray, float]:
    """Glitches of 1..``max_run`` consecutive frames -> (flags (T,) bool, run length of each
    flagged frame's run (T,) int, threshold).

    A run k..k+L-1 (all present, frames k-1 and k+L present) is a glitch when **every** frame of it
    lies farther than the threshold from where the straight line from frame k-1 to frame k+L puts
    it, and farther than ``neighbour_ratio`` times the distance between frames k-1 and k+L. For
    L = 1 this is exactly ``spike_frames`` (the line's midpoint), whose threshold is used for every
    L. A real movement is kept: a step that stays is as far from the frame before as from the line
    (so ratio < 1 < 2), and an overshoot that settles lies close to the line between the start and
    the settled position relative to their distance."""
    p = np.asarray(points, dtype=np.float64)
    t_n = len(p)
    flags, _, thr = spike_frames(p, floor, z, neighbour_ratio)
    runs = np.where(flags, 1, 0)
    for length in range(2, max_run + 1):
        n = t_n - length - 1  # runs k = 1 .. t_n - length - 1, all at once (a missing frame gives NaN: no run)
        if n <= 0:
            continue
        a, b = p[:n], p[length + 1: length + 1 + n]  # frames k - 1 and k + length
        span = np.mean(np.linalg.norm(b - a, axis=2), axis=1)
        dev = np.full(n, np.inf)
        for i in range(1, length + 1):
            line = a + (i / (length + 1)) * (b - a)
            dev = np.minimum(dev, np.mean(np.linalg.norm(p[i: i + n] - line, axis=2), axis=1))
        with np.errstate(invalid="ignore"):
            candidate = np.isfinite(dev) & np.isfinite(span) & (dev > thr) & (dev > neighbour_ratio * span)
        for j in np.flatnonzero(candidate):  # in order: a run overlapping one already flagged is not another
            k = j + 1
            if not flags[k: k + length].any():
                flags[k: k + length] = True
                runs[k: k + length] = length
    return flags, runs, thr


def reject_gap_edges(points: np.ndarray, threshold: float) -> np.ndarray:
    """(T,) bool: frames next to a gap (a missing neighbour inside the clip) whose jump from
    their only present neighbour exceeds ``threshold`` (the glitch threshold): no following frame
    supports them. Typical case: the first frame of an occlusion, on which the model still
    returns a face somewhere."""
    p = np.asarray(points, dtype=np.float64)
    t_n = len(p)
    ok = np.all(np.isfinite(p.reshape(t_n, -1)), axis=1)
    out = np.zeros(t_n, bool)
    for k in range(1, t_n - 1):
        if not ok[k] or ok[k - 1] == ok[k + 1]:
            continue  # missing, isolated (both neighbours missing) or inside the track
        j = k - 1 if ok[k - 1] else k + 1
        if float(np.mean(np.linalg.norm(p[k] - p[j], axis=1))) > threshold:
            out[k] = True
    return out


# --------------------------------------------------------------------------- time step


def resample(points: np.ndarray, times: np.ndarray, step: float = STEP) -> tuple[np.ndarray, np.ndarray]:
    """Positions at ``times[0] + j * step`` -> (grid times (J,), points (J, P, 2)): at each grid
    time the frame on screen then (the latest frame at or before it, to 1 microsecond), as a
    player shows it; NaN where that frame is missing.

    Why sample-and-hold and not interpolation: repeated frames (a 24 fps render shown at 25, 30
    or 48 fps) then give exactly the positions of the original, so the value does not depend on
    how a video was re-timed; and every step that spans a new frame carries that frame's landmark
    noise once, whatever the frame rate (per-frame value x fps / 25 multiplies it; interpolation
    averages it away by an amount that depends on how the two rates beat)."""
    p = np.asarray(points, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    n_steps = int(math.floor((t[-1] - t[0]) / step + 1e-6))
    grid = t[0] + step * np.arange(n_steps + 1)
    i = np.clip(np.searchsorted(t, grid + 1e-6, side="right") - 1, 0, len(t) - 1)
    return grid, p[i]


def noise_floor(points: np.ndarray) -> float:
    """The mean displacement per step that landmark noise alone would give, in the track's units
    (an upper estimate: real acceleration adds to it).

    White noise of standard deviation sigma per coordinate has second differences
    x[k+1] - 2 x[k] + x[k-1] of standard deviation sigma * sqrt(6), estimated robustly as
    1.4826 MAD; the displacement between two noisy positions is then a 2-D normal of standard
    deviation sigma * sqrt(2) per coordinate, whose length has mean sigma * sqrt(2) * sqrt(pi / 2)
    = sigma * sqrt(pi) (Rayleigh). NaN with fewer than 3 consecutive present frames."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 3:
        return math.nan
    second = p[2:] - 2 * p[1:-1] + p[:-2]
    v = second[np.all(np.isfinite(second.reshape(len(second), -1)), axis=1)].ravel()
    if not v.size:
        return math.nan
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(v - np.median(v)))) / math.sqrt(6.0)
    return sigma * math.sqrt(math.pi)


# --------------------------------------------------------------------------- one person


@dataclass
class CorrectedTrack:
    points: np.ndarray  # (T, P, 2) stabilised points in face units, NaN where missing or rejected
    motion: np.ndarray  # (T,) per-frame displacement k-1 -> k of ``points`` (diagnostics)
    glitch: np.ndarray  # (T,) bool: rejected as part of a glitch run
    glitch_run: np.ndarray  # (T,) int: length of that run (0: none)
    gap_edge: np.ndarray  # (T,) bool: rejected as an unsupported jump next to a gap
    blank: np.ndarray  # (T,) bool: rejected because the face crop failed the quality test
    missing: np.ndarray  # (T,) bool: no landmarks
    grid: np.ndarray  # (J,) times of the fixed step
    step_motion: np.ndarray  # (J,) displacement from grid time j-1 to j (NaN at 0 / where invalid)
    scale: float  # 224 / s
    side: float  # s, the person's median square-box side (px, stabilised)
    threshold: float  # the glitch threshold used
    noise: float  # noise_floor of the track, face units per step


def corrected_track(points_px: np.ndarray, sides: np.ndarray | None, times: np.ndarray, *,
                    camera: np.ndarray | None = None, blank: np.ndarray | None = None,
                    floor: float = SPIKE_FLOOR, z: float = SPIKE_Z, neighbour_ratio: float = SPIKE_NEIGHBOUR_RATIO,
                    max_run: int = MAX_GLITCH_RUN, step: float = STEP) -> CorrectedTrack:
    """One person: eye/brow points (T, P, 2) in frame px (NaN where missing), square-box sides
    (T,) px (None: the points are already in face units) and frame times (T,) s."""
    t_n = len(points_px)
    pts = stabilise(points_px, camera)
    missing = ~np.all(np.isfinite(pts.reshape(t_n, -1)), axis=1)
    if sides is None:
        side, scale = REF_SIZE, 1.0
    else:
        s = np.asarray(sides, dtype=np.float64) * camera_scale(camera, t_n)
        s = s[np.isfinite(s) & (s > 0) & ~missing]
        side = float(np.median(s)) if s.size else math.nan
        scale = REF_SIZE / side if s.size else math.nan
    pts = pts * scale
    blank = np.zeros(t_n, bool) if blank is None else (np.asarray(blank, bool) & ~missing)
    pts[blank] = np.nan
    glitch, runs, thr = reject_glitches(pts, floor, z, neighbour_ratio, max_run)
    pts[glitch] = np.nan
    edge = np.zeros(t_n, bool)
    for _ in range(max_run):  # a rejected edge frame exposes the next one
        more = reject_gap_edges(pts, thr)
        if not more.any():
            break
        edge |= more
        pts[more] = np.nan
    grid, at = resample(pts, times, step)
    step_motion = displacements(at)
    return CorrectedTrack(pts, displacements(pts), glitch, runs, edge, blank, missing, grid, step_motion,
                          scale, side, thr, noise_floor(at))
