"""Identity similarity (CSIM): does each person keep their face over the clip?

Definition (the paper's, spec/metrics.md §4 "recommended definition"): for each person k (the
engine's identity-consistent face track, bound left to right),

    e_0 = the face embedding in the first sampled frame where k's face is found,
    CSIM_k = mean over later sampled frames t of cos(e_0, e_t),

with frames sampled every ``sample_seconds`` = 0.2 s by default (the first frame at or after each
multiple of 0.2 s: every 5th frame at 25 fps, every 6th at 30 fps), or every ``frame_stride``-th
frame when that is set. Identity changes slowly next to 0.2 s, so sampling moves the value by
less than 0.002 on the shared real videos (docs/metrics_fid_fvd_identity.md, tests) while the
embedder, which is 95 % of a default ``score`` on CPU, runs on 1/5 of the frames. Faces are
embedded in batches (``batch_size`` crops across frames, one network call each: dlib's batched
``compute_face_descriptor(list_of_chips)`` or one ONNX run).

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
from typing import Any

import numpy as np

from interactive_eyes.metrics.base import ClipContext, ClipResult, FaceBox, FrameData, Metric

log = logging.getLogger(__name__)

from interactive_eyes.metrics.identity_embedders import (  # noqa: F401  (re-exported: the public names of identity)
    ARCFACE_WEIGHTS,
    ARCFACE_SIZE,
    ARCFACE_TEMPLATE,
    DLIB_MODELS,
    five_points,
    similarity_transform,
    align_arcface,
    arcface_blob,
    _unit,
    dlib_model_dir,
    _Dlib68Keypoints,
    _rect,
    DlibEmbedder,
    ArcFaceEmbedder,
)

# --------------------------------------------------------------------------- metric


#: Default sampling interval (s): see the module docstring for why 0.2 s is safe.
SAMPLE_SECONDS = 0.2
#: Crops embedded per network call; 16 dlib chips are 1 MB, 16 ArcFace crops 0.6 MB.
BATCH_SIZE = 16


class IdentitySimilarity(Metric):
    name = "identity"
    # 2: frames sampled every 0.2 s by default (was every frame), batched embedding
    version = "2"
    higher_is_better = True
    needs = frozenset({"frames", "faces"})
    description = "Identity similarity: cosine of each person's face embedding in the first frame vs every later frame"

    def __init__(self, backend: str = "auto", frame_stride: int | None = None, keypoints: str = "dlib68",
                 device: str = "cpu", weights_path: str | None = None, offline: bool | None = None,
                 sample_seconds: float | None = SAMPLE_SECONDS, batch_size: int = BATCH_SIZE):
        if backend not in ("auto", "arcface", "dlib"):
            raise ValueError(f"identity: backend must be auto, arcface or dlib, not {backend!r}")
        if keypoints not in ("dlib68", "landmarks"):
            raise ValueError(f"identity: keypoints must be dlib68 or landmarks, not {keypoints!r}")
        if frame_stride is not None and int(frame_stride) < 1:
            raise ValueError(f"identity: frame_stride must be ≥ 1, not {frame_stride}")
        if frame_stride is None and (sample_seconds is None or float(sample_seconds) < 0):
            raise ValueError(f"identity: sample_seconds must be ≥ 0 (0 = every frame), not {sample_seconds}")
        if int(batch_size) < 1:
            raise ValueError(f"identity: batch_size must be ≥ 1, not {batch_size}")
        # An explicit frame_stride wins over the time-based default.
        self.frame_stride = None if frame_stride is None else int(frame_stride)
        self.sample_seconds = None if frame_stride is not None else float(sample_seconds)
        self.batch_size = int(batch_size)
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
        p = {"backend": self.backend, "frame_stride": self.frame_stride, "sample_seconds": self.sample_seconds,
             "sampling": self.sampling(),
             "definition": "first sampled frame vs every later sampled frame, mean over frames, then people",
             "embedding": ("InsightFace buffalo_l w600k_r50 (ArcFace R50, 512-d)" if self.backend == "arcface"
                           else "dlib face_recognition_resnet_model_v1 (128-d)")}
        if self.backend == "arcface":
            p["keypoints"] = self.keypoints
        return p

    def sampling(self) -> str:
        if self.frame_stride is not None:
            return "every frame" if self.frame_stride == 1 else f"every {self.frame_stride}th frame"
        if self.sample_seconds == 0:
            return "every frame"
        return f"first frame at or after every {self.sample_seconds:g} s"

    def _sampled(self, state: dict, frame: FrameData) -> bool:
        if self.frame_stride is not None:
            return frame.index % self.frame_stride == 0
        if not self.sample_seconds:
            return True
        # 1e-6 s tolerance: 5/25 fps may decode as 0.19999999 s and must count as 0.2 s
        if frame.time + 1e-6 < state["next_t"]:
            return False
        state["next_t"] = (np.floor((frame.time + 1e-6) / self.sample_seconds) + 1) * self.sample_seconds
        return True

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
        state = {"roles": roles, "people": None, "n_sampled": 0, "reference": None, "next_t": 0.0, "pending": []}
        if options.get("reference_image") is not None:
            state["reference"] = self._reference_embeddings(options["reference_image"], options.get("reference_faces"),
                                                            len(roles) if roles else None)
        return state

    def _person_state(self) -> dict:
        return {"e0": None, "first_index": None, "sims": [], "ref_sims": [], "n_missing": 0}

    def update(self, state: dict, frame: FrameData) -> None:
        if not self._sampled(state, frame):
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
        crops = self.embedder.crops(rgb, [(box, lm) for _, box, lm in present])
        state["pending"] += [(k, frame.index, c) for (k, _b, _l), c in zip(present, crops)]
        if len(state["pending"]) >= self.batch_size:
            self._flush(state)

    def _flush(self, state: dict) -> None:
        """Embed the buffered crops in one call and score them in frame order."""
        pending, state["pending"] = state["pending"], []
        embeddings = self.embedder.embed_crops([c for _, _, c in pending])
        for (k, index, _c), e in zip(pending, embeddings):
            person = state["people"][k]
            if person["e0"] is None:
                person["e0"], person["first_index"] = e, index
            else:
                person["sims"].append(float(e @ person["e0"]))
            ref = state["reference"][k] if state["reference"] is not None and k < len(state["reference"]) else None
            if ref is not None:
                person["ref_sims"].append(float(e @ ref))

    def finish(self, state: dict) -> ClipResult:
        if state.get("pending"):
            self._flush(state)
        people = state["people"] or []
        roles = state["roles"] or [f"person{k}" for k in range(len(people))]
        per_person: dict[str, float | None] = {}
        details: dict[str, Any] = {"backend": self.backend, "sampling": self.sampling(),
                                   "n_sampled_frames": state["n_sampled"],
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
