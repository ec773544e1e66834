"""The current MediaPipe face models (``face_landmarker.task``) run through LiteRT, for the tracker.

mediapipe>=0.10.31 (and 1.x, the releases for numpy 2 and Python 3.13) removed the legacy
``solutions`` and graph API that ``faces.mediapipe_mesh`` drives. What they keep, the Tasks
``FaceLandmarker``, chooses its own crop on every frame, which the tracker must not let it do
(see ``mediapipe_mesh``'s docstring: the mesh model is not equivariant to where its crop lands).
So this module runs the two TFLite models of the Tasks bundle itself, with LiteRT
(``ai_edge_litert``), and does MediaPipe's pre- and post-processing in numpy, exactly and the
same way under numpy 1 and 2, with or without any mediapipe installed:

* ``face_landmarks_detector.tflite`` ("Face mesh detection model v2", 478 points, as the legacy
  model with ``refine_landmarks``; same topology and indices): input 1x256x256x3 float32 RGB in
  [0, 1] (its metadata's normalisation is mean 0, std 255; [-1, 1] also gives a face, but one
  further from the legacy model's), outputs ``Identity`` 478 x (x, y, z) in input-tensor pixels,
  ``Identity_1`` the face-presence logit, ``Identity_2`` a tongue-out score (metadata names;
  unused).
* ``face_detector.tflite`` (BlazeFace short range, 128x128, input in [-1, 1]: metadata mean and
  std 127.5) for the whole-frame pass that finds and re-acquires faces (``TaskLocator``).

Both are read out of the ``.task`` zip at load time, from the weights registry's file
(``weights.resolve("face_landmarker")``: its SHA-256 is checked against the registry).

The crop convention (``roi_matrix``): continuous pixel coordinates everywhere (pixel i covers
[i, i + 1), its centre is i + 0.5; MediaPipe's normalised x times the width). The ROI, a square
of side ``width`` centred on (cx, cy) and turned by ``rotation`` (radians, image y down: the
tensor's x axis runs along (cos r, sin r)), maps onto the tensor's [0, S] x [0, S]; every tensor
pixel centre is sampled from the frame by bilinear interpolation at float64 positions with
exact weights (no fixed-point weights, unlike OpenCV's warps, so a sub-pixel ROI move is
rendered as such; the ROI itself is first snapped to a 2^-16 px grid, ``snap``), replicating
the border as MediaPipe's ImageToTensor does. Landmarks come back through the
inverse of the same affine (MediaPipe's ProjectLandmarks). The ROI the landmarks imply is
``Roi.around`` (MediaPipe's FaceLandmarkLandmarksToRoi: box centre, 1.5x the box's longer side,
eye-line angle), so ``faces.track`` is unchanged.
"""

from __future__ import annotations

import math
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interactive_eyes.faces.mediapipe_mesh import N_MESH_POINTS, Roi

WEIGHTS_NAME = "face_landmarker"  # interactive_eyes.weights entry (the .task bundle)
LANDMARKS_MEMBER = "face_landmarks_detector.tflite"
DETECTOR_MEMBER = "face_detector.tflite"
LANDMARKS_SIZE = 256  # the landmark model's input side (its input tensor is 1x256x256x3)
DETECTOR_SIZE = 128  # BlazeFace short range's input side
# MediaPipe's defaults for the Tasks FaceLandmarker (min_face_presence_confidence and
# min_face_detection_confidence, both 0.5) and for the legacy graph's presence threshold: a
# face is present when sigmoid(logit) >= 0.5, i.e. logit >= 0. Measured logits: +20.8 on the
# astronaut's face, -14.2 on a uniform grey crop, so the threshold is far from both.
MIN_PRESENCE = 0.5
MIN_DETECTION = 0.5
# BlazeFace short range decoding (MediaPipe's face_detection_short_range graph): raw offsets are
# in 128-px tensor units, scores are clipped logits, weighted NMS at IoU 0.3.
_DET_SCALE = 128.0
_SCORE_CLIP = 100.0
_NMS_IOU = 0.3
# the face box -> landmark ROI rule for a detection (MediaPipe's detection-to-ROI): rotation from
# keypoint 0 (right eye, image-left) to keypoint 1 (left eye), 1.5x the box's longer side
_DET_ROI_SCALE = 1.5


