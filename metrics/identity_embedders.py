"""Identity embedders and their geometry: dlib's 128-d ResNet and InsightFace ArcFace (ONNX).

Used by ``metrics/identity.py`` (the metric's definition and backends are documented there).
Each embedder has ``crops(rgb, faces)`` (cheap, per frame: align and cut each face) and
``embed_crops(crops)`` (the network, one call for any number of crops, so the metric batches
across frames); ``embed(rgb, faces)`` is the two in one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from interactive_eyes.metrics import batching
from interactive_eyes.metrics.base import FaceBox

ARCFACE_WEIGHTS = "arcface_w600k_r50"
ARCFACE_SIZE = 112
# insightface utils/face_align.py arcface_dst (spec §4): left eye, right eye, nose tip, mouth
# left, mouth right — "left"/"right" as seen in the image.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)

# 5 points from landmark sets (image-left eye first), spec §6.1 correspondences.
IBUG68_EYE_LEFT = list(range(36, 42))
IBUG68_EYE_RIGHT = list(range(42, 48))
IBUG68_NOSE_TIP, IBUG68_MOUTH_LEFT, IBUG68_MOUTH_RIGHT = 30, 48, 54
MP_EYE_LEFT = [33, 160, 158, 133, 153, 144]  # = iBUG 36..41
MP_EYE_RIGHT = [362, 385, 387, 263, 373, 380]  # = iBUG 42..47
MP_NOSE_TIP, MP_MOUTH_LEFT, MP_MOUTH_RIGHT = 1, 61, 291

DLIB_MODELS = {
    "recognizer": "dlib_face_recognition_resnet_model_v1.dat",
    "shape5": "shape_predictor_5_face_landmarks.dat",
    "shape68": "shape_predictor_68_face_landmarks.dat",
}


# --------------------------------------------------------------------------- geometry


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(5, 2) ArcFace keypoints from iBUG-68 or MediaPipe (468/478) landmarks."""
    lm = np.asarray(landmarks, dtype=np.float64)[:, :2]
    if lm.shape[0] == 68:
        idx = (IBUG68_EYE_LEFT, IBUG68_EYE_RIGHT, IBUG68_NOSE_TIP, IBUG68_MOUTH_LEFT, IBUG68_MOUTH_RIGHT)
    elif lm.shape[0] in (468, 478):
        idx = (MP_EYE_LEFT, MP_EYE_RIGHT, MP_NOSE_TIP, MP_MOUTH_LEFT, MP_MOUTH_RIGHT)
    else:
        raise ValueError(f"identity: cannot derive 5 keypoints from {lm.shape[0]} landmarks (need 68, 468 or 478)")
    return np.stack([lm[idx[0]].mean(0), lm[idx[1]].mean(0), lm[idx[2]], lm[idx[3]], lm[idx[4]]])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 least-squares similarity (rotation, uniform scale, translation) mapping src → dst.

    Umeyama's closed form (1991), the estimate insightface obtains from skimage's
    ``SimilarityTransform.estimate``.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # no reflections
        e[1, 1] = -1
    r = u @ e @ vt
    var_s = (s ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(sig) @ e) / var_s)
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def align_arcface(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """112×112 RGB crop aligned on the ArcFace template (insightface ``norm_crop``)."""
    import cv2

    m = similarity_transform(points, ARCFACE_TEMPLATE)
    return cv2.warpAffine(np.ascontiguousarray(rgb), m, (ARCFACE_SIZE, ARCFACE_SIZE), borderValue=0.0)


def arcface_blob(crops: list[np.ndarray]) -> np.ndarray:
    """N×3×112×112 float32 network input from aligned RGB crops: (x − 127.5)/127.5, RGB order."""
    x = np.stack(crops).astype(np.float32)
    return np.ascontiguousarray(((x - 127.5) / 127.5).transpose(0, 3, 1, 2))


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).ravel()
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


# --------------------------------------------------------------------------- backends


def dlib_model_dir() -> Path:
    """The folder of face_recognition_models' bundled files, found *without importing* the
    package (its ``__init__`` imports ``pkg_resources``, which setuptools ≥ 81 no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("identity (dlib backend): the package face_recognition_models is not installed "
                          "(pip install 'ie-bench[dlib]')")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    missing = [f for f in DLIB_MODELS.values() if not (folder / f).is_file()]
    if missing:
        raise ImportError(f"{folder}: face_recognition_models lacks {', '.join(missing)}")
    return folder


class _Dlib68Keypoints:
    """5 ArcFace keypoints from dlib's 68-point predictor run inside a face box."""

    def __init__(self):
        import dlib

        self._dlib = dlib
        self._sp = dlib.shape_predictor(str(dlib_model_dir() / DLIB_MODELS["shape68"]))

    def __call__(self, rgb: np.ndarray, box: FaceBox) -> np.ndarray:
        shape = self._sp(rgb, _rect(self._dlib, box, rgb.shape))
        pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float64)
        return five_points(pts)


