"""Interactivity: how much a listener's eyes and eyebrows move (AnyTalker, arXiv 2511.23475).

For each person, while that person is **listening**, the mean displacement between consecutive
frames of 22 eye and eyebrow keypoints (``faces.landmarks.EYE_BROW_POINTS``), measured in a
per-person face frame scaled to 224 px; the clip's value averages those per-frame displacements
over all listening frames of all people (so each person weighs by how long they listen), and
every person's own mean is reported too. Higher = more listener reaction. Units: 224-px face
units per frame.

Two modes (``mode=``), spec/metrics.md §5:

``paper`` reproduces the released script (``benchmark/calculate_interactivity.py``, §5.2) rule
by rule:
  * one crop size for the whole video, M = max(224, largest ``int`` side of any person's square
    face box) (``paper_crop_size``); landmarks go to X = (L - (c - M/2)) * 224 / M;
  * the crop centre c follows each person's square-box centre through an EMA,
    c <- 0.7 c_raw + 0.3 c_prev, behind a 10 px gate: a raw centre more than 10 px from the last
    *stable* centre is replaced by it, and the stable centre only moves on non-outlier frames;
  * a second 10-unit gate on the mean distance of all K landmarks to the last stable landmark
    set S replaces X by S; S only moves on non-outlier frames. Both gates are sticky: once a
    genuine movement exceeds them, the person stays frozen (motion 0) until they come back;
  * speaking segments are the released numbers read as **decimal seconds** (``speaking_raw``
    in the manifest), tested as **closed** intervals at t = frame index / fps;
  * the first frame of a person contributes nothing (no previous landmarks);
  * failure rule: the first frame with any face sets the expected face count; the clip fails if
    it is not N or if any later frame has a different count.
  Unlike the script, a failed clip is reported as ``failed`` with its reason (the engine counts
  it); it is never dropped silently from the mean.
  What ie-bench cannot reproduce here: the script's two insightface detectors matched by rank
  (§5.4 item 3) - boxes and identities come from ie-bench's tracker in both modes - and, unless
  the ``insightface`` backend is chosen, its landmark model (values are comparable only within a
  backend, §6.1).

``corrected`` (default) fixes what §5.4 shows to be wrong, each change for a stated reason:
  * **Segments in true seconds.** The released numbers are ``seconds.frames`` timecodes at
    30 fps (§5.3: every fraction <= .29, end times match the audio to one frame, VAD onsets line
    up); reading them as decimals labels up to 0.68 s per boundary wrongly, so the trailing part
    of every speech turn is counted as listening. The manifest's ``speaking`` (converted) is
    used, half-open ``s <= t < e`` on presentation times; a displacement sample counts when the
    person listens at both of its frames.
  * **Each person's own scale.** The script's M is shared by everyone and never below 224, so
    faces smaller than 224 px are measured in raw pixels (the value then depends on the video's
    resolution: 480p and 720p renders of the same motion differ) and a smaller face weighs less
    than a larger one. Here each person's landmarks are scaled by 224 / s, s = that person's
    median square-box side over the clip (a per-clip median, because the per-frame box side
    jitters by ~1%, which at ~100 units from the face centre would itself read as ~1 unit of
    motion per frame). The origin of the face frame is fixed per person, so displacements are
    those of the landmarks themselves: the script's moving EMA centre removes a frame-rate
    dependent share of real head motion (nods and turns are listener reactions) and adds 70% of
    the box detector's jitter to every point.
  * **Outliers against the neighbouring frames, never sticky.** A frame is a landmark glitch
    when its 22 points lie far from the midpoint of the previous and next frames (mean distance
    above max(10 units, median + 6 x 1.4826 MAD of that distance over the person's frames)) while
    those two frames agree with each other (the distance is more than twice their own mean
    distance). A glitch of one frame is thus rejected and the two displacements touching it are
    skipped; a genuine movement, even a fast step, is kept (its midpoint distance is at most half
    its size, and its neighbours disagree). No state carries over, so nothing freezes. The
    previous frame alone cannot tell a glitch from the start of a real movement; the next frame
    can. 10 units is the script's own gate size; blinks move the 22-point mean by ~2 units.
  * **Failures counted:** a person found in fewer than half of the frames fails the clip with
    that reason (``faces.track.MIN_VISIBLE_FRACTION``), as does a clip with no usable listening
    frame; single missed frames only leave gaps (the displacements touching them are skipped and
    counted).
  * **Frame-rate normalised value.** A per-frame displacement halves when the frame rate doubles
    (§5.4 item 5: 25 fps scores ~4% below 24 fps, 30 fps ~20% below).
    ``details['interactivity_25fps']`` = value * fps / 25 is the displacement per 1/25 s, so 24
    and 30 fps outputs compare fairly; ``value`` stays the per-frame number.

Both modes also report ``interactivity_25fps`` and per-person values, the number of listening
frames used and skipped (and why), fps, the backend and the scale(s) used.

Pure functions on landmark arrays (``paper_*``, ``corrected_*``, ``square_box``,
``in_closed_intervals``) carry all of the arithmetic so that each rule is unit-tested on synthetic
sequences; the ``Interactivity`` class only buffers frames and calls them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from interactive_eyes.faces.landmarks import N_POINTS, eye_brow_indices
from interactive_eyes.faces.track import MIN_VISIBLE_FRACTION
from interactive_eyes.metrics.base import ClipContext, ClipResult, FrameData, Metric

MODES = ("corrected", "paper")

REF_SIZE = 224.0  # the face frame is scaled to 224 px (script: crop resized to 224, §5.2 step 4)
FPS_REF = 25.0  # interactivity_25fps = per-frame displacement * fps / 25

# paper mode (spec/metrics.md §5.2)
PAPER_EMA = 0.7  # c <- 0.7 c_raw + 0.3 c_prev
PAPER_CENTER_GATE = 10.0  # px in the original frame (the script's comment says 20; its code uses 10)
PAPER_LANDMARK_GATE = 10.0  # mean distance over all K points, in 224/M units

# corrected mode
SPIKE_FLOOR = 10.0  # units: the script's own gate size; blinks move the 22-point mean by ~2
SPIKE_Z = 6.0  # robust z of a glitch (median + 6 * 1.4826 * MAD)
SPIKE_NEIGHBOUR_RATIO = 2.0  # a glitch is > 2x farther from its neighbours' midpoint than they are apart


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


# =============================================================================================
# Pure functions: corrected mode


def displacements(points: np.ndarray) -> np.ndarray:
    """(T, P, 2) points -> (T,) mean point displacement from frame k-1 to k (NaN at k = 0 and
    wherever either frame is missing)."""
    p = np.asarray(points, dtype=np.float64)
    out = np.full(len(p), np.nan)
    if len(p) > 1:
        out[1:] = np.mean(np.linalg.norm(p[1:] - p[:-1], axis=2), axis=1)
    return out


def spike_frames(points: np.ndarray, floor: float = SPIKE_FLOOR, z: float = SPIKE_Z,
                 neighbour_ratio: float = SPIKE_NEIGHBOUR_RATIO) -> tuple[np.ndarray, np.ndarray, float]:
    """Frames whose points are a one-frame glitch (see the module docstring).

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
    finite = dev[np.isfinite(dev)]
    if finite.size:
        med = float(np.median(finite))
        mad = float(np.median(np.abs(finite - med)))
        thr = max(floor, med + z * 1.4826 * mad)
    else:
        thr = floor
    with np.errstate(invalid="ignore"):
        flags = np.isfinite(dev) & (dev > thr) & (dev > neighbour_ratio * span)
    return flags, dev, thr


