"""Landmark backends: one interface, chosen by name; every result records which one was used.

| backend | points | the 22 eye/eyebrow points (spec/metrics.md §6.1) | runs |
|---|---|---|---|
| ``mediapipe`` (alias ``mediapipe-legacy``; the ``legacy`` extra) | 478 | 70,63,105,66,107, 336,296,334,293,300, 33,160,158,133,153,144, 362,385,387,263,373,380 | CPU, offline: the tracker's own FaceMesh (mediapipe==0.10.21's graph API, numpy < 2) |
| ``mediapipe-tasks`` (default) | 478 | the same indices (the same mesh topology) | CPU: the tracker's own meshes from ``face_landmarker.task``'s models through LiteRT (``faces.mediapipe_tasks``; numpy 1 or 2, no mediapipe needed) |
| ``face-alignment`` | 68 (iBUG) | 17..26, 36..47 | 2D-FAN-4 on the tracker's boxes, CPU or CUDA, batched (``fan.py``) |
| ``insightface`` | 106 | 43,48,49,51,50, 102,103,104,105,101, 35,41,42,39,37,36, 89,95,96,93,91,90 | optional extra: buffalo_l 2d106 as in the AnyTalker script |

The 22 points are listed in the AnyTalker script's order: image-left eyebrow, image-right
eyebrow, image-left eye, image-right eye. The three sets are the same anatomical points
(§6.1: the insightface set maps exactly onto iBUG 17-26/36-47 through the common 106->68 table,
and the MediaPipe set is the eyebrows' upper arcs plus the classic 6-point eye contours), but
each model has its own jitter, so values are only comparable within one backend.

A backend turns (frame, per-person face boxes, the tracker's meshes) into per-person (K, 2)
landmark arrays in frame pixels, ``None`` where a person has no face in that frame.
"""

from __future__ import annotations

import difflib
from typing import Sequence

import numpy as np

from interactive_eyes.faces.types import FaceBox, iou

MEDIAPIPE = "mediapipe"
MEDIAPIPE_TASKS = "mediapipe-tasks"
FACE_ALIGNMENT = "face-alignment"
INSIGHTFACE = "insightface"
BACKENDS = (MEDIAPIPE, MEDIAPIPE_TASKS, FACE_ALIGNMENT, INSIGHTFACE)
# The default since ie-bench 0.2 / Interactivity 3.0 (issue 14): the current MediaPipe face model
# (face_landmarker.task through LiteRT, numpy 1 or 2, no jax), which meets the Interactivity
# suite's targets on every face tested where the legacy 0.10.21 graph misses one (2p-3 at 1 px:
# 1.154x against 1.005x; docs/landmark_backends.md). ``mediapipe`` (the legacy graph) stays
# selectable with the ``legacy`` extra, for continuity with numbers from earlier releases.
DEFAULT_BACKEND = MEDIAPIPE_TASKS

# The tracker's own face models ("mesh": ``faces.track``): the two MediaPipe backends *are* the
# tracker's meshes, so each fixes which models the tracker runs; the others read their own
# landmarks on the tracker's boxes and leave the choice to the tracker (its DEFAULT_MESH).
LEGACY_MESH = "legacy"  # faces.mediapipe_mesh (mediapipe==0.10.21)
TASKS_MESH = "tasks"  # faces.mediapipe_tasks (face_landmarker.task through LiteRT)
MESHES = (LEGACY_MESH, TASKS_MESH)
MESH_OF_BACKEND = {MEDIAPIPE: LEGACY_MESH, MEDIAPIPE_TASKS: TASKS_MESH}

EYE_BROW_POINTS: dict[str, tuple[int, ...]] = {
    MEDIAPIPE: (70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380),
    # the Tasks bundle's model has the same 478-point topology (468 mesh + 10 iris points)
    MEDIAPIPE_TASKS: (70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 33, 160, 158, 133, 153, 144, 362, 385, 387, 263,
                      373, 380),
    FACE_ALIGNMENT: tuple(range(17, 27)) + tuple(range(36, 48)),
    INSIGHTFACE: (43, 48, 49, 51, 50, 102, 103, 104, 105, 101, 35, 41, 42, 39, 37, 36, 89, 95, 96, 93, 91, 90),
}
N_POINTS = {MEDIAPIPE: 478, MEDIAPIPE_TASKS: 478, FACE_ALIGNMENT: 68, INSIGHTFACE: 106}

