"""The one contract every metric implements, and the data the engine hands to it.

The engine (``interactive_eyes.app``) decodes each video once and streams it frame by frame;
each frame reaches every requested metric as a ``FrameData`` carrying the RGB pixels, the face
box of each manifest person (bound left to right, followed over time) and, when some metric
asked for them, that person's landmarks. A metric keeps what it needs in its own per-clip state:

    state = metric.start(ctx)          # once per clip, ctx: ClipContext
    metric.update(state, frame)        # once per decoded frame, in order
    result = metric.finish(state)      # -> ClipResult (value, per-person values, status, ...)

Set-level metrics (FID, FVD) return float64 *sufficient statistics* in ``ClipResult.stats``
(sums, sums of outer products, counts); ``reduce`` merges any number of them exactly, so shards
and resumed runs give the same value as one pass.

Per-clip metrics are aggregated by the engine as the mean over clips with a bootstrap CI; a
failed clip is counted (n_failed), never silently dropped or scored 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

# What a metric may need; the engine provides exactly these.
NEEDS = frozenset(
    {
        "frames",  # RGB pixels of every frame
        "faces",  # per-person face boxes, identity-consistent
        "landmarks",  # per-person landmarks of the run's landmark backend
        "person_audio",  # each person's own audio track (manifest + data root)
        "video_audio",  # the generated video's own audio stream
        "reference",  # a reference set (real videos / images / precomputed statistics)
    }
)

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"


from interactive_eyes.faces.types import FaceBox  # noqa: E402,F401  (defined in the foundation)


@dataclass
class FrameData:
    """One decoded frame as every metric sees it.

    ``faces[k]`` / ``landmarks[k]`` belong to manifest person k (left to right at binding);
    ``None`` where that person was not found in this frame. ``landmarks`` is ``None`` when no
    requested metric needs landmarks. Landmarks are (K, 2) float arrays in frame pixels, K set by
    the backend (``landmark_backend``: 478 for MediaPipe, 68 for face-alignment, 106 for
    InsightFace).
    """

    index: int
    time: float
    rgb: np.ndarray
    faces: tuple[FaceBox | None, ...] = ()
    landmarks: tuple[np.ndarray | None, ...] | None = None
    landmark_backend: str | None = None
    # the people the tracker was asked to read in this frame (``Metric.tracking_demand``, the union
    # over the run's metrics); None: everyone. Where False, landmarks[k] is None by request, not
    # because the face was lost, and faces[k] was carried by the face's image motion.
    wanted: tuple[bool, ...] | None = None


@dataclass
class ClipContext:
    """Everything about one clip that is not per frame."""

    clip: Any  # interactive_eyes.data.manifest.Clip
    video_path: Path
    info: Any  # interactive_eyes.media.video.VideoInfo
    data_root: Path | None = None
    device: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)
    _audio_cache: dict = field(default_factory=dict, repr=False)

    def person_audio(self, k: int, sample_rate: int = 16000, dtype: str = "float32") -> np.ndarray:
        """Person k's own audio track (from the data root), mono, at ``sample_rate``."""
        from interactive_eyes.data.paths import find_audio
        from interactive_eyes.media.audio import load_audio

        key = ("person", k, sample_rate, dtype)
        if key not in self._audio_cache:
            if self.data_root is None:
                raise FileNotFoundError(f"clip {self.clip.id}: no data root, so no per-person audio")
            path = find_audio(self.data_root, self.clip.people[k].audio)
            self._audio_cache[key] = load_audio(path, sample_rate, dtype=dtype)
        return self._audio_cache[key]

    def video_audio(self, sample_rate: int = 16000, dtype: str = "float32") -> np.ndarray:
        """The generated video's own audio stream, mono, at ``sample_rate``."""
        from interactive_eyes.media.audio import load_audio

        key = ("video", sample_rate, dtype)
        if key not in self._audio_cache:
            self._audio_cache[key] = load_audio(self.video_path, sample_rate, dtype=dtype)
        return self._audio_cache[key]