@dataclass
class CorrectedTrack:
    motion: np.ndarray  # (T,) displacement k-1 -> k in face units (NaN where a frame is missing)
    glitch: np.ndarray  # (T,) bool: frame k is a one-frame landmark glitch
    touches_glitch: np.ndarray  # (T,) bool: the k-1 -> k displacement touches a glitch frame
    scale: float  # 224 / s
    side: float  # s, the person's median square-box side (px)


def corrected_track(points_px: np.ndarray, sides: np.ndarray, **spike_options) -> CorrectedTrack:
    """One person in corrected mode: eye/brow points (T, 22, 2) in frame px (NaN where missing)
    and square-box sides (T,) -> displacements in 224-px face units with glitches flagged."""
    finite_sides = np.asarray(sides, dtype=np.float64)
    finite_sides = finite_sides[np.isfinite(finite_sides) & (finite_sides > 0)]
    if not finite_sides.size:
        nan = np.full(len(points_px), np.nan)
        return CorrectedTrack(nan, np.zeros(len(nan), bool), np.zeros(len(nan), bool), math.nan, math.nan)
    side = float(np.median(finite_sides))
    scale = REF_SIZE / side
    pts = np.asarray(points_px, dtype=np.float64) * scale
    motion = displacements(pts)
    glitch, _, _ = spike_frames(pts, **spike_options)
    touches = np.zeros(len(pts), bool)
    touches[1:] = glitch[1:] | glitch[:-1]
    return CorrectedTrack(motion, glitch, touches, scale, side)


