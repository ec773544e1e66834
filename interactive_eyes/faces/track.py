"""Identity-consistent face tracks for the N people of a clip, with landmarks.

    tracker = FaceTracker(n_people=2)                  # landmarks="mediapipe" by default
    for frame in iter_frames(video):
        boxes, landmarks = tracker.update(frame.rgb, frame.time)
        # boxes[k] / landmarks[k]: manifest person k (left to right), None where not found
    summary = tracker.summary()                        # status 'ok' | 'failed' and the reason

How people are found and followed
---------------------------------
1. **Faces.** Every frame goes through MediaPipe FaceMesh in static image mode
   (``mediapipe_mesh``: a fresh detection per frame, so a frame's landmarks depend on that frame
   only), allowed up to N + 1 faces so that one extra face (a bystander, a poster, a false
   detection) cannot push a person out. Frames larger than 1280 px are processed on an
   area-reduced copy and everything is mapped back to full-resolution pixels.
2. **Binding.** On the first frame with at least N faces, the N largest are bound to the
   manifest's people **left to right** by box centre x. Earlier frames are gaps for everyone.
3. **Following.** From then on faces are assigned to people by the Hungarian method
   (``scipy.optimize.linear_sum_assignment``) on the distance between a face's centre and the
   person's last centre in units of the person's face size, plus the absolute log size ratio. A
   face beyond the gate (0.6 face sides for a person seen in the previous frame, growing by 0.1
   per missed frame up to 3) cannot be that person. Identities therefore survive people crossing
   or leaning into each other; nothing is re-sorted by x after binding.
4. **Gaps.** A person without a face in a frame gets ``None`` there (a gap, counted); since
   detection runs on every frame, they are picked up again as soon as they reappear near where
   they were last seen.
5. **Failure** (``summary().status == 'failed'`` with a one-line reason) only when the clip
   cannot be scored: no frame ever shows N faces, or a person is found in fewer than half of the
   frames (``min_visible_fraction``). Missed frames alone never fail a clip.

Landmarks come from the backend chosen by ``landmarks`` (``faces.landmarks``): MediaPipe's are
the tracker's own meshes (no extra cost); face-alignment and insightface run on the tracker's
boxes. ``landmarks=None`` gives boxes only. Boxes are the extent of the 478-point mesh (forehead
to chin, cheek to cheek) in frame pixels, with score 1.0: FaceMesh reports no score and returns
only faces whose detection passed its default confidence 0.5.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from interactive_eyes.faces.types import FaceBox

log = logging.getLogger(__name__)

# Gated assignment: a face can be person k's only if
#   |centre - last centre| / last side + |log(side / last side)|  <=  GATE_BASE + GATE_PER_MISS * missed
# 0.6 face sides between consecutive frames is far beyond natural head motion at >= 12 fps and
# well below the ~2-3 face sides between neighbours in a shot; a person lost for a while is
# looked for farther away, up to GATE_MAX.
GATE_BASE = 0.6
GATE_PER_MISS = 0.1
GATE_MAX = 3.0
# One face more than people may be detected, so that one stray face cannot displace a person.
EXTRA_FACES = 1
# A clip fails when a person is found in fewer than this fraction of its frames.
MIN_VISIBLE_FRACTION = 0.5

_UNREACHABLE = 1e6


@dataclass
class TrackSummary:
    """What happened over a clip (JSON-safe through ``as_dict``)."""

    status: str  # 'ok' | 'failed'
    reason: str | None
    n_frames: int
    n_people: int
    n_found: tuple[int, ...]  # frames in which each person has a face
    n_missing: tuple[int, ...]  # gaps per person (frames before binding included)
    bound_at: int | None  # frame index at which people were bound left to right
    binding_centers: tuple[tuple[float, float], ...]  # each person's face centre at binding
    max_faces: int  # most faces found in one frame
    n_extra_face_frames: int  # frames holding more faces than people
    landmark_backend: str | None
    n_landmarks: int | None  # K, points per face of the landmark backend
    detector: str
    backend_info: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Person:
    box: FaceBox | None = None
    missed: int = 0  # consecutive frames without a face
    found: int = 0


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


class FaceTracker:
    """Face boxes and landmarks for ``n_people`` people, bound left to right, followed over time."""

    def __init__(self, n_people: int, *, landmarks: str | None = "mediapipe", device: str = "cpu",
                 min_visible_fraction: float = MIN_VISIBLE_FRACTION, max_side: int | None = None,
                 min_detection_confidence: float | None = None, backend_options: dict | None = None, **options):
        if int(n_people) < 1:
            raise ValueError(f"n_people must be >= 1, got {n_people}")
        if options:
            raise TypeError(f"FaceTracker: unknown option(s) {', '.join(sorted(options))}")
        from interactive_eyes.faces import mediapipe_mesh
        from interactive_eyes.faces.landmarks import canonical_name, load_backend

        self.n_people = int(n_people)
        self.device = device
        self.min_visible_fraction = float(min_visible_fraction)
        self.landmark_backend: str | None = canonical_name(landmarks) if landmarks else None
        self._backend = load_backend(self.landmark_backend, device=device, **(backend_options or {})) \
            if self.landmark_backend else None
        self._mesh = mediapipe_mesh.MeshLocator(
            max_faces=self.n_people + EXTRA_FACES,
            min_confidence=mediapipe_mesh.MIN_DETECTION_CONFIDENCE if min_detection_confidence is None
            else float(min_detection_confidence),
            max_side=mediapipe_mesh.MAX_SIDE if max_side is None else int(max_side),
        )
        self._people = [_Person() for _ in range(self.n_people)]
        self._bound_at: int | None = None
        self._binding: tuple[tuple[float, float], ...] = ()
        self._n_frames = 0
        self._max_faces = 0
        self._extra_frames = 0

    @property
    def n_landmarks(self) -> int | None:
        return self._backend.n_points if self._backend else None

    # ------------------------------------------------------------------------------ per frame

    def update(self, rgb: np.ndarray, time: float | None = None
               ) -> tuple[tuple[FaceBox | None, ...], tuple[np.ndarray | None, ...] | None]:
        """Process the next frame (frames must come in order). Returns per-person boxes and, unless
        ``landmarks=None``, per-person (K, 2) landmarks in frame pixels; None where not found.
        ``time`` is accepted for the engine's uniform call and not used: identity follows frame
        order, not timestamps."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 RGB frame, got shape {rgb.shape}")
        frame_index = self._n_frames
        self._n_frames += 1
        meshes = self._mesh.locate(rgb)
        faces = [FaceBox.from_points(m) for m in meshes]
        self._max_faces = max(self._max_faces, len(faces))
        self._extra_frames += len(faces) > self.n_people

        if self._bound_at is None:
            if len(faces) < self.n_people:
                for p in self._people:
                    p.missed += 1
                none = (None,) * self.n_people
                return none, (none if self._backend else None)
            order = sorted(range(len(faces)), key=lambda j: faces[j].width * faces[j].height, reverse=True)
            chosen = sorted(order[: self.n_people], key=lambda j: faces[j].center[0])
            picks: list[int | None] = list(chosen)
            self._bound_at = frame_index
            self._binding = tuple((round(faces[j].center[0], 2), round(faces[j].center[1], 2)) for j in chosen)
        else:
            picks = assign([p.box for p in self._people], [p.missed for p in self._people], faces)

        boxes: list[FaceBox | None] = []
        person_meshes: list[np.ndarray | None] = []
        for p, j in zip(self._people, picks):
            if j is None:
                p.missed += 1
                boxes.append(None)
                person_meshes.append(None)
            else:
                p.box, p.missed = faces[j], 0
                p.found += 1
                boxes.append(faces[j])
                person_meshes.append(meshes[j])
        if self._backend is None:
            return tuple(boxes), None
        lms = self._backend.locate(rgb, boxes, person_meshes)
        return tuple(boxes), tuple(None if l is None else np.asarray(l, dtype=np.float64) for l in lms)

    # ------------------------------------------------------------------------------ summary

    def summary(self) -> TrackSummary:
        from interactive_eyes.faces.mediapipe_mesh import MeshLocator

        n = self._n_frames
        found = tuple(p.found for p in self._people)
        reason = None
        if n == 0:
            reason = "no frames"
        elif self._bound_at is None:
            reason = (f"fewer faces than people: at most {self._max_faces} of {self.n_people} faces found "
                      f"in any of {n} frames")
        else:
            for k, f in enumerate(found):
                if f < self.min_visible_fraction * n:
                    reason = (f"person {k} (position {k + 1} of {self.n_people} from the left) found in {f} of "
                              f"{n} frames (< {self.min_visible_fraction:.0%})")
                    break
        return TrackSummary(
            status="ok" if reason is None else "failed",
            reason=reason,
            n_frames=n,
            n_people=self.n_people,
            n_found=found,
            n_missing=tuple(n - f for f in found),
            bound_at=self._bound_at,
            binding_centers=self._binding,
            max_faces=self._max_faces,
            n_extra_face_frames=self._extra_frames,
            landmark_backend=self.landmark_backend,
            n_landmarks=self.n_landmarks,
            detector=MeshLocator.name,
            backend_info=self._backend.describe() if self._backend else {},
        )

    def close(self) -> None:
        self._mesh.close()
        if self._backend is not None:
            self._backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
