"""What the face tracker reports about a clip (``FaceTracker.summary()``), JSON-safe."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
    max_faces: int  # most faces the detector pass found in one frame (it looks for at most N + 1)
    n_detector_frames: int  # frames on which the detector pass ran (binding, re-acquisition, counting)
    n_extra_face_frames: int  # of those, frames with more faces than people
    n_roi_moves: tuple[int, ...]  # times each person's ROI was re-placed
    landmark_backend: str | None
    n_landmarks: int | None  # K, points per face of the landmark backend
    detector: str  # the mesh model that reads each person's ROI
    backend_info: dict = field(default_factory=dict)
    roi_follow: str = "image"  # 'image': ROIs carried by the face's measured image motion; 'hold': held still
    mesh: str = "legacy"  # the tracker's face models: 'legacy' (mediapipe_mesh) or 'tasks' (mediapipe_tasks)
    mesh_info: dict = field(default_factory=dict)  # what they are (versions; the .task file's sha256)
    # frames in which each person was followed by image motion alone, without the mesh model
    # (``update(want=...)``: nobody needed their landmarks there); included in n_found
    n_followed_only: tuple[int, ...] = ()

    def as_dict(self) -> dict:
        return asdict(self)


def failure_reason(n: int, n_people: int, bound_at, max_faces: int, extra_frames: int, detector_frames: int,
                   found, min_visible_fraction: float, max_extra_fraction: float) -> str | None:
    """Why a clip's tracks cannot be scored (``faces.track`` step 4), or None."""
    reason = None
    if n == 0:
        reason = "no frames"
    elif bound_at is None:
        reason = (f"fewer faces than people: at most {max_faces} of {n_people} faces found "
                  f"in any of {n} frames")
    elif extra_frames >= max_extra_fraction * detector_frames:
        reason = (f"more faces than people: {max_faces} faces for {n_people} "
                  f"{'person' if n_people == 1 else 'people'} in {extra_frames} of "
                  f"{detector_frames} frames counted")
    else:
        for k, f in enumerate(found):
            if f < min_visible_fraction * n:
                reason = (f"person {k} (position {k + 1} of {n_people} from the left) found in {f} of "
                          f"{n} frames (< {min_visible_fraction:.0%})")
                break
    return reason
