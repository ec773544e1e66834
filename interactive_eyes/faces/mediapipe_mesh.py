"""MediaPipe's face models for the tracker: a detector + mesh pass, and the mesh model on a given ROI.

``mediapipe==0.10.21``'s legacy ``solutions`` API bundles its TFLite models in the wheel, so it
runs offline on CPU (spec/metrics.md §6.3; later releases removed ``solutions`` and need a
separately downloaded ``.task`` file). Both classes use the 478-point model
(``refine_landmarks=True``: the 468-point mesh plus 10 iris points; indices 0..467 are those of
the 468-point mesh).

* ``MeshLocator``: the FaceMesh solution in static image mode on a whole frame (BlazeFace short
  range finds the faces, the mesh model reads each one). The tracker uses it to find people and
  to re-acquire a person it lost.
* ``RoiLandmarker``: the same mesh model (MediaPipe's ``FaceLandmarkCpu`` subgraph) on a region
  of interest chosen by the caller, plus MediaPipe's own rule for the ROI that a set of
  landmarks implies (``FaceLandmarkLandmarksToRoi``: rotated by the eye line, 1.5x the face).
  The tracker uses it on every frame for every person.

Why the tracker chooses the ROI itself: the mesh model is not equivariant to where its 192x192
crop lands, so every change of the crop moves the landmarks a little, which a displacement metric
reads as motion. The solution's two modes both change the crop on every frame: static mode
places it from that frame's BlazeFace box (which jitters with everything else in the frame: a
perfectly still face next to a moving person measured 0.26 units/frame of eye/brow "motion" on
interact_11 + a still photo), and video mode from the previous frame's landmarks (a feedback
loop: 0.3 px/frame on a still video, decaying over ~20 frames, and a 1-1.5 px/frame tail after
every real movement). The tracker instead keeps each person's ROI fixed until the face has
really moved away from it (``faces.track``), so a still face is always read through the same
crop and scores exactly 0, and it costs no detection per frame.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

N_MESH_POINTS = 478  # refine_landmarks=True: 468 mesh + 2 x 5 iris points

# FaceMesh's own default detection threshold (mediapipe/python/solutions/face_mesh.py), kept
# as it is so the model runs as its authors tuned it.
MIN_DETECTION_CONFIDENCE = 0.5



_ALTERNATIVE = "or use the landmark backend 'mediapipe-tasks' (no legacy mediapipe needed)"


def _solutions():
    """mediapipe's legacy ``solutions``, imported only when the legacy models are built, so that
    an install without mediapipe 0.10.21 (numpy 2) imports everything else."""
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise ImportError(f"the legacy MediaPipe face models need mediapipe==0.10.21 ({exc}); {_ALTERNATIVE}") from None
    if not hasattr(mp, "solutions"):
        raise ImportError(
            f"mediapipe {getattr(mp, '__version__', '?')} has no legacy `solutions` API (removed in 0.10.31): "
            f"the legacy MediaPipe face models need mediapipe==0.10.21 (ie-bench's `legacy` extra), {_ALTERNATIVE}"
        )
    return mp.solutions


def mediapipe_version() -> str:
    import mediapipe

    return mediapipe.__version__


def tracker_models(max_faces: int):
    """(whole-frame locator, ROI landmarker, description) for ``faces.track`` (``mesh='legacy'``)."""
    return MeshLocator(max_faces=max_faces), RoiLandmarker(), {
        "models": "FaceMesh (478, refine_landmarks) and FaceLandmarkCpu of the mediapipe wheel",
        "mediapipe": mediapipe_version()}


class MeshLocator:
    """FaceMesh (478 points, static image mode) on whole frames; landmarks in frame pixels."""

    name = "mediapipe-facemesh-478"
    n_points = N_MESH_POINTS

    def __init__(self, max_faces: int = 2, min_confidence: float = MIN_DETECTION_CONFIDENCE):
        sol = _solutions()
        self.max_faces = int(max_faces)
        self._mesh = sol.face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=self.max_faces,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
        )
        self._lock = threading.Lock()

    def locate(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Every face mesh found in ``rgb``, as (478, 2) float64 arrays in its pixels
        (continuous coordinates: MediaPipe's normalised x times the width)."""
        h, w = rgb.shape[:2]
        with self._lock:
            res = self._mesh.process(np.ascontiguousarray(rgb))
        return [_to_pixels(face, w, h) for face in res.multi_face_landmarks or []]

    def close(self) -> None:
        self._mesh.close()