# Accepted spellings on the command line and in options.
_ALIASES = {"mp": MEDIAPIPE, "mediapipe-legacy": MEDIAPIPE, "mediapipe_legacy": MEDIAPIPE,
            "mediapipe_tasks": MEDIAPIPE_TASKS, "mp-tasks": MEDIAPIPE_TASKS, "tasks": MEDIAPIPE_TASKS,
            "face_alignment": FACE_ALIGNMENT, "fan": FACE_ALIGNMENT, "insight": INSIGHTFACE}


def canonical_name(name: str) -> str:
    """The backend's canonical name; ``ValueError`` with a suggestion for unknown names."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in BACKENDS:
        close = difflib.get_close_matches(key, BACKENDS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"unknown landmark backend '{name}'{hint}; known: {', '.join(BACKENDS)}")
    return key


def tracker_mesh(backend: str | None, mesh: str | None, default: str) -> str:
    """The tracker models for a landmark backend: the one it fixes, else ``mesh``, else ``default``;
    ``ValueError`` for an unknown mesh or one that contradicts the backend."""
    fixed = MESH_OF_BACKEND.get(backend)
    if mesh is not None and mesh not in MESHES:
        raise ValueError(f"mesh must be one of {', '.join(MESHES)}, got {mesh!r}")
    if mesh is not None and fixed is not None and mesh != fixed:
        raise ValueError(f"landmark backend '{backend}' is the tracker's '{fixed}' meshes; "
                         f"mesh={mesh!r} contradicts it")
    return mesh or fixed or default


def eye_brow_indices(backend: str) -> tuple[int, ...]:
    """The 22 eye and eyebrow point indices of a backend (spec/metrics.md §6.1)."""
    return EYE_BROW_POINTS[canonical_name(backend)]


class LandmarkBackend:
    """The interface every backend implements."""

    name: str
    n_points: int

    @property
    def eye_brow(self) -> tuple[int, ...]:
        return EYE_BROW_POINTS[self.name]

    def locate(
        self, rgb: np.ndarray, boxes: Sequence[FaceBox | None], meshes: Sequence[np.ndarray | None]
    ) -> list[np.ndarray | None]:
        """Per person: (n_points, 2) float landmarks in frame pixels, or None."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        """What produced the landmarks (recorded in results)."""
        return {"backend": self.name, "n_points": self.n_points}


class MediaPipeBackend(LandmarkBackend):
    """The tracker already ran FaceMesh on every person's region: its meshes are the landmarks."""

    name = MEDIAPIPE
    n_points = N_POINTS[MEDIAPIPE]

    def locate(self, rgb, boxes, meshes):
        return [None if m is None else m for m in meshes]

    def describe(self) -> dict:
        import mediapipe

        return {"backend": self.name, "n_points": self.n_points, "model": "FaceMesh 478-point model (refine_landmarks) on tracker ROIs",
                "mediapipe": mediapipe.__version__}


class MediaPipeTasksBackend(LandmarkBackend):
    """The tracker ran the Tasks bundle's mesh model on every person's ROI (``mesh='tasks'``):
    its meshes are the landmarks. Records the bundle's SHA-256 and the LiteRT version."""

    name = MEDIAPIPE_TASKS
    n_points = N_POINTS[MEDIAPIPE_TASKS]

    def __init__(self, task_path: str | None = None):
        from interactive_eyes.faces.mediapipe_tasks import load_bundle

        self.bundle = load_bundle(task_path)

    def locate(self, rgb, boxes, meshes):
        return [None if m is None else m for m in meshes]

    def describe(self) -> dict:
        return {"backend": self.name, "n_points": self.n_points, **self.bundle.describe()}


