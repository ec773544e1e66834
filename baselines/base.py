"""The adapter contract every generation method implements (spec/baselines.md §5).

A method is one class:

- ``name``, ``version``: identity, recorded in ``run.json``; bump ``version`` whenever the
  method's output for the same input changes.
- ``capabilities``: a static ``Capabilities`` descriptor (§5.2), enough for the run driver to
  decide "run" or "unsupported" for an item without launching anything.
- ``DEFAULT_PARAMS``: every tunable parameter with its default; ``Method(**overrides)`` validates
  names, ``params()`` returns the effective values (recorded in ``run.json``).
- ``check(item)``: ``None`` if the method can run the item, else a one-line reason (§5.3 step 1).
- ``generate(item, out_path, *, seed)``: writes ``out_path`` (H.264 + AAC mp4 at ``native_fps``,
  frame 0 = audio t=0, exactly ``frame_count(duration, fps)`` frames, the benchmark mix muxed in)
  and returns a JSON-able dict of facts about the clip.

The canonical ``Item`` (§5.1) is built from a manifest clip: people ordered left to right, each
with their own audio track and speaking segments, the clip duration, prompt and reference frame.
Everything heavy (PyAV, PIL, numpy work) is imported inside functions, so importing a method's
module to read its capabilities stays cheap.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

# §5.2 binding styles: how a method ties audio track i to person i.
BINDINGS = (
    "left_right_detection",  # detect faces, sort left to right, track i <-> i-th face (AnyTalker)
    "bbox",  # a box per person is passed in (MultiTalk, InfiniteTalk, LongCat)
    "face_crops",  # a crop per person is passed in (Bind-Your-Avatar)
    "mask_api",  # a mask of the speaking person (OmniHuman)
    "none",  # the method does not bind audio to people (e.g. the static reference)
)

Segment = tuple[float, float]
Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in reference-frame pixels


@dataclass(frozen=True)
class Capabilities:
    """What a method can take and what it produces (spec/baselines.md §5.2, table §1b)."""

    max_people: int | None  # None: any number of people
    binding: str  # one of BINDINGS
    native_fps: float  # frame rate of the output as written
    frame_rule: str  # the number of frames as a function of the duration T, in words
    resolution: str  # the output size policy, in words
    min_duration: float | None = None  # seconds; shorter items are unsupported
    max_duration: float | None = None  # seconds; longer items are unsupported
    lead_in_offset: float = 0.0  # seconds of output before audio t=0 (dropped when normalising)
    gpu_memory_gb: float | None = None  # None: runs on CPU
    multi_gpu: bool = False
    offline_files: tuple[str, ...] = ()  # must exist before a run; relative to the cache home
    needs_reference_frame: bool = True
    silent_extra_people_ok: bool = False  # extra people beyond max_people may stay silent
    muxes_audio: bool = True  # the output carries the benchmark mix
    uses_prompt: bool = False
    needs_extra_inputs: tuple[str, ...] = ()  # e.g. a pose sequence (EchoMimic V2)
    deterministic: bool = True  # same input and seed -> same frames
    repo: str | None = None
    commit: str | None = None
    code_license: str | None = None
    weight_licenses: tuple[str, ...] = ()

    def __post_init__(self):
        if self.binding not in BINDINGS:
            raise ValueError(f"capabilities: binding must be one of {BINDINGS}, got {self.binding!r}")
        if self.max_people is not None and self.max_people < 1:
            raise ValueError(f"capabilities: max_people must be >= 1 or None, got {self.max_people}")
        if not self.native_fps > 0:
            raise ValueError(f"capabilities: native_fps must be > 0, got {self.native_fps}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d


@dataclass(frozen=True)
class ItemPerson:
    """One person of an item, in left-to-right order (§5.1)."""

    role: str
    audio: Path  # this person's own track (resolved file)
    speaking: tuple[Segment, ...] = ()
    listening: tuple[Segment, ...] = ()
    face_box: Box | None = None  # when known in advance; methods that detect faces may ignore it


@dataclass(frozen=True)
class Item:
    """The canonical item a method receives (spec/baselines.md §5.1)."""

    clip_id: str
    duration: float  # seconds: the length of the longest track (T)
    people: tuple[ItemPerson, ...]
    prompt: str = ""
    reference_frame: Path | None = None

    @property
    def n_people(self) -> int:
        return len(self.people)

    @classmethod
    def from_clip(cls, clip, data_root: str | os.PathLike, reference_frame: str | os.PathLike | None = None) -> "Item":
        """Build the item of a manifest ``Clip``; a missing track raises a one-line FileNotFoundError."""
        from interactive_eyes.data.paths import find_audio

        people = tuple(
            ItemPerson(
                role=p.role,
                audio=find_audio(data_root, p.audio),
                speaking=tuple(p.speaking),
                listening=tuple(p.listening),
            )
            for p in clip.people
        )
        return cls(
            clip_id=clip.id,
            duration=float(clip.duration),
            people=people,
            prompt=clip.prompt,
            reference_frame=Path(reference_frame) if reference_frame is not None else None,
        )


def frame_count(duration: float, fps: float) -> int:
    """round(fps * T) frames, halves rounded up (spec/baselines.md §5.4 step 3)."""
    return max(1, int(math.floor(duration * fps + 0.5)))


def load_tracks(item: Item):
    """Every person's track at a common rate and length: (array N x n x channels float32, rate).

    The rate is the tracks' own (the highest one if they differ; the others are resampled to it).
    Channels are kept when all tracks have the same count, else everything is downmixed to mono.
    Each track is zero-padded or cut to ``round(T * rate)`` samples, T = ``item.duration``.
    """
    import numpy as np

    from interactive_eyes.media.audio import load_audio

    rates = [_native_rate(p.audio) for p in item.people]
    rate = max(rates)
    tracks = [load_audio(p.audio, sample_rate=rate, mono=False) for p in item.people]
    if len({t.shape[1] for t in tracks}) > 1:
        tracks = [t.mean(axis=1, keepdims=True) for t in tracks]
    n = int(round(item.duration * rate))
    out = np.zeros((len(tracks), n, tracks[0].shape[1]), dtype=np.float32)
    for i, t in enumerate(tracks):
        m = min(n, t.shape[0])
        out[i, :m] = t[:m]
    return out, rate


def _native_rate(path: Path) -> int:
    """The sample rate from the container header (no decoding)."""
    import av

    from interactive_eyes.media.errors import MediaError

    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise MediaError(path, "no audio stream")
            s = c.streams.audio[0]
            return int(s.codec_context.sample_rate or s.rate)
    except av.error.FFmpegError as exc:
        raise MediaError(path, f"not a readable audio file ({exc.__class__.__name__})") from None


def mix_tracks(tracks):
    """The benchmark mix (§5.1 ``mix_wav``): the plain sum of the tracks, hard-limited to [-1, 1].

    Returns (mix n x channels float32, number of samples that had to be clipped). The released
    InteractiveEyes tracks are zero outside each person's turns, so the sum is the conversation
    and clipping only happens where both people talk loudly at once.
    """
    import numpy as np

    total = tracks.sum(axis=0, dtype=np.float64)
    clipped = int(np.count_nonzero(np.abs(total) > 1.0))
    return np.clip(total, -1.0, 1.0).astype(np.float32), clipped


def load_reference_frame(path: str | os.PathLike):
    """The reference image as RGB uint8, cut to even width and height (drops the last row/column).

    yuv420p video needs even sizes; cutting (not resizing) keeps the pixel grid identical to the
    reference, so the geometry from reference to output is the identity (§5.4 ``geometry.json``).
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from interactive_eyes.media.errors import MediaError

    p = Path(path)
    if not p.is_file():
        raise MediaError(p, "reference frame not found")
    try:
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise MediaError(p, f"not a readable image ({exc})") from None
    h, w = rgb.shape[:2]
    if h < 2 or w < 2:
        raise MediaError(p, f"image is {w}x{h}, too small")
    return np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2])