def _interpreter(model: bytes, num_threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise ImportError(f"landmark backend 'mediapipe-tasks' needs LiteRT: pip install ai-edge-litert "
                          f"({exc})") from None
    it = Interpreter(model_content=model, num_threads=int(num_threads))
    it.allocate_tensors()
    return it


# Interpreters are built once per process and lent to one user at a time (a LiteRT interpreter is
# not thread-safe): building one costs 10-50 ms (XNNPACK packs the weights), once per tracker,
# i.e. per clip, before this pool. ``_checkout`` takes a free one of that model or builds it;
# ``close()`` of the landmarker or locator gives it back. The model is a pure function of its
# input (no state between invocations), so a reused interpreter answers bit for bit as a new one
# (tests/faces/test_mediapipe_tasks.py).
_POOL: dict[tuple, list] = {}
_POOL_LOCK = threading.Lock()


def _checkout(bundle: "TaskBundle", member: str, num_threads: int):
    key = (bundle.sha256, member, int(num_threads))
    with _POOL_LOCK:
        free = _POOL.get(key)
        if free:
            return key, free.pop()
    model = bundle.landmarks_model if member == LANDMARKS_MEMBER else bundle.detector_model
    return key, _interpreter(model, num_threads)


def _lent(owner):
    """``owner``'s interpreter (call under ``owner._lock``), refused once it went back."""
    if owner._it is None:
        raise RuntimeError(f"{owner.name}: used after close()")
    return owner._it


def _give_back(owner) -> None:
    """``owner``'s interpreter back to the pool (idempotent)."""
    with owner._lock:
        it, owner._it = owner._it, None
    if it is not None:
        with _POOL_LOCK:
            _POOL.setdefault(owner._key, []).append(it)


@dataclass(frozen=True)
class TaskBundle:
    """The two models of a checked ``face_landmarker.task`` and where they came from."""

    path: Path
    sha256: str
    landmarks_model: bytes
    detector_model: bytes

    def describe(self) -> dict:
        return {"model": f"{LANDMARKS_MEMBER} of face_landmarker.task, LiteRT on tracker ROIs",
                "task_file": self.path.name, "task_sha256": self.sha256, "litert": _litert_version()}


def _litert_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:  # pragma: no cover - the import above would have failed
        return None


_BUNDLES: dict[tuple, TaskBundle] = {}
_BUNDLES_LOCK = threading.Lock()


def load_bundle(path: str | Path | None = None) -> TaskBundle:
    """The ``.task`` bundle through the weights registry (``path`` or ``$IE_BENCH_WEIGHT_FACE_LANDMARKER``,
    else the cache, else a download), its SHA-256 checked; the models read from its zip."""
    from interactive_eyes import weights

    file = weights.resolve(WEIGHTS_NAME, path=path, progress=False)
    st = file.stat()
    key = (str(file), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _BUNDLES_LOCK:
        if key in _BUNDLES:
            return _BUNDLES[key]
        try:
            with zipfile.ZipFile(file) as z:
                lm, det = z.read(LANDMARKS_MEMBER), z.read(DETECTOR_MEMBER)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise ValueError(f"{file}: not a usable face_landmarker.task bundle ({exc})") from None
        bundle = TaskBundle(file, weights.file_sha256(file), lm, det)
        _BUNDLES[key] = bundle
        return bundle


# ------------------------------------------------------------------------------------ geometry


def roi_matrix(roi: Roi, size: int) -> np.ndarray:
    """(2, 3) affine taking tensor continuous coordinates ([0, size]^2) to frame continuous
    coordinates: the tensor square is the ROI (centre, side, rotation; see the module docstring)."""
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    sx, sy = roi.width / size, roi.height / size
    a = np.array([[c * sx, -s * sy], [s * sx, c * sy]])
    t = np.array([roi.cx, roi.cy]) - a @ np.array([size / 2.0, size / 2.0])
    return np.hstack([a, t[:, None]])


def to_frame(points: np.ndarray, roi: Roi, size: int) -> np.ndarray:
    """Tensor-pixel (continuous) points (K, >=2) -> frame pixels (K, 2) through ``roi``."""
    m = roi_matrix(roi, size)
    p = np.asarray(points, dtype=np.float64)[:, :2]
    return p @ m[:, :2].T + m[:, 2]


# the exact bilinear crop lives in faces.crop (its convention is the one above)
from interactive_eyes.faces.crop import warp_roi  # noqa: E402


# The ROI is snapped to a grid of 2^-16 px (1.5e-5 px; rotation 2^-24 rad) before it is used, as
# the legacy graph's float32 NormalizedRect rounds it (~4e-5 px on a 640 px frame): the image
# follower's similarity on two identical frames can carry a ROI by 1e-14 px, which an exact crop
# would otherwise turn into landmarks 1e-13 px apart, and a still face must keep exactly its
# crop. The crop and the inverse map both use the snapped ROI, so they stay exact inverses.
_ROI_GRID = 2.0 ** 16
_TURN_GRID = 2.0 ** 24


def snap(roi: Roi) -> Roi:
    """``roi`` on the grid above (exact in float64: multiples of a power of two)."""
    g, t = _ROI_GRID, _TURN_GRID
    return Roi(round(roi.cx * g) / g, round(roi.cy * g) / g, round(roi.width * g) / g, round(roi.height * g) / g,
               round(roi.rotation * t) / t)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(float(x), _SCORE_CLIP), -_SCORE_CLIP)))