def _rect(dlib, box: FaceBox, shape) -> Any:
    h, w = shape[:2]
    x1, y1 = int(round(max(0.0, box.x1))), int(round(max(0.0, box.y1)))
    x2, y2 = int(round(min(w - 1.0, box.x2))), int(round(min(h - 1.0, box.y2)))
    return dlib.rectangle(x1, y1, x2, y2)


class DlibEmbedder:
    """dlib's 128-d ResNet (``face_recognition_models``), aligned by its 5-point predictor.

    ``crops`` cuts the 150×150 chip (padding 0.25) that ``compute_face_descriptor(image, shape)``
    cuts internally, so ``embed_crops`` over many chips in one call gives the same descriptors
    (tested bit-identical) as one call per face.
    """

    name = "dlib"
    dim = 128
    CHIP_SIZE, CHIP_PADDING = 150, 0.25  # dlib's defaults for this network

    def __init__(self, keypoints: str = "dlib68"):
        import dlib

        folder = dlib_model_dir()
        self._dlib = dlib
        self._sp5 = dlib.shape_predictor(str(folder / DLIB_MODELS["shape5"]))
        self._rec = dlib.face_recognition_model_v1(str(folder / DLIB_MODELS["recognizer"]))
        self.files = {f"dlib:{k}": folder / v for k, v in DLIB_MODELS.items() if k != "shape68"}

    def crops(self, rgb: np.ndarray, faces: list[tuple[FaceBox, np.ndarray | None]]) -> list[np.ndarray]:
        out = []
        for box, _lm in faces:
            shape = self._sp5(rgb, _rect(self._dlib, box, rgb.shape))
            out.append(self._dlib.get_face_chip(rgb, shape, size=self.CHIP_SIZE, padding=self.CHIP_PADDING))
        return out

    def embed_crops(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        if not crops:
            return []
        return [_unit(np.array(d)) for d in self._rec.compute_face_descriptor(list(crops))]

    def embed(self, rgb: np.ndarray, faces: list[tuple[FaceBox, np.ndarray | None]]) -> list[np.ndarray]:
        return self.embed_crops(self.crops(rgb, faces))


class ArcFaceEmbedder:
    """InsightFace ArcFace ONNX (w600k_r50) through onnxruntime, 5-point aligned at 112×112."""

    name = "arcface"
    dim = 512

    def __init__(self, path: str | Path, device: str = "cpu", keypoints: str = "dlib68"):
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self._sess = ort.InferenceSession(str(path), providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's InvalidProtobuf/Fail are not RuntimeErrors
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ValueError(f"{path}: not a loadable ONNX model, truncated or corrupt? "
                             f"({type(exc).__name__}: {first[:160]})") from None
        inp = self._sess.get_inputs()[0]
        self._input = inp.name
        shape = list(inp.shape)
        if len(shape) != 4 or shape[1] != 3 or shape[2] != ARCFACE_SIZE or shape[3] != ARCFACE_SIZE:
            raise ValueError(f"{path}: ArcFace input must be N×3×112×112, the model declares {shape}")
        self._batched = not isinstance(shape[0], int) or shape[0] != 1
        self._keypoints = _Dlib68Keypoints() if keypoints == "dlib68" else None
        self.files = {ARCFACE_WEIGHTS: Path(path)}

    def points(self, rgb: np.ndarray, box: FaceBox, landmarks: np.ndarray | None) -> np.ndarray:
        if self._keypoints is not None:
            return self._keypoints(rgb, box)
        if landmarks is None:
            raise ValueError("identity: keypoints='landmarks' but the frame carries no landmarks for this face")
        return five_points(landmarks)

    def crops(self, rgb: np.ndarray, faces: list[tuple[FaceBox, np.ndarray | None]]) -> list[np.ndarray]:
        return [align_arcface(rgb, self.points(rgb, box, lm)) for box, lm in faces]

    def embed(self, rgb: np.ndarray, faces: list[tuple[FaceBox, np.ndarray | None]]) -> list[np.ndarray]:
        return self.embed_crops(self.crops(rgb, faces))

    def embed_crops(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        if not crops:
            return []
        blob = arcface_blob(crops)
        if self._batched:  # merged with other clips' faces under --clips-in-flight (batching.py)
            feats = batching.run(("identity arcface", id(self._sess)),
                                 lambda x: self._sess.run(None, {self._input: x})[0], blob)
        else:
            feats = np.concatenate([self._sess.run(None, {self._input: blob[i:i + 1]})[0] for i in range(len(blob))])
        return [_unit(f) for f in feats]
