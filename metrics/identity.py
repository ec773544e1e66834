"""Identity similarity (CSIM): does each person keep their face over the clip?

Definition (the paper's, spec/metrics.md §4 "recommended definition"): for each person k (the
engine's identity-consistent face track, bound left to right),

    e_0 = the face embedding in the first sampled frame where k's face is found,
    CSIM_k = mean over later sampled frames t of cos(e_0, e_t),

then the clip value is the mean over people, and the run value the mean over clips (done by the
engine). Frames where a person's face is missing are skipped and counted (``n_missing``), never
scored 0. When a reference image is given (``ctx.options["reference_image"]``: a path or an RGB
array, with optional ``ctx.options["reference_faces"]`` boxes per person; otherwise its faces are
found with dlib's detector and bound left to right), the mean cosine of every sampled frame to
the reference embedding is reported as well (``per_person_vs_reference``).

Backends (recorded in ``params()`` and in every result — values of different backends are **not
comparable**):

* ``arcface`` — InsightFace buffalo_l ``w600k_r50.onnx`` (ArcFace ResNet-50, WebFace600K, 512-d)
  through onnxruntime; the face is aligned by a least-squares similarity transform of 5 points
  (eye centres, nose tip, mouth corners) onto the ArcFace 112×112 template and warped with
  ``cv2.warpAffine`` (as insightface's ``norm_crop``); the network input is
  ``(x − 127.5) / 127.5`` in **RGB channel order**, which is what insightface feeds it for the
  BGR image it expects (``blobFromImage(..., swapRB=True)``; §4 — passing RGB to insightface, as
  the AnyTalker script does, would feed BGR). Default when its weights are available.
* ``dlib`` — dlib's 128-d face-recognition ResNet with its 5-point shape predictor (the models
  bundled in ``face_recognition_models``; works offline). Its cosine baseline is high: on
  InteractiveEyes clip 11 (every 10th frame) first-vs-rest is ≈0.97 for each person while two
  *different* people score ≈0.84, so dlib values are only meaningful relative to each other.

The 5 alignment points for ArcFace come from dlib's 68-point predictor inside the tracked box
(``keypoints="dlib68"``, default: independent of the run's landmark backend) or from the run's
landmarks (``keypoints="landmarks"``: iBUG-68 or MediaPipe 468/478), mapped by the index sets of
spec §6.1 (eye centres = mean of the six eye-contour points, nose tip, mouth corners).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np

from interactive_eyes.metrics.base import ClipContext, ClipResult, FaceBox, FrameData, Metric

log = logging.getLogger(__name__)

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
    """dlib's 128-d ResNet (``face_recognition_models``), aligned by its 5-point predictor."""

    name = "dlib"
    dim = 128

    def __init__(self, keypoints: str = "dlib68"):
        import dlib

        folder = dlib_model_dir()
        self._dlib = dlib
        self._sp5 = dlib.shape_predictor(str(folder / DLIB_MODELS["shape5"]))
        self._rec = dlib.face_recognition_model_v1(str(folder / DLIB_MODELS["recognizer"]))
        self.files = {f"dlib:{k}": folder / v for k, v in DLIB_MODELS.items() if k != "shape68"}

    def embed(self, rgb: np.ndarray, faces: list[tuple[FaceBox, np.ndarray | None]]) -> list[np.ndarray]:
        out = []
        for box, _lm in faces:
            shape = self._sp5(rgb, _rect(self._dlib, box, rgb.shape))
            out.append(_unit(np.array(self._rec.compute_face_descriptor(rgb, shape))))
        return out


class ArcFaceEmbedder:
    """InsightFace ArcFace ONNX (w600k_r50) through onnxruntime, 5-point aligned at 112×112."""

    name = "arcface"
    dim = 512

    def __init__(self, path: str | Path, device: str = "cpu", keypoints: str = "dlib68"):
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self._sess = ort.InferenceSession(str(path), providers=providers)
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

    def embed(self, rgb: np.ndarray, faces: list[tuple[FaceBox, np.ndarray | None]]) -> list[np.ndarray]:
        if not faces:
            return []
        crops = [align_arcface(rgb, self.points(rgb, box, lm)) for box, lm in faces]
        blob = arcface_blob(crops)
        if self._batched:
            feats = self._sess.run(None, {self._input: blob})[0]
        else:
            feats = np.concatenate([self._sess.run(None, {self._input: blob[i:i + 1]})[0] for i in range(len(blob))])
        return [_unit(f) for f in feats]