# ------------------------------------------------------------------------------------ the models


class TaskRoiLandmarker:
    """The bundle's 478-point landmark model on a caller-chosen ROI (``RoiLandmarker``'s interface)."""

    name = "mediapipe-tasks-facemesh-478-roi"
    n_points = N_MESH_POINTS

    def __init__(self, bundle: TaskBundle | None = None, *, num_threads: int = 1,
                 min_presence: float = MIN_PRESENCE):
        # one thread: deterministic, and the tracker is parallelised by clips, one per core
        self.bundle = bundle or load_bundle()
        self.min_presence = float(min_presence)
        self._key, self._it = _checkout(self.bundle, LANDMARKS_MEMBER, num_threads)
        self._in = self._it.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self._it.get_output_details()}
        self._points, self._presence = outs["Identity"], outs["Identity_1"]
        self._lock = threading.Lock()
        self.last_presence: float | None = None

    def run(self, rgb: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        """(478, 2) landmarks in frame pixels and the face-presence probability, for any ROI."""
        roi = snap(roi)
        crop = warp_roi(rgb, roi, LANDMARKS_SIZE, "replicate") * np.float32(1.0 / 255.0)
        with self._lock:
            it = _lent(self)
            it.set_tensor(self._in, crop[None])
            it.invoke()
            raw = it.get_tensor(self._points).reshape(N_MESH_POINTS, 3)
            logit = float(it.get_tensor(self._presence).ravel()[0])
        return to_frame(raw, roi, LANDMARKS_SIZE), sigmoid(logit)

    def locate(self, rgb: np.ndarray, roi: Roi) -> tuple[np.ndarray, Roi] | None:
        """(landmarks (478, 2) in ``rgb``'s pixels, the ROI they imply), or None when the model's
        face-presence probability is below ``min_presence``."""
        pts, presence = self.run(rgb, roi)
        self.last_presence = presence
        if presence < self.min_presence:
            return None
        return pts, Roi.around(pts)

    def close(self) -> None:
        """Give the interpreter back to the pool (idempotent); the landmarker is unusable after."""
        _give_back(self)


def _anchors() -> np.ndarray:
    """(896, 2) BlazeFace short-range anchor centres in [0, 1]: a 16x16 grid with 2 anchors per
    cell (stride 8), then an 8x8 grid with 6 (the three stride-16 layers merged); fixed size 1."""
    out = []
    for grid, per_cell in ((16, 2), (8, 6)):
        c = (np.arange(grid) + 0.5) / grid
        yy, xx = np.meshgrid(c, c, indexing="ij")
        out.append(np.repeat(np.stack([xx.ravel(), yy.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(out)


def _weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, limit: int):
    """MediaPipe's weighted NMS: the best remaining detection and all overlapping it by IoU > 0.3
    are averaged (weighted by score) into one detection with the best one's score."""
    order = list(np.argsort(-scores, kind="stable"))
    kept = []
    while order and len(kept) < limit:
        best = boxes[order[0]]
        rest = boxes[order]
        ix = np.clip(np.minimum(best[2], rest[:, 2]) - np.maximum(best[0], rest[:, 0]), 0, None)
        iy = np.clip(np.minimum(best[3], rest[:, 3]) - np.maximum(best[1], rest[:, 1]), 0, None)
        inter = ix * iy
        area = (rest[:, 2] - rest[:, 0]) * (rest[:, 3] - rest[:, 1])
        overlap = inter / np.maximum(area + (best[2] - best[0]) * (best[3] - best[1]) - inter, 1e-12)
        group = [j for j, o in zip(order, overlap) if o > _NMS_IOU]
        wts = scores[group][:, None]
        kept.append(((boxes[group] * wts).sum(0) / wts.sum(), (keypoints[group] * wts[:, :, None]).sum(0) / wts.sum(),
                     float(scores[order[0]])))
        order = [j for j in order if j not in group]
    return kept


class TaskLocator:
    """Whole-frame face finding (``MeshLocator``'s interface): BlazeFace short range on the
    letterboxed frame, then the landmark model on the ROI each detection implies."""

    name = "mediapipe-tasks-facemesh-478"
    n_points = N_MESH_POINTS

    def __init__(self, max_faces: int = 2, min_confidence: float = MIN_DETECTION, *,
                 bundle: TaskBundle | None = None, landmarker: TaskRoiLandmarker | None = None,
                 num_threads: int = 1):
        self.max_faces = int(max_faces)
        self.min_confidence = float(min_confidence)
        self.bundle = bundle or (landmarker.bundle if landmarker else load_bundle())
        self._landmarker = landmarker or TaskRoiLandmarker(self.bundle, num_threads=num_threads)
        self._owns_landmarker = landmarker is None
        self._key, self._it = _checkout(self.bundle, DETECTOR_MEMBER, num_threads)
        self._in = self._it.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self._it.get_output_details()}
        self._reg, self._cls = outs["regressors"], outs["classificators"]
        self._anchors = _anchors()
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[tuple[Roi, float]]:
        """The landmark ROI of each face BlazeFace finds (frame pixels) and its score, best first."""
        h, w = rgb.shape[:2]
        frame = Roi(w / 2.0, h / 2.0, float(max(w, h)), float(max(w, h)), 0.0)  # the letterbox
        x = warp_roi(rgb, frame, DETECTOR_SIZE, "zero") * np.float32(1.0 / 127.5) - np.float32(1.0)
        with self._lock:
            it = _lent(self)
            it.set_tensor(self._in, x[None])
            it.invoke()
            raw = it.get_tensor(self._reg)[0].astype(np.float64)
            logits = it.get_tensor(self._cls)[0, :, 0].astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -_SCORE_CLIP, _SCORE_CLIP)))
        keep = scores >= self.min_confidence
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep]
        centre = raw[:, 0:2] / _DET_SCALE + anchors
        half = raw[:, 2:4] / _DET_SCALE / 2.0
        boxes = np.hstack([centre - half, centre + half])  # normalised letterbox coordinates
        kps = raw[:, 4:16].reshape(-1, 6, 2) / _DET_SCALE + anchors[:, None, :]
        out = []
        for box, kp, score in _weighted_nms(boxes, kps, scores, self.max_faces):
            lo, hi = to_frame(box.reshape(2, 2) * DETECTOR_SIZE, frame, DETECTOR_SIZE)
            eyes = to_frame(kp[:2] * DETECTOR_SIZE, frame, DETECTOR_SIZE)
            d = eyes[1] - eyes[0]
            side = _DET_ROI_SCALE * float(max(hi - lo))
            out.append((Roi(float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2, side, side, math.atan2(d[1], d[0])),
                        score))
        return out

    def locate(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Every face mesh found in ``rgb``: (478, 2) float64 arrays in its pixels, best first.

        A detection whose first read has a presence below the threshold is read once more
        through the ROI its landmarks imply, and dropped only if that read fails too: BlazeFace's
        box (eyes to mouth) can sit far off a three-quarter face's crop (2p-2.png's left face:
        presence 0.08 through the detection's ROI, 0.98 through its landmarks' ROI; the legacy
        FaceMesh finds that face). A non-face fails both reads (1p-0.png's dark, backlit face
        under a hat, detected at 0.64: presence 2e-9, then 9e-5)."""
        return [pts for pts in (self._read(rgb, roi) for roi, _ in self.detect(rgb)) if pts is not None]

    def _read(self, rgb: np.ndarray, roi: Roi) -> np.ndarray | None:
        """The mesh of a detection (``locate``'s two reads), or None where it is no face."""
        pts, presence = self._landmarker.run(rgb, roi)
        if presence < self._landmarker.min_presence:
            pts, presence = self._landmarker.run(rgb, Roi.around(pts))
        return pts if presence >= self._landmarker.min_presence else None

    def count(self, rgb: np.ndarray, held=()) -> int:
        """``len(locate(rgb))`` without the mesh model on faces the caller already holds: a
        detection whose centre lies inside one of the ``held`` boxes (x1, y1, x2, y2 in ``rgb``'s
        pixels: faces the caller's own mesh reads confirmed on this frame) is counted as that face,
        one detection per box; every other detection is read as ``locate`` reads it. The
        tracker's face count while everyone is followed (``faces.track``) is then one BlazeFace
        pass, ~0.5 ms, instead of two or more mesh reads (5 ms each on one core)."""
        free = [tuple(float(v) for v in b) for b in held]
        n = 0
        for roi, _ in self.detect(rgb):
            hit = next((b for b in free if b[0] <= roi.cx <= b[2] and b[1] <= roi.cy <= b[3]), None)
            if hit is not None:
                free.remove(hit)
                n += 1
            elif self._read(rgb, roi) is not None:
                n += 1
        return n

    def close(self) -> None:
        """Give the detector's interpreter back to the pool, and the landmarker's if this locator
        made it (idempotent)."""
        _give_back(self)
        if self._owns_landmarker:
            self._landmarker.close()


def tracker_models(max_faces: int, bundle: TaskBundle | None = None):
    """(whole-frame locator, ROI landmarker, description) for ``faces.track`` (``mesh='tasks'``)."""
    bundle = bundle or load_bundle()
    landmarker = TaskRoiLandmarker(bundle)
    info = {"models": f"{DETECTOR_MEMBER} + {LANDMARKS_MEMBER} of face_landmarker.task", **bundle.describe()}
    return TaskLocator(max_faces, landmarker=landmarker), landmarker, info