@dataclass(frozen=True)
class Roi:
    """A rotated square-ish region in pixels: centre, width, height, rotation (radians; the
    angle of the eye line, image y pointing down), as MediaPipe's ``NormalizedRect``."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float

    @property
    def side(self) -> float:
        return max(self.width, self.height)

    def moved_from(self, other: "Roi") -> tuple[float, float, float]:
        """(centre shift / side, |log size ratio|, |rotation difference|) relative to ``other``."""
        shift = math.hypot(self.cx - other.cx, self.cy - other.cy) / max(other.side, 1e-6)
        size = abs(math.log(max(self.side, 1e-6) / max(other.side, 1e-6)))
        turn = abs(math.remainder(self.rotation - other.rotation, 2 * math.pi))
        return shift, size, turn

    @classmethod
    def around(cls, points: np.ndarray) -> "Roi":
        """A first ROI for a mesh found by ``MeshLocator``: its box centre, 1.5x its box (the
        scale of MediaPipe's own rule) and the eye-line angle (corners 33 and 263)."""
        lo, hi = points[:468].min(axis=0), points[:468].max(axis=0)
        side = 1.5 * float(max(hi - lo))
        d = points[263] - points[33]
        return cls(float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2, side, side, math.atan2(d[1], d[0]))


_ROI_GRAPH = """
input_stream: "image"
input_stream: "roi"
input_side_packet: "with_attention"
output_stream: "landmarks"
output_stream: "roi_from_landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "WITH_ATTENTION:with_attention"
  output_stream: "LANDMARKS:landmarks"
}
node {
  calculator: "ImagePropertiesCalculator"
  input_stream: "IMAGE:image"
  output_stream: "SIZE:image_size"
}
node {
  calculator: "FaceLandmarkLandmarksToRoi"
  input_stream: "LANDMARKS:landmarks"
  input_stream: "IMAGE_SIZE:image_size"
  output_stream: "ROI:roi_from_landmarks"
}
"""


class RoiLandmarker:
    """MediaPipe's 478-point face mesh model on a caller-chosen ROI (one face per call).

    Runs the graph above on MediaPipe's ``CalculatorGraph`` directly (``SolutionBase`` would add
    ~0.3 ms of Python per call to build a named tuple) and reads the landmark protobuf with one
    ``numpy`` view of its serialised bytes (``_to_pixels``)."""

    name = "mediapipe-facemesh-478-roi"
    n_points = N_MESH_POINTS

    def __init__(self):
        _solutions()
        import os

        import mediapipe
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python import packet_creator, packet_getter
        from mediapipe.python._framework_bindings import calculator_graph, image_frame, resource_util

        # the subgraph finds its bundled .tflite files relative to the package root
        resource_util.set_resource_dir(os.path.dirname(os.path.dirname(mediapipe.__file__)))
        config = calculator_pb2.CalculatorGraphConfig()
        text_format.Parse(_ROI_GRAPH, config)
        self._create, self._get = packet_creator, packet_getter
        self._srgb = image_frame.ImageFormat.SRGB
        self._graph = calculator_graph.CalculatorGraph(graph_config=config)
        self._outputs: dict = {}
        for stream in ("landmarks", "roi_from_landmarks"):
            self._graph.observe_output_stream(stream, self._outputs.__setitem__, True)
        self._graph.start_run({"with_attention": packet_creator.create_bool(True)})
        self._timestamp = 0
        self._lock = threading.Lock()

    def locate(self, rgb: np.ndarray, roi: Roi) -> tuple[np.ndarray, Roi] | None:
        """(landmarks (478, 2) in ``rgb``'s pixels, the ROI they imply), or None when the model
        finds no face in the ROI (its face-presence score is below MediaPipe's threshold)."""
        from mediapipe.framework.formats import rect_pb2

        h, w = rgb.shape[:2]
        rect = rect_pb2.NormalizedRect(x_center=roi.cx / w, y_center=roi.cy / h, width=roi.width / w,
                                       height=roi.height / h, rotation=roi.rotation)
        with self._lock:
            self._outputs.clear()
            self._timestamp += 1
            image = self._create.create_image_frame(image_format=self._srgb, data=np.ascontiguousarray(rgb))
            self._graph.add_packet_to_input_stream(stream="image", packet=image.at(self._timestamp))
            self._graph.add_packet_to_input_stream(stream="roi", packet=self._create.create_proto(rect).at(self._timestamp))
            self._graph.wait_until_idle()
            lm, nxt = self._outputs.get("landmarks"), self._outputs.get("roi_from_landmarks")
            if lm is None or lm.is_empty() or nxt is None or nxt.is_empty():
                return None
            landmarks = self._get.get_proto(lm)
            r = self._get.get_proto(nxt)
        if not len(landmarks.landmark):
            return None
        return _to_pixels(landmarks, w, h), Roi(r.x_center * w, r.y_center * h, r.width * w, r.height * h, r.rotation)

    def close(self) -> None:
        with self._lock:
            self._graph.close()


# One NormalizedLandmark serialised with only x, y, z set: field tag 0x0A, length 15, then
# 0x0D x:float32, 0x15 y:float32, 0x1D z:float32 (landmark.proto is proto2: set fields are
# always written, in field order).
_PACKED = np.dtype([("tag", "u1"), ("len", "u1"), ("tx", "u1"), ("x", "<f4"), ("ty", "u1"), ("y", "<f4"),
                    ("tz", "u1"), ("z", "<f4")])


def _to_pixels(landmark_list, w: int, h: int) -> np.ndarray:
    """(K, 2) pixel coordinates of a ``NormalizedLandmarkList``: normalised x times the width."""
    raw = landmark_list.SerializeToString()
    pts = None
    if len(raw) % _PACKED.itemsize == 0:
        rec = np.frombuffer(raw, dtype=_PACKED)
        if np.all(rec["tag"] == 0x0A) and np.all(rec["len"] == 15) and np.all(rec["tx"] == 0x0D) \
                and np.all(rec["ty"] == 0x15) and len(rec) == len(landmark_list.landmark):
            pts = np.stack([rec["x"], rec["y"]], axis=1).astype(np.float64)
    if pts is None:  # any other layout (visibility/presence set): the slow, general path
        pts = np.array([(p.x, p.y) for p in landmark_list.landmark], dtype=np.float64)
    pts[:, 0] *= w
    pts[:, 1] *= h
    return pts