# =============================================================================================
# The metric


@dataclass
class _State:
    ctx: ClipContext
    fps: float
    eye_idx: tuple[int, ...] | None = None
    backend: str | None = None
    n_points: int | None = None
    index: list[int] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)  # (N, 4) per frame, NaN where missing
    points: list[np.ndarray] = field(default_factory=list)  # (N, P, 2) float32, NaN where missing
    size: tuple[int, int] | None = None  # frame width, height


class Interactivity(Metric):
    """Listener eye/eyebrow motion; see the module docstring for the definition and both modes."""

    name = "interactivity"
    version = "1.0"
    higher_is_better = True
    needs = frozenset({"faces", "landmarks"})
    description = ("mean displacement of 22 eye/eyebrow keypoints between consecutive frames while a person "
                   "listens, in 224-px face units per frame (higher = more listener reaction)")

    def __init__(self, mode: str = "corrected", *, frame_table: bool = False, device: str = "cpu",
                 spike_floor: float = SPIKE_FLOOR, spike_z: float = SPIKE_Z,
                 min_visible_fraction: float = MIN_VISIBLE_FRACTION):
        if mode not in MODES:
            raise ValueError(f"interactivity: unknown mode {mode!r}; known: {', '.join(MODES)}")
        self.mode = mode
        self.frame_table = bool(frame_table)  # per-frame rows in details (diagnostics only)
        self.spike_floor, self.spike_z = float(spike_floor), float(spike_z)
        self.min_visible_fraction = float(min_visible_fraction)

    def params(self) -> dict[str, Any]:
        common = {"mode": self.mode, "ref_size": REF_SIZE, "fps_ref": FPS_REF}
        if self.mode == "paper":
            return {**common, "segments": "speaking_raw as decimal seconds, closed intervals, t = index / fps",
                    "crop": "shared M = max(224, largest square box side)", "ema": PAPER_EMA,
                    "center_gate_px": PAPER_CENTER_GATE, "landmark_gate": PAPER_LANDMARK_GATE,
                    "failure": "face count of the first frame with faces must be N and never change"}
        return {**common, "segments": "speaking in seconds, half-open, both frames listening, presentation times",
                "scale": "per person: 224 / median square box side", "spike_floor": self.spike_floor,
                "spike_z": self.spike_z, "spike_neighbour_ratio": SPIKE_NEIGHBOUR_RATIO,
                "min_visible_fraction": self.min_visible_fraction}

    # ------------------------------------------------------------------------------ streaming

    def start(self, ctx: ClipContext) -> _State:
        fps = float(getattr(ctx.info, "fps", 0.0) or 0.0)
        return _State(ctx=ctx, fps=fps)

    def update(self, state: _State, frame: FrameData) -> None:
        n = state.ctx.clip.n_people
        if frame.landmarks is not None and state.backend is None and frame.landmark_backend:
            state.backend = frame.landmark_backend
            state.eye_idx = eye_brow_indices(frame.landmark_backend)
            state.n_points = N_POINTS[state.backend]
        if state.size is None:
            state.size = (int(frame.rgb.shape[1]), int(frame.rgb.shape[0]))
        boxes = np.full((n, 4), np.nan)
        for k, b in enumerate(frame.faces[:n]):
            if b is not None:
                boxes[k] = b.as_array()
        # paper mode's landmark gate reads all K points; corrected mode only the 22
        pts = None
        if state.backend is not None:
            n_pts = state.n_points if self.mode == "paper" else len(state.eye_idx)
            pts = np.full((n, n_pts, 2), np.nan, dtype=np.float32)
            for k, lm in enumerate((frame.landmarks or ())[:n]):
                if lm is None:
                    continue
                lm = np.asarray(lm)
                if lm.ndim != 2 or lm.shape[0] != state.n_points:
                    raise ValueError(f"landmarks of person {k} have shape {lm.shape}; backend {state.backend} "
                                     f"gives ({state.n_points}, 2)")
                pts[k] = lm if self.mode == "paper" else lm[list(state.eye_idx)]
            # a person counts as present only with both a box and landmarks
            missing = ~np.all(np.isfinite(pts.reshape(n, -1)), axis=1) | ~np.all(np.isfinite(boxes), axis=1)
            boxes[missing] = np.nan
            pts[missing] = np.nan
        state.index.append(int(frame.index))
        state.time.append(float(frame.time))
        state.boxes.append(boxes)
        state.points.append(pts)

    def finish(self, state: _State) -> ClipResult:
        clip = state.ctx.clip
        n_frames = len(state.index)
        if n_frames < 2:
            return ClipResult.failed(self.name, f"only {n_frames} frame(s); at least 2 are needed")
        if state.backend is None:
            return ClipResult.failed(self.name, "no landmarks were provided (the engine ran without a landmark backend)")
        fps = state.fps
        times = np.asarray(state.time)
        if not fps > 0:
            fps = 1.0 / float(np.median(np.diff(times)))
        n_pts = state.n_points if self.mode == "paper" else len(state.eye_idx)
        blank = np.full((clip.n_people, n_pts, 2), np.nan)
        # frames before the first one with landmarks (the backend was not known yet) are gaps
        points = np.stack([blank if p is None else p for p in state.points]).astype(np.float64)  # (T, N, P, 2)
        boxes = np.stack(state.boxes)  # (T, N, 4)
        boxes[~np.all(np.isfinite(points.reshape(*points.shape[:2], -1)), axis=2)] = np.nan
        present = np.all(np.isfinite(boxes), axis=2)  # (T, N)
        base = {"mode": self.mode, "backend": state.backend, "fps": fps, "n_frames": n_frames,
                "n_found": [int(v) for v in present.sum(axis=0)]}
        if self.mode == "paper":
            return self._finish_paper(state, boxes, points, present, fps, base)
        return self._finish_corrected(state, boxes, points, present, fps, base)

    # ------------------------------------------------------------------------------ paper

    def _finish_paper(self, state, boxes, points, present, fps, base) -> ClipResult:
        clip = state.ctx.clip
        n = clip.n_people
        t_n = len(state.index)
        width, height = state.size
        squares = np.full((t_n, n, 4), np.nan)
        for t in range(t_n):
            for k in range(n):
                if present[t, k]:
                    squares[t, k] = square_box(boxes[t, k], width, height)
        sides = squares[:, :, 2] - squares[:, :, 0]
        crop = paper_crop_size(sides)
        centers = 0.5 * (squares[:, :, :2] + squares[:, :, 2:])
        times = np.asarray(state.index, dtype=np.float64) / fps  # the script's t = k / fps
        details = {**base, "crop_size_M": crop, "segments": "decimal (released numbers), closed"}

        tracks, used, per_person = [], [], {}
        for k, person in enumerate(clip.people):
            tr = paper_track(centers[:, k], points[:, k], state.eye_idx, crop)
            intervals = decimal_intervals(person)
            listening = np.array([not in_closed_intervals(t, intervals) for t in times])
            use = listening & np.isfinite(tr.motion)
            tracks.append(tr)
            used.append(use)
            per_person[person.role] = float(np.mean(tr.motion[use])) if use.any() else None
        n_used = [int(u.sum()) for u in used]
        details["per_person"] = {p.role: {"n_listening_frames_used": n_used[k],
                                          "n_center_outliers": int(tracks[k].center_outlier.sum()),
                                          "n_landmark_outliers": int(tracks[k].landmark_outlier.sum())}
                                 for k, p in enumerate(clip.people)}
        details["n_listening_frames_used"] = int(sum(n_used))
        if self.frame_table:
            details["frame_table"] = self._paper_table(state, tracks, used, crop, times)
        reason = paper_failure(present.sum(axis=1), n)
        if reason is None and not any(n_used):
            reason = "no listening frame with landmarks (paper rules)"
        if reason:
            return ClipResult.failed(self.name, reason, **details)
        total = np.concatenate([tr.motion[u] for tr, u in zip(tracks, used)])
        value = float(np.mean(total))
        details["interactivity_25fps"] = value * fps / FPS_REF
        details["per_person_25fps"] = {r: (v * fps / FPS_REF if v is not None else None) for r, v in per_person.items()}
        return ClipResult(metric=self.name, value=value, per_person=per_person, details=details)

    def _paper_table(self, state, tracks, used, crop, times) -> list[dict]:
        rows = []
        for k, person in enumerate(state.ctx.clip.people):
            intervals = decimal_intervals(person)
            tr = tracks[k]
            for t, idx in enumerate(state.index):
                c = tr.centers[t]
                rows.append(self._row(idx, float(times[t]), person.role, not in_closed_intervals(times[t], intervals),
                                      tr.motion[t], bool(np.isfinite(tr.motion[t])),
                                      bool(tr.center_outlier[t] or tr.landmark_outlier[t]), bool(used[k][t]),
                                      None if not np.all(np.isfinite(c)) else
                                      [c[0] - crop / 2, c[1] - crop / 2, c[0] + crop / 2, c[1] + crop / 2],
                                      self._eye_points(state, t, k)))
        return rows

    # ------------------------------------------------------------------------------ corrected

    def _finish_corrected(self, state, boxes, points, present, fps, base) -> ClipResult:
        clip = state.ctx.clip
        t_n = len(state.index)
        times = np.asarray(state.time)
        sides = np.where(present, np.maximum(boxes[:, :, 2] - boxes[:, :, 0], boxes[:, :, 3] - boxes[:, :, 1]), np.nan)
        details = {**base, "segments": "seconds (timecodes converted), half-open"}

        visible = present.sum(axis=0)
        for k, person in enumerate(clip.people):
            if visible[k] < self.min_visible_fraction * t_n:
                return ClipResult.failed(
                    self.name, f"person {person.role} has landmarks in {int(visible[k])} of {t_n} frames "
                               f"(< {self.min_visible_fraction:.0%})", **details)

        tracks, used, per_person, person_details = [], [], {}, {}
        for k, person in enumerate(clip.people):
            tr = corrected_track(points[:, k], sides[:, k], floor=self.spike_floor, z=self.spike_z)
            listening = np.array([not in_half_open_intervals(t, person.speaking) for t in times])
            pair = np.zeros(t_n, bool)
            pair[1:] = listening[1:] & listening[:-1]  # the sample k-1 -> k: listening at both frames
            have = np.isfinite(tr.motion)
            use = pair & have & ~tr.touches_glitch
            tracks.append(tr)
            used.append(use)
            per_person[person.role] = float(np.mean(tr.motion[use])) if use.any() else None
            person_details[person.role] = {
                "n_listening_frames": int(pair.sum()),
                "n_listening_frames_used": int(use.sum()),
                "n_skipped_missing": int((pair & ~have).sum()),
                "n_skipped_outlier": int((pair & have & tr.touches_glitch).sum()),
                "n_glitch_frames": int(tr.glitch.sum()),
                "face_side_px": tr.side,
                "scale": tr.scale,
            }
        details["per_person"] = person_details
        details["n_listening_frames"] = int(sum(d["n_listening_frames"] for d in person_details.values()))
        details["n_listening_frames_used"] = int(sum(d["n_listening_frames_used"] for d in person_details.values()))
        details["n_listening_frames_skipped"] = details["n_listening_frames"] - details["n_listening_frames_used"]
        if self.frame_table:
            details["frame_table"] = self._corrected_table(state, tracks, used, boxes, times)
        if not details["n_listening_frames_used"]:
            return ClipResult.failed(self.name, "no listening frame with landmarks for any person", **details)
        total = np.concatenate([tr.motion[u] for tr, u in zip(tracks, used)])
        value = float(np.mean(total))
        details["interactivity_25fps"] = value * fps / FPS_REF
        details["per_person_25fps"] = {r: (v * fps / FPS_REF if v is not None else None) for r, v in per_person.items()}
        return ClipResult(metric=self.name, value=value, per_person=per_person, details=details)

    def _corrected_table(self, state, tracks, used, boxes, times) -> list[dict]:
        rows = []
        for k, person in enumerate(state.ctx.clip.people):
            tr = tracks[k]
            for t, idx in enumerate(state.index):
                box = boxes[t, k]
                sq = None
                if np.all(np.isfinite(box)) and np.isfinite(tr.side):
                    cx, cy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
                    sq = [cx - tr.side / 2, cy - tr.side / 2, cx + tr.side / 2, cy + tr.side / 2]
                rows.append(self._row(idx, float(times[t]), person.role,
                                      not in_half_open_intervals(times[t], person.speaking), tr.motion[t],
                                      bool(np.isfinite(tr.motion[t]) and not tr.touches_glitch[t]),
                                      bool(tr.glitch[t]), bool(used[k][t]), sq, self._eye_points(state, t, k)))
        return rows

    # ------------------------------------------------------------------------------ helpers

    def _eye_points(self, state, t: int, k: int) -> list | None:
        if state.points[t] is None:
            return None
        pts = state.points[t][k]
        if self.mode == "paper":
            pts = pts[list(state.eye_idx)]
        if not np.all(np.isfinite(pts)):
            return None
        return [[round(float(x), 2), round(float(y), 2)] for x, y in pts]

    @staticmethod
    def _row(index, time, role, listening, motion, valid, outlier, used, box, points) -> dict:
        return {"frame": int(index), "time": round(time, 6), "person": role, "listening": bool(listening),
                "motion": None if not np.isfinite(motion) else float(motion), "valid": valid, "outlier": outlier,
                "used": used, "crop_box": None if box is None else [round(float(v), 2) for v in box],
                "points": points}