class InsightFaceBackend(LandmarkBackend):
    """buffalo_l's SCRFD detector + 2d106 landmarks, through the ``insightface`` package.

    For parity with the AnyTalker script (spec/metrics.md §5.1): ``det_thresh=0.2``,
    ``det_size=(640, 640)`` and, by default, the script's colour order: it hands the model an
    **RGB** frame although insightface expects BGR (``script_colour_order=True``); pass False to
    feed BGR as insightface intends. The faces insightface finds are matched to the tracker's
    people by box overlap (a person whose box overlaps no insightface face by IoU >= 0.3 gets
    None for that frame).

    The ``insightface`` package is an optional extra (it is not installed with ie-bench); without
    it this backend raises ``ImportError`` naming what to install. Its model pack is downloaded
    by insightface itself into ``<ie-bench cache>/insightface``.
    """

    name = INSIGHTFACE
    n_points = N_POINTS[INSIGHTFACE]
    MIN_IOU = 0.3
    INSTALL_HINT = "pip install insightface==0.7.3 onnxruntime (the version the AnyTalker script pins, spec/metrics.md §5)"

    def __init__(self, device: str = "cpu", *, det_thresh: float = 0.2, det_size: int = 640,
                 script_colour_order: bool = True, pack: str = "buffalo_l", root: str | None = None):
        try:
            from insightface.app import FaceAnalysis
        except ImportError as exc:
            raise ImportError(f"landmark backend 'insightface' needs the insightface package, which is not installed "
                              f"({exc}): {self.INSTALL_HINT}") from None
        from interactive_eyes.data.paths import cache_home

        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if str(device).startswith("cuda") else [
            "CPUExecutionProvider"]
        self.script_colour_order = bool(script_colour_order)
        self.det_thresh, self.det_size, self.pack = float(det_thresh), int(det_size), pack
        self._app = FaceAnalysis(name=pack, root=str(root or cache_home() / "insightface"),
                                 allowed_modules=["detection", "landmark_2d_106"], providers=providers)
        ctx_id = 0 if str(device).startswith("cuda") else -1
        self._app.prepare(ctx_id=ctx_id, det_thresh=self.det_thresh, det_size=(self.det_size, self.det_size))

    def locate(self, rgb, boxes, meshes):
        img = rgb if self.script_colour_order else np.ascontiguousarray(rgb[:, :, ::-1])
        faces = self._app.get(img)
        found = [(FaceBox(*map(float, f.bbox[:4]), float(getattr(f, "det_score", 1.0))),
                  np.asarray(f.landmark_2d_106, dtype=np.float64)) for f in faces]
        return match_by_iou(boxes, found, self.MIN_IOU)

    def describe(self) -> dict:
        return {"backend": self.name, "n_points": self.n_points, "pack": self.pack, "det_thresh": self.det_thresh,
                "det_size": self.det_size, "colour_order": "rgb (script)" if self.script_colour_order else "bgr"}


def match_by_iou(boxes: Sequence[FaceBox | None], found: list[tuple[FaceBox, np.ndarray]],
                 min_iou: float) -> list[np.ndarray | None]:
    """Give each person the detected face that overlaps their box best (one face per person)."""
    from scipy.optimize import linear_sum_assignment

    out: list[np.ndarray | None] = [None] * len(boxes)
    rows = [k for k, b in enumerate(boxes) if b is not None]
    if not rows or not found:
        return out
    overlap = np.array([[iou(boxes[k], fb) for fb, _ in found] for k in rows])
    r, c = linear_sum_assignment(-overlap)
    for i, j in zip(r, c):
        if overlap[i, j] >= min_iou:
            out[rows[i]] = found[j][1]
    return out


def load_backend(name: str = MEDIAPIPE, device: str = "cpu", **options) -> LandmarkBackend:
    """Instantiate a backend by name (models are loaded here, once per run)."""
    name = canonical_name(name)
    if name == MEDIAPIPE:
        return MediaPipeBackend()
    if name == MEDIAPIPE_TASKS:
        return MediaPipeTasksBackend(**options)
    if name == FACE_ALIGNMENT:
        from interactive_eyes.faces.fan import FaceAlignmentBackend

        return FaceAlignmentBackend(device=device, **options)
    return InsightFaceBackend(device=device, **options)
