"""Whole-frame face finding for ``faces.track``: found faces' first reads and the face count.

The tracker binds its people on the first frame that shows them all (step 1 of its docstring)
and re-acquires a lost person among the faces found in the whole frame (step 3); while everyone
is followed it still counts the faces every ``COUNT_EVERY`` frames (step 4: a clip whose frames
show more faces than people fails). ``FaceFinder`` is that part: ``detect`` (every face's mesh,
counted), ``count`` (the count alone), ``acquire`` (a found face read through MediaPipe's ROI
for it) and the counters the tracker's summary reports.
"""

from __future__ import annotations

import numpy as np

from interactive_eyes.faces.mediapipe_mesh import Roi
from interactive_eyes.faces.types import FaceBox


class FaceFinder:
    """The tracker's whole-frame locator (``locate(rgb)`` -> meshes; the Tasks one also has
    ``count(rgb, held)``) and ROI landmarker, with the face counts of a clip."""

    def __init__(self, locator, landmarker, n_people: int):
        self.locator, self.landmarker, self.n_people = locator, landmarker, int(n_people)
        self.max_faces = 0  # most faces counted on one frame
        self.detector_frames = 0  # frames on which faces were counted
        self.extra_face_frames = 0  # of those, frames with more faces than people
        self._counted_this_frame = False

    def next_frame(self) -> None:
        self._counted_this_frame = False

    def _counted(self, n: int) -> None:
        if not self._counted_this_frame:  # a frame is counted once, however often it is searched
            self._counted_this_frame = True
            self.detector_frames += 1
            self.extra_face_frames += n > self.n_people
        self.max_faces = max(self.max_faces, n)

    def detect(self, work: np.ndarray) -> list[np.ndarray]:
        """Every face mesh in the working image (its pixels), counted."""
        found = self.locator.locate(work)
        self._counted(len(found))
        return found

    def count(self, work: np.ndarray, held: list[FaceBox]) -> None:
        """Count the faces of a frame on which the tracker holds ``held`` (its people's boxes on
        this frame, working pixels). The Tasks locator counts a detection on a held face without a
        mesh read (``TaskLocator.count``: the same number as ``locate``; tested); the legacy graph
        finds and reads faces in one pass, so it counts what ``locate`` finds."""
        count = getattr(self.locator, "count", None)
        if count is None:
            self.detect(work)
        else:
            self._counted(count(work, [(b.x1, b.y1, b.x2, b.y2) for b in held]))

    def acquire(self, work: np.ndarray, mesh: np.ndarray) -> tuple[np.ndarray, Roi] | None:
        """Landmarks of a newly found face read through MediaPipe's ROI for it: (points, the ROI
        they were read from), or None where the second read finds no face."""
        first = self.landmarker.locate(work, Roi.around(mesh))
        if first is None:
            return None
        roi = first[1]
        again = self.landmarker.locate(work, roi)
        return None if again is None else (again[0], roi)
