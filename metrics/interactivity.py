"""Interactivity: how much a listener's eyes and eyebrows move (AnyTalker, arXiv 2511.23475).

For each person, while that person is **listening**, the mean displacement of 22 eye and
eyebrow keypoints (``faces.landmarks.EYE_BROW_POINTS``) in a per-person face frame scaled to
224 px; the clip's value averages those displacements over all listening samples of all people
(each person weighs by how long they listen); every person's own mean is reported too. Higher =
more listener reaction. docs/interactivity.md has the definition, both modes and every figure.

    from interactive_eyes.metrics.interactivity import interactivity
    r = interactivity(landmarks, fps, speaking, boxes=boxes)   # arrays: (T, N, 22, 2), (T, N, 4)
    r.value, r.per_person, r.details

``mode="paper"`` is the released script rule for rule (``interactivity_paper``): per-frame
displacements in a shared 224/M crop around an EMA-smoothed centre, sticky 10-unit gates,
speaking segments read as decimal seconds, closed. ``mode="corrected"`` (default,
``interactivity_tracks``) fixes what spec/metrics.md §5.4 and issue 10 show to be wrong:
timecode segments, half-open; each person's own scale; camera motion estimated from the
background, else from outside the faces, and removed (``faces.camera``; a clip without a
reliable estimate is scored without, and says so); glitches of up to 3 frames and unsupported jumps at gap edges
rejected, counted by reason; a fixed 1/25 s time step (interpolated), so the value is per
1/25 s at any frame rate without scaling the noise floor; a per-person noise floor beside the
value.

``interactivity()`` does the arithmetic on arrays; the ``Interactivity`` class (the metric the
engine runs) only buffers frames, measures the camera and the crops' quality, and calls it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from interactive_eyes.faces.landmarks import N_POINTS, eye_brow_indices
from interactive_eyes.faces.track import MIN_VISIBLE_FRACTION
from interactive_eyes.metrics.base import ClipContext, ClipResult, FrameData, Metric
from interactive_eyes.metrics.interactivity_paper import (  # noqa: F401  (re-exported: the rules' home)
    FPS_REF, PAPER_CENTER_GATE, PAPER_EMA, PAPER_LANDMARK_GATE, REF_SIZE, PaperTrack, decimal_intervals,
    in_closed_intervals, in_half_open_intervals, paper_crop_size, paper_failure, paper_interactivity, paper_track,
    square_box)
from interactive_eyes.metrics.interactivity_tracks import (  # noqa: F401
    MAX_GLITCH_RUN, SPIKE_FLOOR, SPIKE_NEIGHBOUR_RATIO, SPIKE_Z, STEP, CorrectedTrack, corrected_track,
    displacements, noise_floor, reject_gap_edges, reject_glitches, resample, spike_frames)

from interactive_eyes.metrics.interactivity_arrays import MODES, InteractivityResult, interactivity  # noqa: F401,E402
# A face crop whose grey level varies less than this (standard deviation, 0-255) shows no face
# (an occluder, a blank frame): a face has shading, eyes and brows (std ~20-60 on interact_11).
BLANK_CROP_STD = 4.0
BLANK_GRID = 40  # the blank test reads at most 40 x 40 pixels of a face box (crop_is_blank)
# Camera compensation is applied to a clip when at least this share of its frame steps has a
# reliable background estimate; below that the clip is scored without it (said in the details).
MIN_CAMERA_OK_FRACTION = 0.5
# where a step's estimate comes from (faces.camera.SOURCES): the background, else outside the faces
CAMERA_SOURCES = ("background", "bodies")
# Tracking on demand (faces.track step 6): a person's face is read while they listen and for this
# long around it: one fixed step (the resampled track interpolates across it) plus the frames the
# glitch and gap-edge tests look at (a run of MAX_GLITCH_RUN frames and one frame on each side)
# and one spare, so that every listening frame is judged exactly as with every frame read.
DEMAND_MARGIN_FRAMES = MAX_GLITCH_RUN + 3


# =============================================================================================
# The metric (streaming: buffers what ``interactivity`` needs)


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
    blank: list[np.ndarray] = field(default_factory=list)  # (N,) bool per frame
    observed: list[np.ndarray] = field(default_factory=list)  # (N,) bool: landmarks sought (FrameData.wanted)
    camera: Any = None  # faces.camera.CameraMotion (corrected mode)
    steps: list = field(default_factory=list)  # faces.camera.CameraStep per frame
    size: tuple[int, int] | None = None  # frame width, height


def crop_is_blank(rgb: np.ndarray, box: np.ndarray, threshold: float = BLANK_CROP_STD) -> bool:
    """Whether the face box's grey level varies by less than ``threshold`` (standard deviation),
    measured on a grid of at most ``BLANK_GRID`` x ``BLANK_GRID`` of its pixels: the decision needs
    the spread of a face's shading (std ~20-60) against an occluder's (~0-2), not every pixel, and
    a fixed grid costs the same at any resolution (every 2nd pixel of a 160 px box: 0.15 ms)."""
    h, w = rgb.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return True
    step = -(-max(x2 - x1, y2 - y1) // BLANK_GRID)  # ceil: at most BLANK_GRID samples a side
    crop = rgb[y1:y2:step, x1:x2:step].astype(np.float32)
    grey = crop @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(grey.std()) < threshold


class Interactivity(Metric):
    """Listener eye/eyebrow motion; see the module docstring for the definition and both modes."""

    name = "interactivity"
    # 2.0: camera compensation, 1-3 frame glitches and gap edges, fixed 1/25 s step (the corrected
    # value is per 1/25 s), noise floor (issue 10). Paper values are unchanged.
    # 2.1: a second camera tier from outside the faces where the background is textureless (clip 11)
    # 2.2: the camera estimate at half the cost (100 features, growing retry waits on a textureless
    # region: faces.camera); clip 11 0.6908 -> 0.6884 (docs/interactivity.md)
    # 3.0: the default landmark backend is mediapipe-tasks (face_landmarker.task through LiteRT;
    # issue 14, docs/landmark_backends.md) instead of the legacy 0.10.21 graph: every default value
    # changes (clip 11 0.6884 -> 0.6847). The backend is in the cache key too.
    # 3.1: tracking on demand (faces.track step 6): in corrected mode a speaker's face is followed
    # by its image motion, not read by the mesh model, away from their listening time (~1.6x
    # faster on clip 11); the visible share and missing counts are over the frames read. Clip 11
    # 0.6847 -> see docs/interactivity.md. The run's tracking mode is in the cache key.
    version = "3.1"
    higher_is_better = True
    needs = frozenset({"faces", "landmarks"})
    description = ("mean displacement of 22 eye/eyebrow keypoints while a person listens, in 224-px face units "
                   "per 1/25 s (corrected) or per frame (paper); higher = more listener reaction")

    def __init__(self, mode: str = "corrected", *, frame_table: bool = False, device: str = "cpu",
                 camera: bool = True, spike_floor: float = SPIKE_FLOOR, spike_z: float = SPIKE_Z,
                 min_visible_fraction: float = MIN_VISIBLE_FRACTION):
        if mode not in MODES:
            raise ValueError(f"interactivity: unknown mode {mode!r}; known: {', '.join(MODES)}")
        self.mode = mode
        self.frame_table = bool(frame_table)  # per-frame rows in details (diagnostics only)
        self.camera = bool(camera) and mode == "corrected"  # paper mode: the script has none
        self.spike_floor, self.spike_z = float(spike_floor), float(spike_z)
        self.min_visible_fraction = float(min_visible_fraction)

    def tracks_on_demand(self) -> bool:
        # corrected mode reads a person only around their listening time; paper mode is the
        # script's rules, which read every face in every frame (the shared crop, the EMA centre)
        return self.mode == "corrected"

    def tracking_demand(self, ctx: ClipContext):
        """(frame index, time) -> per person: listening at that time or within the margin."""
        fps = float(getattr(ctx.info, "fps", 0.0) or 0.0) or FPS_REF
        margin = STEP + DEMAND_MARGIN_FRAMES / fps
        # a person is not needed only well inside one of their speaking segments
        inner = [[(a + margin, b - margin) for a, b in p.speaking if b - a > 2 * margin] for p in ctx.clip.people]

        def wanted(index: int, time: float) -> tuple[bool, ...]:
            return tuple(not any(a <= time < b for a, b in segs) for segs in inner)

        return wanted

    def params(self) -> dict[str, Any]:
        # the tracker's ROIs follow each face's image motion since version 2.0 (faces.follow)
        common = {"mode": self.mode, "ref_size": REF_SIZE, "fps_ref": FPS_REF, "tracker_roi": "follow-image"}
        if self.mode == "paper":
            return {**common, "segments": "speaking_raw as decimal seconds, closed intervals, t = index / fps",
                    "crop": "shared M = max(224, largest square box side)", "ema": PAPER_EMA,
                    "center_gate_px": PAPER_CENTER_GATE, "landmark_gate": PAPER_LANDMARK_GATE,
                    "failure": "face count of the first frame with faces must be N and never change"}
        return {**common, "segments": "speaking in seconds, half-open, both ends listening, presentation times",
                "scale": "per person: 224 / median square box side", "spike_floor": self.spike_floor,
                "spike_z": self.spike_z, "spike_neighbour_ratio": SPIKE_NEIGHBOUR_RATIO,
                "max_glitch_run": MAX_GLITCH_RUN, "step_s": STEP, "blank_crop_std": BLANK_CROP_STD,
                "camera": "background, else outside 1.2x face boxes (faces.camera)" if self.camera else "none",
                "min_visible_fraction": self.min_visible_fraction, "demand_margin_frames": DEMAND_MARGIN_FRAMES}

    # ------------------------------------------------------------------------------ streaming

    def start(self, ctx: ClipContext) -> _State:
        fps = float(getattr(ctx.info, "fps", 0.0) or 0.0)
        state = _State(ctx=ctx, fps=fps)
        if self.camera:
            from interactive_eyes.faces.camera import CameraMotion

            state.camera = CameraMotion()
        return state

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
        blank = np.zeros(n, bool)
        if self.mode == "corrected":
            for k in range(n):
                if np.all(np.isfinite(boxes[k])):
                    blank[k] = crop_is_blank(frame.rgb, boxes[k])
        if state.camera is not None:
            state.steps.append(state.camera.update(frame.rgb, [None if not np.all(np.isfinite(b)) else b for b in boxes]))
        state.observed.append(np.ones(n, bool) if frame.wanted is None else np.array(frame.wanted[:n], bool))
        state.index.append(int(frame.index))
        state.time.append(float(frame.time))
        state.boxes.append(boxes)
        state.points.append(pts)
        state.blank.append(blank)

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
        blank_pts = np.full((clip.n_people, n_pts, 2), np.nan)
        # frames before the first one with landmarks (the backend was not known yet) are gaps
        points = np.stack([blank_pts if p is None else p for p in state.points]).astype(np.float64)  # (T, N, P, 2)
        boxes = np.stack(state.boxes)  # (T, N, 4)
        boxes[~np.all(np.isfinite(points.reshape(*points.shape[:2], -1)), axis=2)] = np.nan
        present = np.all(np.isfinite(boxes), axis=2)
        roles = [p.role for p in clip.people]
        base = {"mode": self.mode, "backend": state.backend, "fps": fps, "n_frames": n_frames,
                "n_found": [int(v) for v in present.sum(axis=0)]}
        if self.mode == "paper":
            r = interactivity(points, fps, [decimal_intervals(p) for p in clip.people], mode="paper", boxes=boxes,
                              eye_idx=state.eye_idx, frame_size=state.size)
            details = {**base, **r.details, "segments": "decimal (released numbers), closed"}
        else:
            camera, cam_details = self._camera(state, points)
            observed = np.stack(state.observed)
            kw = dict(times=times, boxes=boxes, roles=roles, blank=np.stack(state.blank), spike_floor=self.spike_floor,
                      spike_z=self.spike_z, min_visible_fraction=self.min_visible_fraction, observed=observed)
            base["tracking"] = "every-frame" if observed.all() else "on-demand"
            speaking = [p.speaking for p in clip.people]
            r = interactivity(points, fps, speaking, camera=camera, **kw)
            if camera is not None and r.ok:
                raw = interactivity(points, fps, speaking, camera=None, **kw)
                cam_details["value_without_compensation"] = raw.value
                cam_details["share_removed"] = (1.0 - r.value / raw.value) if raw.value else None
            details = {**base, **r.details, "camera": cam_details, "segments": "seconds (timecodes converted), half-open"}
        # per-person lists -> keyed by role (JSON results)
        if "per_person" in details:
            details["per_person"] = dict(zip(roles, details["per_person"]))
        if "per_person_25fps" in details:
            details["per_person_25fps"] = dict(zip(roles, details["per_person_25fps"]))
        if self.frame_table and r.tracks:
            details["frame_table"] = self._table(state, r, boxes, times)
        if not r.ok:
            return ClipResult.failed(self.name, r.reason, **details)
        return ClipResult(metric=self.name, value=r.value, per_person=dict(zip(roles, r.per_person)), details=details)

    def _camera(self, state: _State, points: np.ndarray) -> tuple[np.ndarray | None, dict]:
        """Cumulative camera transforms (None: not applied) and what to report about them."""
        if state.camera is None:
            return None, {"compensated": False, "reason": "camera compensation off"}
        from interactive_eyes.faces.camera import cumulative, motion_at

        steps = state.steps
        ok = np.array([s.ok for s in steps[1:]])
        n_fallback = int((~ok).sum())
        per_source = {src: sum(s.source == src for s in steps[1:]) for src in CAMERA_SOURCES}
        per_source["none"] = n_fallback
        centre = np.nanmean(points.reshape(-1, 2), axis=0)
        shift = motion_at([s.matrix for s in steps], centre[None] if np.all(np.isfinite(centre)) else np.zeros((1, 2)))
        details = {"n_steps": len(ok), "n_fallback_steps": n_fallback, "n_steps_per_source": per_source,
                   "mean_motion_px": float(np.nanmean(shift[1:][ok])) if ok.any() else None}
        if not ok.size or ok.mean() < MIN_CAMERA_OK_FRACTION:
            first = next((s.reason for s in steps[1:] if not s.ok), None)
            return None, {**details, "compensated": False, "source": "none",
                          "reason": f"no reliable camera estimate on {n_fallback} of {len(ok)} frame steps "
                                    f"(e.g. {first}); scored without camera compensation"}
        # the clip's source: the tier that gave most of its steps ('bodies' removes motion shared by
        # head and torso too: faces.camera, docs/interactivity.md)
        source = max(CAMERA_SOURCES, key=lambda src: per_source[src])
        return cumulative([s.matrix for s in steps]), {**details, "compensated": True, "source": source, "reason": None}

    def _table(self, state: _State, r: InteractivityResult, boxes: np.ndarray, times: np.ndarray) -> list[dict]:
        from interactive_eyes.metrics.interactivity_table import frame_table

        return frame_table(self.mode, state, r, boxes, times)
