"""Identity-consistent face tracks for the N people of a clip, with landmarks.

    tracker = FaceTracker(n_people=2)                  # landmarks="mediapipe-tasks" by default
    for frame in iter_frames(video):
        boxes, landmarks = tracker.update(frame.rgb, frame.time)
        # boxes[k] / landmarks[k]: manifest person k (left to right), None where not found
    summary = tracker.summary()                        # status 'ok' | 'failed' and the reason

How people are found and followed
---------------------------------
1. **Binding.** Until all N people are bound, each frame goes through MediaPipe FaceMesh in
   static image mode (BlazeFace finds the faces). On the first frame with at least N faces, the
   N largest are bound to the manifest's people **left to right** by box centre x (N + 1 faces
   are allowed, so one stray face cannot push a person out). Earlier frames are gaps for all.
2. **Following.** Each person then has a region of interest (ROI: MediaPipe's own rule, a square
   1.5 face widths wide turned with the eye line), and the mesh model reads that person's face
   from their ROI in every frame (``mediapipe_mesh.RoiLandmarker``; no detection per frame).
   Before each read the ROI is carried by the face's own image motion since the previous frame
   (``roi_follow='image'``, default: corners in the face box followed by Lucas-Kanade, a RANSAC
   similarity; ``faces.follow``), so the model sees nearly the same crop and the landmarks move
   by the crop's exactly known transform plus what the face does inside it: the model is not
   equivariant to where a face lands in its crop, and a held crop read known rigid motion at up
   to 1.4x (docs/interactivity.md). The motion is measured from the image, never from the
   landmarks (that would be a feedback loop), so a still face gives zero flow and keeps exactly
   its crop and landmarks. The ROI is also re-placed from the current landmarks when the face has
   moved away from it by more than 3% of its side, changed size by 5% or turned by 3 degrees.
   ``roi_follow='hold'`` keeps version 1's held ROIs (re-placement only). Each person is read
   from their own place, so people who cross or lean are never re-sorted.
3. **Gaps and re-acquisition.** When the model finds no face in a person's ROI, or the face it
   finds is implausibly far from the person's last box, or two people's faces collapse onto the
   same face (the one that moved less keeps it), that person gets ``None`` for the frame (a gap,
   counted) and loses their ROI. While anyone is missing, the detector pass runs on the frame
   and the faces no tracked person holds are assigned to the missing people by the Hungarian
   method (``scipy.optimize.linear_sum_assignment``) on the distance from each person's last
   centre in face sides plus the absolute log size ratio, gated: 0.6 face sides for a person
   seen in the previous frame, growing by 0.1 per missed frame up to 3.
4. **Failure** (``summary().status == 'failed'`` with a one-line reason) only when the clip
   cannot be scored: no frame ever shows N faces; more than N faces in at least half of the
   frames on which faces are counted (every detector pass, and once every 24 frames while
   everyone is followed), so that which N are the people is undecidable; or a person is found in
   fewer than half of the frames (``min_visible_fraction``). Missed frames and a stray extra face
   in a few frames never fail a clip.
5. **Large frames** (longer side above 1280 px) are processed on an area-reduced copy and every
   box and landmark is mapped back to full-resolution pixels: the models read faces at
   128x128 (detector) and 192x192 (legacy mesh; Tasks mesh 256x256), so a 1280 px frame still
   holds every face of a talking-video shot at or above their resolution, and 4K frames cost
   far less to hand over.
6. **Landmarks on demand** (``update(rgb, want=...)``). Where ``want[k]`` is False (Interactivity
   reads a person only while they listen), person k's ROI and box are carried by their measured
   image motion alone (step 2's follower; no mesh model call, ~70% of the tracker's time), they
   get no landmarks and count as found; the mesh model still reads them every ``VERIFY_EVERY``
   frames, and at once where the follower cannot measure the motion.

The tracker's own face models (``mesh``) are MediaPipe's legacy graph (``'legacy'``:
``faces.mediapipe_mesh``, mediapipe==0.10.21, numpy < 2) or the Tasks bundle's models through
LiteRT (``'tasks'``: ``faces.mediapipe_tasks``, numpy 1 or 2); both read 478 points from the
ROI the tracker chooses, and everything above is the same for both. Landmarks come from the
backend chosen by ``landmarks`` (``faces.landmarks``): ``mediapipe`` and ``mediapipe-tasks``
are the tracker's own meshes (no extra cost) and fix ``mesh``; face-alignment and insightface
run on the tracker's boxes, with ``mesh`` defaulting to DEFAULT_MESH. ``landmarks=None`` gives
boxes only. Boxes are the extent of the 478-point mesh (forehead to chin, cheek to cheek) in
frame pixels, with score 1.0 (the mesh model only returns faces whose presence score passes
MediaPipe's threshold, and reports no score itself).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from interactive_eyes.faces.acquire import FaceFinder
from interactive_eyes.faces.assign import GATE_BASE, GATE_MAX, GATE_PER_MISS, assign, assignment_cost  # noqa: F401
from interactive_eyes.faces.track_summary import TrackSummary, failure_reason  # noqa: F401  (TrackSummary: this API)
from interactive_eyes.faces.types import FaceBox, iou

# Gated assignment (re-acquisition) and the jump gate of a followed face: faces.assign.
# One face more than people may be detected, so that one stray face cannot displace a person.
EXTRA_FACES = 1
# ROI hysteresis: re-place a person's ROI only when the face implies one that is shifted by more
# than 3% of the ROI side (~4.5% of the face width), 5% larger/smaller, or turned by 3 degrees.
ROI_SHIFT = 0.03
ROI_SCALE = 0.05
ROI_TURN = math.radians(3.0)
# Two people whose faces overlap this much have collapsed onto one face.
DUPLICATE_IOU = 0.5
# A detected face already held by a tracked person (this overlap) is not offered to the missing.
HELD_IOU = 0.3
# Frames larger than this (longer side, px) are processed on an area-reduced copy.
MAX_SIDE = 1280
# A clip fails when a person is found in fewer than this fraction of its frames.
MIN_VISIBLE_FRACTION = 0.5
# Faces are counted on every frame the detector pass runs (binding, re-acquisition) and, while
# everyone is followed, on every COUNT_EVERY-th frame (about once a second; faces.acquire). A clip
# whose counted frames show more faces than people at least MAX_EXTRA_FACE_FRACTION of the time
# fails: the video holds a person the manifest does not, and which N of them are "the people"
# cannot be decided. A stray face in a few frames does not fail it.
COUNT_EVERY = 24
MAX_EXTRA_FACE_FRACTION = 0.5
# A person whose landmarks are not wanted is still read by the mesh model at least every
# VERIFY_EVERY frames (1/3 s at 24 fps): the follower alone could drift onto the background or
# the other face over a long speaking turn, and a read re-places the ROI as in any frame.
VERIFY_EVERY = 8
# The tracker's models when the landmark backend does not fix them (face-alignment, insightface,
# boxes only), and the default backends (``landmarks.DEFAULT_BACKEND``, the FaceTracker default):
# see docs/landmark_backends.md for the measurements behind the choice.
DEFAULT_MESH = "tasks"


def face_locator(max_faces: int, mesh: str = DEFAULT_MESH):
    """The tracker's whole-frame face pass on its own (``locate(rgb)`` -> list of (478, 2) meshes
    in frame pixels; ``close()``), for code that counts or finds faces outside a track."""
    if mesh == "tasks":
        from interactive_eyes.faces import mediapipe_tasks

        return mediapipe_tasks.tracker_models(max_faces)[0]
    from interactive_eyes.faces.mediapipe_mesh import MeshLocator

    return MeshLocator(max_faces=max_faces)


@dataclass
class _Person:
    box: FaceBox | None = None  # last box, full-resolution pixels
    roi: "object | None" = None  # mediapipe_mesh.Roi in working-image pixels
    missed: int = 0  # consecutive frames without a face
    found: int = 0
    roi_moves: int = 0
    follower: "object | None" = None  # follow.FaceFollower
    unread: int = 0  # consecutive frames followed without a mesh read (want=False)
    followed_only: int = 0  # frames followed without a mesh read, over the clip


class FaceTracker:
    """Face boxes and landmarks for ``n_people`` people, bound left to right, followed over time."""

    def __init__(self, n_people: int, *, landmarks: str | None = "mediapipe-tasks", device: str = "cpu",
                 min_visible_fraction: float = MIN_VISIBLE_FRACTION, max_side: int = MAX_SIDE,
                 backend_options: dict | None = None, roi_follow: str = "image", mesh: str | None = None,
                 **options):
        if int(n_people) < 1:
            raise ValueError(f"n_people must be >= 1, got {n_people}")
        if options:
            raise TypeError(f"FaceTracker: unknown option(s) {', '.join(sorted(options))}")
        from interactive_eyes.faces import mediapipe_mesh
        from interactive_eyes.faces.landmarks import canonical_name, load_backend, tracker_mesh

        if roi_follow not in ("image", "hold"):
            raise ValueError(f"roi_follow must be 'image' or 'hold', got {roi_follow!r}")
        self.roi_follow = roi_follow
        self.n_people = int(n_people)
        self.device = device
        self.min_visible_fraction = float(min_visible_fraction)
        self.max_side = int(max_side)
        self.landmark_backend: str | None = canonical_name(landmarks) if landmarks else None
        self.mesh = tracker_mesh(self.landmark_backend, mesh, DEFAULT_MESH)
        self._backend = load_backend(self.landmark_backend, device=device, **(backend_options or {})) \
            if self.landmark_backend else None
        if self.mesh == "tasks":
            from interactive_eyes.faces import mediapipe_tasks

            models = mediapipe_tasks.tracker_models(self.n_people + EXTRA_FACES, getattr(self._backend, "bundle", None))
        else:
            models = mediapipe_mesh.tracker_models(self.n_people + EXTRA_FACES)
        self._detector, self._landmarker, self._mesh_info = models
        self._finder = FaceFinder(self._detector, self._landmarker, self.n_people)
        self._people = [_Person() for _ in range(self.n_people)]
        if roi_follow == "image":
            from interactive_eyes.faces.follow import FaceFollower

            for p in self._people:
                p.follower = FaceFollower()
        self._grey = self._prev_grey = None  # working images in grey (roi_follow='image')
        self._bound_at: int | None = None
        self._binding: tuple[tuple[float, float], ...] = ()
        self._n_frames = 0

    @property
    def n_landmarks(self) -> int | None:
        return self._backend.n_points if self._backend else None

    # ------------------------------------------------------------------------------ per frame

    def update(self, rgb: np.ndarray, time: float | None = None, want=None
               ) -> tuple[tuple[FaceBox | None, ...], tuple[np.ndarray | None, ...] | None]:
        """Process the next frame (frames must come in order). Returns per-person boxes and, unless
        ``landmarks=None``, per-person (K, 2) landmarks in frame pixels; None where not found.
        ``want``: per person, whether their landmarks are needed in this frame (None: everyone);
        a person not wanted gets no landmarks and may be followed without the mesh model (step 6
        of the module docstring). ``time`` is accepted for the engine's uniform call and not
        used: identity follows frame order, not timestamps."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 RGB frame, got shape {rgb.shape}")
        if want is not None:
            want = tuple(bool(w) for w in want)
            if len(want) != self.n_people:
                raise ValueError(f"want has {len(want)} entries for {self.n_people} people")
        frame_index = self._n_frames
        self._n_frames += 1
        self._finder.next_frame()
        work, factor = self._reduce(rgb)
        if self.roi_follow == "image":
            import cv2

            self._prev_grey, self._grey = self._grey, cv2.cvtColor(np.ascontiguousarray(work), cv2.COLOR_RGB2GRAY)

        meshes: list[np.ndarray | None] = [None] * self.n_people
        carried = [False] * self.n_people  # followed without a mesh read this frame
        if self._bound_at is None:
            if not self._bind(work, factor, meshes, frame_index):
                for p in self._people:
                    p.missed += 1
                none = (None,) * self.n_people
                return none, (none if self._backend else None)
        else:
            self._follow(work, factor, meshes, carried, want)
            if any(m is None and not c for m, c in zip(meshes, carried)):
                self._reacquire(work, factor, meshes, carried)
            elif (frame_index - self._bound_at) % COUNT_EVERY == 0:
                self._count(work, factor, meshes, carried)

        boxes: list[FaceBox | None] = []
        for p, m, c in zip(self._people, meshes, carried):
            if c:  # p.box was carried with the face (_follow)
                p.found += 1
                p.followed_only += 1
                boxes.append(p.box)
            elif m is None:
                p.missed += 1
                boxes.append(None)
            else:
                p.box, p.missed = FaceBox.from_points(m), 0
                p.found += 1
                boxes.append(p.box)
        if self._backend is None:
            return tuple(boxes), None
        if want is None:
            lms = self._backend.locate(rgb, boxes, meshes)
        else:  # landmarks only where wanted (a backend of its own, e.g. face-alignment, runs only there)
            asked = [b if w else None for b, w in zip(boxes, want)]
            lms = self._backend.locate(rgb, asked, [m if w else None for m, w in zip(meshes, want)])
        return tuple(boxes), tuple(None if l is None else np.asarray(l, dtype=np.float64) for l in lms)

    def _reduce(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """The working image (area-reduced when larger than ``max_side``) and full / working scale."""
        h, w = rgb.shape[:2]
        if max(h, w) <= self.max_side:
            return rgb, 1.0
        import cv2

        f = self.max_side / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        work = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        return work, w / size[0]

    def _held(self, meshes, carried) -> list[FaceBox]:
        """The boxes (full-resolution pixels) of the faces held on this frame: read or carried."""
        held = [FaceBox.from_points(m) for m in meshes if m is not None]
        return held + [p.box for p, c in zip(self._people, carried) if c]

    def _count(self, work, factor, meshes, carried) -> None:
        """Only count the faces of a frame on which everyone is followed (``FaceFinder.count``)."""
        self._finder.count(work, [b.scaled(1.0 / factor) for b in self._held(meshes, carried)])

    def _bind(self, work, factor, meshes, frame_index) -> bool:
        found = self._finder.detect(work)
        if len(found) < self.n_people:
            return False
        boxes = [FaceBox.from_points(m) for m in found]
        order = sorted(range(len(found)), key=lambda j: boxes[j].width * boxes[j].height, reverse=True)
        chosen = sorted(order[: self.n_people], key=lambda j: boxes[j].center[0])
        for k, (p, j) in enumerate(zip(self._people, chosen)):
            got = self._finder.acquire(work, found[j])
            p.box = boxes[j].scaled(factor)  # the anchor for re-acquisition even if this read fails
            if got is not None:
                meshes[k], p.roi = got[0] * factor, got[1]
        self._bound_at = frame_index
        self._binding = tuple((round(b.center[0], 2), round(b.center[1], 2))
                              for b in (boxes[j].scaled(factor) for j in chosen))
        return True

    def _carry_roi(self, p: _Person, factor: float):
        """roi_follow='image': move the ROI by the face's image motion since the last frame
        (``faces.follow``), so that the mesh model reads nearly the same crop. Returns the
        similarity (working pixels), or None where it could not be measured."""
        if p.follower is None or self._prev_grey is None or p.box is None or p.missed:
            return None
        from interactive_eyes.faces.follow import move_roi

        b = p.box.scaled(1.0 / factor)
        m = p.follower.step(self._prev_grey, self._grey, (b.x1, b.y1, b.x2, b.y2))
        if m is not None:
            p.roi = move_roi(p.roi, m)
        return m

    def _follow(self, work, factor, meshes, carried, want=None) -> None:
        from interactive_eyes.faces.follow import move_box

        nxt: list = [None] * self.n_people
        for k, p in enumerate(self._people):
            if p.roi is None:
                if p.follower is not None:
                    p.follower.reset()
                continue
            m = self._carry_roi(p, factor)
            if want is not None and not want[k] and m is not None and p.unread + 1 < VERIFY_EVERY:
                # not wanted here: the face's measured motion carries its box too, no mesh read
                p.box = move_box(p.box.scaled(1.0 / factor), m).scaled(factor)
                p.unread += 1
                carried[k] = True
                continue
            p.unread = 0
            got = self._landmarker.locate(work, p.roi)
            if got is None:
                p.roi = None
                continue
            pts = got[0] * factor
            box = FaceBox.from_points(pts)
            if p.box is not None and assignment_cost(box, p.box) > min(GATE_BASE + GATE_PER_MISS * p.missed, GATE_MAX):
                p.roi = None  # the ROI slid onto something else
                continue
            meshes[k], nxt[k] = pts, got[1]
        # two people on one face: the one whose face moved less keeps it
        for i in range(self.n_people):
            for j in range(i + 1, self.n_people):
                if meshes[i] is None or meshes[j] is None:
                    continue
                bi, bj = FaceBox.from_points(meshes[i]), FaceBox.from_points(meshes[j])
                if iou(bi, bj) >= DUPLICATE_IOU:
                    ci = assignment_cost(bi, self._people[i].box)
                    cj = assignment_cost(bj, self._people[j].box)
                    loser = j if ci <= cj else i
                    meshes[loser], nxt[loser], self._people[loser].roi = None, None, None
        for p, roi in zip(self._people, nxt):
            if roi is None or p.roi is None:
                continue
            shift, size, turn = roi.moved_from(p.roi)
            if shift > ROI_SHIFT or size > ROI_SCALE or turn > ROI_TURN:
                p.roi = roi
                p.roi_moves += 1

    def _reacquire(self, work, factor, meshes, carried) -> None:
        found = self._finder.detect(work)
        held = self._held(meshes, carried)
        free = [m for m in found if not any(iou(FaceBox.from_points(m * factor), h) >= HELD_IOU for h in held)]
        missing = [k for k, (m, c) in enumerate(zip(meshes, carried)) if m is None and not c]
        if not free or not missing:
            return
        picks = assign([self._people[k].box for k in missing], [self._people[k].missed for k in missing],
                       [FaceBox.from_points(m * factor) for m in free])
        for k, j in zip(missing, picks):
            if j is None:
                continue
            got = self._finder.acquire(work, free[j])
            if got is not None:
                meshes[k], self._people[k].roi = got[0] * factor, got[1]

    # ------------------------------------------------------------------------------ summary

    def summary(self) -> TrackSummary:
        n = self._n_frames
        found = tuple(p.found for p in self._people)
        finder = self._finder
        reason = failure_reason(n, self.n_people, self._bound_at, finder.max_faces, finder.extra_face_frames,
                                finder.detector_frames, found, self.min_visible_fraction,
                                MAX_EXTRA_FACE_FRACTION)
        return TrackSummary(
            status="ok" if reason is None else "failed",
            reason=reason,
            n_frames=n,
            n_people=self.n_people,
            n_found=found,
            n_missing=tuple(n - f for f in found),
            bound_at=self._bound_at,
            binding_centers=self._binding,
            max_faces=finder.max_faces,
            n_detector_frames=finder.detector_frames,
            n_extra_face_frames=finder.extra_face_frames,
            n_roi_moves=tuple(p.roi_moves for p in self._people),
            n_followed_only=tuple(p.followed_only for p in self._people),
            landmark_backend=self.landmark_backend,
            n_landmarks=self.n_landmarks,
            detector=self._landmarker.name,
            backend_info=self._backend.describe() if self._backend else {},
            roi_follow=self.roi_follow,
            mesh=self.mesh,
            mesh_info=dict(self._mesh_info),
        )

    def close(self) -> None:
        self._detector.close()
        self._landmarker.close()
        if self._backend is not None:
            self._backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
