"""Interactivity on arrays: the functional twin of the ``Interactivity`` metric.

    from interactive_eyes.metrics.interactivity import interactivity   # re-exported there
    r = interactivity(landmarks, fps, speaking, boxes=boxes)   # (T, N, 22, 2), (T, N, 4)
    r.value, r.per_person, r.details

``mode="paper"`` applies the released script's rules (``interactivity_paper``), ``"corrected"``
the per-person tracks of ``interactivity_tracks``; ``metrics/interactivity.py`` has the
definition and ``docs/interactivity.md`` every figure. The metric class only buffers frames,
measures the camera and the crops' quality, and calls ``interactivity``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from interactive_eyes.faces.track import MIN_VISIBLE_FRACTION
from interactive_eyes.metrics.interactivity_paper import FPS_REF, in_half_open_intervals, paper_interactivity
from interactive_eyes.metrics.interactivity_tracks import MAX_GLITCH_RUN, SPIKE_FLOOR, SPIKE_Z, STEP, corrected_track

MODES = ("corrected", "paper")


@dataclass
class InteractivityResult:
    """``value`` (None when the clip cannot be scored, ``reason`` says why), per-person values in
    input order, and ``details`` (counts per person, scale, noise floor, camera)."""

    value: float | None
    per_person: list
    reason: str | None = None
    details: dict = field(default_factory=dict)
    tracks: list = field(default_factory=list, repr=False)  # CorrectedTrack / PaperTrack per person
    used: list = field(default_factory=list, repr=False)  # per person: bool per sample used

    @property
    def ok(self) -> bool:
        return self.reason is None


def interactivity(landmarks, fps: float, speaking: Sequence[Sequence[tuple[float, float]]], *,
                  mode: str = "corrected", times=None, boxes=None, face_sides=None, camera=None, blank=None,
                  eye_idx: Sequence[int] | None = None, frame_size: tuple[int, int] | None = None,
                  roles: Sequence[str] | None = None, spike_floor: float = SPIKE_FLOOR, spike_z: float = SPIKE_Z,
                  min_visible_fraction: float = MIN_VISIBLE_FRACTION, observed=None) -> InteractivityResult:
    """Interactivity of one clip from landmark arrays.

    landmarks: (T, N, K, 2) frame pixels, NaN where a person has no face. K = 22 (the eye/brow
        points in the script's order) or a backend's full set with ``eye_idx`` naming the 22.
    fps: the video's frame rate; times: (T,) presentation times in s (default index / fps).
    speaking: per person, segments (start, end) in seconds; corrected: half-open, a sample counts
        when the person listens at both of its ends; paper: the numbers as the script reads them
        (decimal seconds, closed, t = index / fps).
    boxes: (T, N, 4) face boxes in px (paper: required; corrected: the scale 224 / median side);
    face_sides: (T, N) or (N,) square-box sides instead of boxes (corrected); neither: the
        landmarks are already in face units.
    camera: (T, 2, 3) per-frame affine to the reference frame's pixels (``faces.camera.cumulative``);
    blank: (T, N) bool, frames whose face crop failed the quality test (corrected).
    frame_size: (width, height), paper mode's square boxes are shifted inside it.
    roles: names of the people in messages (default 0, 1, ...).
    observed: (T, N) bool, the frames in which each person's landmarks were sought (corrected;
        default all): with tracking on demand a speaker is not read, and those frames are neither
        missing nor part of the visible share ``min_visible_fraction`` applies to.
    """
    if mode not in MODES:
        raise ValueError(f"interactivity: unknown mode {mode!r}; known: {', '.join(MODES)}")
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 4 or lm.shape[-1] != 2:
        raise ValueError(f"landmarks must be (T, N, K, 2), got shape {lm.shape}")
    t_n, n, k_pts = lm.shape[:3]
    if len(speaking) != n:
        raise ValueError(f"speaking has {len(speaking)} people, landmarks {n}")
    if not (fps and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if eye_idx is None:
        if k_pts != 22:
            raise ValueError(f"landmarks have {k_pts} points: pass eye_idx (the 22 eye/brow indices)")
        eye_idx = tuple(range(22))
    t = np.arange(t_n) / fps if times is None else np.asarray(times, dtype=np.float64)
    if t_n < 2:
        return InteractivityResult(None, [None] * n, f"only {t_n} frame(s); at least 2 are needed")
    if mode == "paper":
        if boxes is None or frame_size is None:
            raise ValueError("paper mode needs boxes and frame_size (the script's crop follows the boxes)")
        return _paper(lm, np.asarray(boxes, dtype=np.float64), eye_idx, frame_size, fps, speaking)
    names = [str(r) for r in roles] if roles is not None else [str(k) for k in range(n)]
    obs = np.ones((t_n, n), bool) if observed is None else np.asarray(observed, bool)
    if obs.shape != (t_n, n):
        raise ValueError(f"observed must be (T, N) = {(t_n, n)}, got shape {obs.shape}")
    return _corrected(lm[:, :, list(eye_idx)], fps, t, speaking, boxes, face_sides, camera, blank,
                      spike_floor, spike_z, min_visible_fraction, names, obs)


def _paper(lm, boxes, eye_idx, frame_size, fps, speaking) -> InteractivityResult:
    r = paper_interactivity(boxes, lm, eye_idx, frame_size, fps, [tuple(map(tuple, s)) for s in speaking])
    n_used = [int(u.sum()) for u in r.used]
    details = {"crop_size_M": r.crop_size, "n_listening_frames_used": int(sum(n_used)),
               "per_person": [{"n_listening_frames_used": n_used[k],
                               "n_center_outliers": int(r.tracks[k].center_outlier.sum()),
                               "n_landmark_outliers": int(r.tracks[k].landmark_outlier.sum())} for k in range(len(n_used))]}
    if r.value is not None:
        # the script's per-frame value; per 1/25 s by multiplying (the script has no such unit)
        details["interactivity_25fps"] = r.value * fps / FPS_REF
        details["per_person_25fps"] = [None if v is None else v * fps / FPS_REF for v in r.per_person]
    return InteractivityResult(r.value, r.per_person, r.reason, details, r.tracks, r.used)


def _sides(boxes, face_sides, t_n, n):
    if boxes is not None:
        b = np.asarray(boxes, dtype=np.float64)
        return np.maximum(b[..., 2] - b[..., 0], b[..., 3] - b[..., 1])
    if face_sides is not None:
        s = np.asarray(face_sides, dtype=np.float64)
        return np.broadcast_to(s, (t_n, n)) if s.ndim == 1 else s
    return None


def _corrected(pts, fps, times, speaking, boxes, face_sides, camera, blank, floor, z, min_visible,
               names, observed) -> InteractivityResult:
    t_n, n = pts.shape[:2]
    sides = _sides(boxes, face_sides, t_n, n)
    present = np.all(np.isfinite(pts.reshape(t_n, n, -1)), axis=2)
    if sides is not None:
        present &= np.isfinite(sides)
    pts = np.where(present[:, :, None, None], pts, np.nan)
    blank = np.zeros((t_n, n), bool) if blank is None else np.asarray(blank, bool)
    tracks, used, per_person, counts = [], [], [], []
    present &= observed
    for k in range(n):
        sought = int(observed[:, k].sum())
        if present[:, k].sum() < min_visible * sought:
            return InteractivityResult(None, [None] * n, f"person {names[k]} has landmarks in {int(present[:, k].sum())} of "
                                                         f"{sought} frames (< {min_visible:.0%})")
    for k in range(n):
        tr = corrected_track(pts[:, k], None if sides is None else sides[:, k], times, camera=camera,
                             blank=blank[:, k], floor=floor, z=z)
        seg = [tuple(s) for s in speaking[k]]
        listening = np.array([not in_half_open_intervals(g, seg) for g in tr.grid])
        pair = np.zeros(len(tr.grid), bool)
        pair[1:] = listening[1:] & listening[:-1]  # the step j-1 -> j: listening at both ends
        have = np.isfinite(tr.step_motion)
        use = pair & have
        tracks.append(tr)
        used.append(use)
        per_person.append(float(np.mean(tr.step_motion[use])) if use.any() else None)
        lf = np.array([not in_half_open_intervals(x, seg) for x in times])
        per_frame = tr.motion[1:][lf[1:] & lf[:-1] & np.isfinite(tr.motion[1:])]  # listening at both frames
        counts.append({
            "n_listening_steps": int(pair.sum()),
            "n_listening_steps_used": int(use.sum()),
            "n_skipped_invalid": int((pair & ~have).sum()),
            "n_frames_read": int(observed[:, k].sum()),
            "n_missing_frames": int((tr.missing & observed[:, k]).sum()),
            "n_rejected": {"blank_crop": int(tr.blank.sum()), "glitch": int(tr.glitch.sum()),
                           "glitch_runs": {str(L): int(np.sum(tr.glitch_run == L)) // L for L in range(1, MAX_GLITCH_RUN + 1)},
                           "gap_edge": int(tr.gap_edge.sum())},
            "noise_floor": tr.noise,
            "per_frame_mean": float(per_frame.mean()) if per_frame.size else None,  # per frame, listening
            "face_side_px": tr.side,
            "scale": tr.scale,
            "glitch_threshold": tr.threshold,
        })
    details = {"step_s": STEP, "per_person": counts,
               "n_listening_steps": int(sum(c["n_listening_steps"] for c in counts)),
               "n_listening_steps_used": int(sum(c["n_listening_steps_used"] for c in counts))}
    if not details["n_listening_steps_used"]:
        return InteractivityResult(None, per_person, "no listening step with landmarks for any person", details,
                                   tracks, used)
    value = float(np.mean(np.concatenate([tr.step_motion[u] for tr, u in zip(tracks, used)])))
    details["interactivity_25fps"] = value  # the value is already per 1/25 s
    details["per_person_25fps"] = list(per_person)
    return InteractivityResult(value, per_person, None, details, tracks, used)