class Method:
    """Base class of every generation method; see the module docstring for the contract."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities]
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any):
        unknown = sorted(set(params) - set(self.DEFAULT_PARAMS))
        if unknown:
            known = ", ".join(sorted(self.DEFAULT_PARAMS)) or "none"
            raise ValueError(f"method {self.name!r}: unknown parameter {unknown[0]!r} (known: {known})")
        self._params = {**self.DEFAULT_PARAMS, **params}

    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "capabilities": self.capabilities.to_dict(),
            "params": self.params(),
        }

    def check(self, item: Item) -> str | None:
        """``None`` when this method can generate ``item``, else why not (one line).

        The generic part checks the capability descriptor: number of people, duration range,
        the reference frame, the offline files. Subclasses add their own (e.g. a face count).
        """
        cap = self.capabilities
        n = item.n_people
        if cap.max_people is not None and n > cap.max_people and not cap.silent_extra_people_ok:
            return f"{n} people, {self.name} handles at most {cap.max_people}"
        if cap.min_duration is not None and item.duration < cap.min_duration:
            return f"duration {item.duration:.2f} s is below {self.name}'s minimum {cap.min_duration:g} s"
        if cap.max_duration is not None and item.duration > cap.max_duration:
            return f"duration {item.duration:.2f} s is above {self.name}'s maximum {cap.max_duration:g} s"
        if cap.needs_reference_frame:
            if item.reference_frame is None:
                return "no reference frame given"
            if not Path(item.reference_frame).is_file():
                return f"{item.reference_frame}: reference frame not found"
        if cap.offline_files:
            from interactive_eyes.data.paths import cache_home

            for f in cap.offline_files:
                p = Path(f) if os.path.isabs(f) else cache_home() / f
                if not p.exists():
                    return f"{p}: required file missing (offline run)"
        return None

    def generate(self, item: Item, out_path: Path, *, seed: int) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__}.generate")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._params.items())})"