@dataclass
class ClipResult:
    """One metric on one clip. ``value`` is None unless status is ok."""

    metric: str
    status: str = STATUS_OK
    value: float | None = None
    per_person: dict[str, float | None] = field(default_factory=dict)
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # counts, sub-values (JSON-safe)
    stats: dict[str, np.ndarray] | None = None  # set-level metrics: float64 sufficient statistics

    @classmethod
    def failed(cls, metric: str, reason: str, **details) -> "ClipResult":
        return cls(metric=metric, status=STATUS_FAILED, reason=" ".join(reason.split()), details=details)

    @classmethod
    def skipped(cls, metric: str, reason: str) -> "ClipResult":
        return cls(metric=metric, status=STATUS_SKIPPED, reason=" ".join(reason.split()))


@dataclass
class SetResult:
    """A set-level value computed from merged statistics (FID, FVD)."""

    value: float | None
    n_samples: int
    details: dict[str, Any] = field(default_factory=dict)


class Metric:
    """Base class of every metric. Subclasses set the class attributes and the three steps."""

    name: ClassVar[str]
    version: ClassVar[str]
    higher_is_better: ClassVar[bool]
    needs: ClassVar[frozenset[str]] = frozenset()
    set_level: ClassVar[bool] = False
    description: ClassVar[str] = ""
    # names of other per-clip values in ClipResult.details that are aggregated (mean and CI over
    # clips) and reported beside the main value, e.g. ("interactivity_25fps",) or ("sync_d",)
    secondary: ClassVar[tuple[str, ...]] = ()

    def params(self) -> dict[str, Any]:
        """Every option that changes the numbers (JSON-safe); hashed into the cache key."""
        return {}

    def weights(self) -> dict[str, str]:
        """Model files used, by name -> sha256 (hashed into the cache key and recorded)."""
        return {}

    def unavailable(self) -> str | None:
        """A reason this metric cannot run in this environment at all (e.g. weights missing while
        offline, optional package not installed), or None. The engine lists such metrics as
        skipped with this reason instead of failing every clip."""
        return None

    def check(self, ctx: ClipContext) -> str | None:
        """A reason this clip cannot be scored by this metric before decoding, or None."""
        return None

    def tracks_on_demand(self) -> bool:
        """Whether this metric needs faces and landmarks only in some frames (``tracking_demand``).
        When every face metric of a run says so, the tracker reads each person with its mesh model
        only where some metric needs them (faces.track step 6; the engine's ``tracking_mode``), and
        the run's tracking mode is part of these metrics' cache keys."""
        return False

    def tracking_demand(self, ctx: ClipContext):
        """Per clip, for a metric that ``tracks_on_demand``: a function (frame index, time in s) ->
        one bool per person, whether this metric needs that person's face and landmarks."""
        raise NotImplementedError(f"{self.name} needs every person in every frame")

    def start(self, ctx: ClipContext) -> Any:
        raise NotImplementedError

    def update(self, state: Any, frame: FrameData) -> None:
        raise NotImplementedError

    def finish(self, state: Any) -> ClipResult:
        raise NotImplementedError

    def reduce(self, stats: list[dict[str, np.ndarray]], reference: dict[str, np.ndarray] | None = None) -> SetResult:
        """Set-level metrics: merge clips' sufficient statistics (exactly) and compute the value."""
        raise NotImplementedError(f"{self.name} is not a set-level metric")


class RegistryWeights:
    """Mixin for a metric whose model file comes from the weights registry.

    Set ``weights_name`` (a ``interactive_eyes.weights.WEIGHTS`` entry) and give the instance
    ``weights_path`` (a user-supplied file, or None) and ``offline`` (None: ``$IE_BENCH_OFFLINE``).
    The file is resolved once (downloaded and verified when online), its sha256 goes into the
    cache key, and a file that cannot be had makes the metric unavailable with the registry's
    one-line reason.
    """

    weights_name: ClassVar[str]
    weights_path: str | None = None
    offline: bool | None = None
    _path: Path | None = None

    def _weights_file(self) -> Path:
        if self._path is None:
            from interactive_eyes.weights import resolve

            self._path = resolve(self.weights_name, offline=self.offline, path=self.weights_path)
        return self._path

    def weights(self) -> dict[str, str]:
        from interactive_eyes.weights import file_sha256

        return {self.weights_name: file_sha256(self._weights_file())}

    def unavailable(self) -> str | None:
        from interactive_eyes.weights import WeightsError

        try:
            self._weights_file()
        except WeightsError as exc:
            return str(exc)
        return None