# --------------------------------------------------------------------------- metric


class IdentitySimilarity(Metric):
    name = "identity"
    version = "1"
    higher_is_better = True
    needs = frozenset({"frames", "faces"})
    description = "Identity similarity: cosine of each person's face embedding in the first frame vs every later frame"

    def __init__(self, backend: str = "auto", frame_stride: int = 1, keypoints: str = "dlib68",
                 device: str = "cpu", weights_path: str | None = None, offline: bool | None = None):
        if backend not in ("auto", "arcface", "dlib"):
            raise ValueError(f"identity: backend must be auto, arcface or dlib, not {backend!r}")
        if keypoints not in ("dlib68", "landmarks"):
            raise ValueError(f"identity: keypoints must be dlib68 or landmarks, not {keypoints!r}")
        if frame_stride < 1:
            raise ValueError(f"identity: frame_stride must be ≥ 1, not {frame_stride}")
        self.frame_stride = int(frame_stride)
        self.keypoints = keypoints
        self.device = device
        self.weights_path = weights_path
        self.offline = offline
        self.backend = self._choose_backend(backend)
        if keypoints == "landmarks" and self.backend == "arcface":
            self.needs = frozenset({"frames", "faces", "landmarks"})
        self._embedder = None

    def _choose_backend(self, backend: str) -> str:
        if backend != "auto":
            return backend
        from interactive_eyes.weights import WeightsError, resolve

        try:
            resolve(ARCFACE_WEIGHTS, offline=True, path=self.weights_path)  # never downloads here
            if importlib.util.find_spec("onnxruntime") is not None:
                return "arcface"
        except WeightsError:
            pass
        log.info("identity: ArcFace weights not available offline; using the dlib backend (values not "
                 "comparable with ArcFace)")
        return "dlib"

    # -- provenance ---------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        p = {"backend": self.backend, "frame_stride": self.frame_stride,
             "definition": "first frame vs every later frame, mean over frames, then people",
             "embedding": ("InsightFace buffalo_l w600k_r50 (ArcFace R50, 512-d)" if self.backend == "arcface"
                           else "dlib face_recognition_resnet_model_v1 (128-d)")}
        if self.backend == "arcface":
            p["keypoints"] = self.keypoints
        return p

    def weights(self) -> dict[str, str]:
        from interactive_eyes.weights import file_sha256

        return {name: file_sha256(path) for name, path in self.embedder.files.items()}

    def unavailable(self) -> str | None:
        try:
            self.embedder  # noqa: B018 - loads the models once, reporting what is missing
        except (ImportError, OSError, RuntimeError, ValueError) as exc:
            return f"identity ({self.backend}): {exc}"
        return None

    @property
    def embedder(self):
        if self._embedder is None:
            if self.backend == "arcface":
                from interactive_eyes.weights import resolve

                path = resolve(ARCFACE_WEIGHTS, offline=self.offline, path=self.weights_path)
                self._embedder = ArcFaceEmbedder(path, self.device, self.keypoints)
            else:
                self._embedder = DlibEmbedder()
        return self._embedder

    # -- per clip -----------------------------------------------------------------------------

    def start(self, ctx: ClipContext | None) -> dict:
        roles = [p.role for p in ctx.clip.people] if ctx is not None and ctx.clip is not None else None
        options = dict(ctx.options) if ctx is not None else {}
        state = {"roles": roles, "people": None, "n_sampled": 0, "reference": None}
        if options.get("reference_image") is not None:
            state["reference"] = self._reference_embeddings(options["reference_image"], options.get("reference_faces"),
                                                            len(roles) if roles else None)
        return state

    def _person_state(self) -> dict:
        return {"e0": None, "first_index": None, "sims": [], "ref_sims": [], "n_missing": 0}

    def update(self, state: dict, frame: FrameData) -> None:
        if frame.index % self.frame_stride:
            return
        n = len(state["roles"]) if state["roles"] is not None else len(frame.faces)
        if state["people"] is None:
            state["people"] = [self._person_state() for _ in range(n)]
        state["n_sampled"] += 1
        rgb = np.ascontiguousarray(frame.rgb)
        present = []
        for k in range(n):
            box = frame.faces[k] if k < len(frame.faces) else None
            if box is None:
                state["people"][k]["n_missing"] += 1
            else:
                lm = frame.landmarks[k] if frame.landmarks is not None and k < len(frame.landmarks) else None
                present.append((k, box, lm))
        embeddings = self.embedder.embed(rgb, [(box, lm) for _, box, lm in present])
        for (k, _box, _lm), e in zip(present, embeddings):
            person = state["people"][k]
            if person["e0"] is None:
                person["e0"], person["first_index"] = e, frame.index
            else:
                person["sims"].append(float(e @ person["e0"]))
            ref = state["reference"][k] if state["reference"] is not None and k < len(state["reference"]) else None
            if ref is not None:
                person["ref_sims"].append(float(e @ ref))

    def finish(self, state: dict) -> ClipResult:
        people = state["people"] or []
        roles = state["roles"] or [f"person{k}" for k in range(len(people))]
        per_person: dict[str, float | None] = {}
        details: dict[str, Any] = {"backend": self.backend, "n_sampled_frames": state["n_sampled"],
                                   "n_scored": {}, "n_missing": {}, "first_index": {}}
        vs_ref: dict[str, float | None] = {}
        for role, p in zip(roles, people):
            per_person[role] = float(np.mean(p["sims"])) if p["sims"] else None
            details["n_scored"][role] = len(p["sims"])
            details["n_missing"][role] = p["n_missing"]
            details["first_index"][role] = p["first_index"]
            if state["reference"] is not None:
                vs_ref[role] = float(np.mean(p["ref_sims"])) if p["ref_sims"] else None
        if state["reference"] is not None:
            details["per_person_vs_reference"] = vs_ref
            vals = [v for v in vs_ref.values() if v is not None]
            details["vs_reference"] = float(np.mean(vals)) if vals else None
        values = [v for v in per_person.values() if v is not None]
        if not values:
            return ClipResult.failed(self.name, "no person's face was found in two sampled frames", **details)
        return ClipResult(metric=self.name, value=float(np.mean(values)), per_person=per_person, details=details)

    # -- reference image ----------------------------------------------------------------------

    def _reference_embeddings(self, image, boxes, n_people: int | None) -> list[np.ndarray | None]:
        from interactive_eyes.stats.reference import iter_media_frames

        rgb = image if isinstance(image, np.ndarray) else next(iter_media_frames(image))[2]
        rgb = np.ascontiguousarray(rgb)
        if boxes is None:
            boxes = detect_faces_dlib(rgb)
            if n_people is not None and len(boxes) != n_people:
                raise ValueError(f"identity: reference image has {len(boxes)} faces, the clip has {n_people} people")
        faces = [(b, None) for b in boxes if b is not None]
        embeddings = iter(self.embedder.embed(rgb, faces))
        return [next(embeddings) if b is not None else None for b in boxes]


def detect_faces_dlib(rgb: np.ndarray, upsample: int = 1) -> list[FaceBox]:
    """dlib's HOG frontal face detector, boxes sorted left to right (the engine's binding order)."""
    import dlib

    det = dlib.get_frontal_face_detector()
    rects, scores, _ = det.run(np.ascontiguousarray(rgb), upsample, 0.0)
    boxes = [FaceBox(r.left(), r.top(), r.right(), r.bottom(), float(s)) for r, s in zip(rects, scores)]
    return sorted(boxes, key=lambda b: b.center[0])
