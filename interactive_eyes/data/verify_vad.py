"""The speaking segments of a manifest against Silero VAD on each person's own track.

``check_segments_vad`` measures how well the annotated speaking segments match speech found by
Silero VAD on each person's own track (tracks are near-silent outside their person's turns,
so a turn boundary is a VAD boundary). Which boundaries count (``annotated_boundaries``):

* every start and every end of a speaking segment, except a start at t = 0: a person talking
  when the clip begins has no onset inside the clip, and the VAD's first onset there only says
  where the first syllable is;
* ends at the clip's end are counted (the VAD ends there too, at the end of the audio);
* a person who never speaks (released as ``[[0.0, 0.0]]``) has no boundaries.

On InteractiveEyes that gives 77 boundaries, the count in the release notes (SOURCE.md). Each
counts the distance to the nearest boundary (start or end) of the VAD's speech segments on the
same track. The segments are compared twice: as the manifest reads them (``seconds.frames``
timecodes at 30 fps) and as decimal seconds (the released scoring script's reading): the gap
between the two figures is the evidence for the timecode reading (docs/interactive_eyes.md).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from interactive_eyes.data.manifest import Benchmark, Clip, Person
from interactive_eyes.data.select import select_clips

# The annotations pass when the median boundary error is at most this (issue 2: "on the shared
# data the median must be <= 0.05 s"): one and a half 30 fps frames, while the decimal-seconds
# misreading of the same values sits near 0.4 s.
VAD_MEDIAN_TOLERANCE = 0.05
# Silero VAD runs at 16 kHz (its two supported rates are 8 and 16 kHz).
VAD_SAMPLE_RATE = 16000



def load_vad():
    """Silero VAD's bundled TorchScript model (the ``silero-vad`` wheel ships it; no download)."""
    from silero_vad import load_silero_vad

    with warnings.catch_warnings():
        # torch>=2.9 deprecates torch.jit.load, which silero-vad uses to load its bundled model
        warnings.simplefilter("ignore", FutureWarning)
        # silero-vad 6 locates its model with importlib.resources.path (deprecated, still works)
        warnings.simplefilter("ignore", DeprecationWarning)
        return load_silero_vad()


def detect_speech(path: str | os.PathLike, model=None) -> list[tuple[float, float]]:
    """Speech segments (seconds, at the VAD's own resolution) of one track, by Silero VAD.

    The track is decoded to 16 kHz mono (channel mean) by ``load_audio``; Silero runs with its
    default settings (threshold 0.5, 250 ms minimum speech, 100 ms minimum silence, 30 ms pad).
    Times are taken in samples and divided by the rate: ``return_seconds`` would round them to
    0.1 s, which is coarser than the errors being measured.
    """
    import torch
    from silero_vad import get_speech_timestamps

    from interactive_eyes.media.audio import load_audio

    model = model if model is not None else load_vad()
    audio = load_audio(path, VAD_SAMPLE_RATE)
    with torch.no_grad():
        stamps = get_speech_timestamps(torch.from_numpy(audio), model, sampling_rate=VAD_SAMPLE_RATE)
    return [(d["start"] / VAD_SAMPLE_RATE, d["end"] / VAD_SAMPLE_RATE) for d in stamps]


def annotated_boundaries(segments: Iterable[tuple[float, float]]) -> list[float]:
    """Turn boundaries of one person's speaking segments: every start and end except starts at 0.

    Empty segments (``[0.0, 0.0]``: never speaks) have none. See the module docstring for why.
    """
    out: list[float] = []
    for s, e in segments:
        if e <= s:
            continue
        if s > 0:
            out.append(float(s))
        out.append(float(e))
    return out


def boundary_errors(boundaries: Sequence[float], detected: Sequence[tuple[float, float]],
                    resolution: float | None = None) -> list[float]:
    """Distance from each annotated boundary to the nearest start or end of a detected segment.

    ``resolution``: round detected times to this step first (e.g. 0.1, what Silero's
    ``return_seconds`` gives) — only to compare with figures measured that way. A track with no
    detected speech gives ``inf`` for each boundary (it cannot match anything).
    """
    det = np.array([t for seg in detected for t in seg], dtype=np.float64)
    if resolution:
        det = np.round(det / resolution) * resolution
    if det.size == 0:
        return [math.inf for _ in boundaries]
    return [float(np.min(np.abs(det - b))) for b in boundaries]


def decimal_reading(person: Person) -> list[tuple[float, float]]:
    """The released values read as decimal seconds (what the released scoring script does)."""
    raw = person.speaking_raw if person.speaking_raw is not None else person.speaking
    return [(float(s), float(e)) for s, e in raw]


@dataclass(frozen=True)
class ClipVad:
    clip: str
    boundaries: int
    errors: tuple[float, ...]  # timecode reading (the manifest's seconds)
    errors_decimal: tuple[float, ...]  # released values read as decimal seconds


@dataclass(frozen=True)
class ErrorSummary:
    n: int
    median: float
    p90: float
    max: float

    @classmethod
    def of(cls, errors: Sequence[float]) -> "ErrorSummary":
        e = np.asarray(errors, dtype=np.float64)
        if e.size == 0:
            return cls(0, math.nan, math.nan, math.nan)
        return cls(int(e.size), float(np.median(e)), float(np.percentile(e, 90)), float(e.max()))


@dataclass
class VadReport:
    rows: list[ClipVad]
    tolerance: float = VAD_MEDIAN_TOLERANCE

    @property
    def summary(self) -> ErrorSummary:
        return ErrorSummary.of([x for r in self.rows for x in r.errors])

    @property
    def summary_decimal(self) -> ErrorSummary:
        return ErrorSummary.of([x for r in self.rows for x in r.errors_decimal])

    @property
    def ok(self) -> bool:
        s = self.summary
        return s.n > 0 and s.median <= self.tolerance


def detect_all(benchmark: Benchmark, root: str | os.PathLike, clips: Sequence[str] | None = None,
               model=None) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Silero VAD segments of every track: ``{(clip_id, role): [(start, end), ...]}`` (model loaded once)."""
    from interactive_eyes.data.paths import find_audio

    model = model if model is not None else load_vad()
    return {
        (clip.id, p.role): detect_speech(find_audio(root, p.audio), model)
        for clip in select_clips(benchmark, clips)
        for p in clip.people
    }


def check_segments_vad(
    benchmark: Benchmark,
    root: str | os.PathLike | None = None,
    clips: Sequence[str] | None = None,
    *,
    detections: dict[tuple[str, str], list[tuple[float, float]]] | None = None,
    resolution: float | None = None,
    tolerance: float = VAD_MEDIAN_TOLERANCE,
) -> VadReport:
    """Compare every clip's annotated turn boundaries with Silero VAD on each person's own track.

    ``detections``: precomputed ``detect_all`` output (else computed from ``root``).
    """
    if detections is None:
        if root is None:
            raise ValueError("check_segments_vad needs a data root or precomputed detections")
        detections = detect_all(benchmark, root, clips)
    rows = []
    for clip in select_clips(benchmark, clips):
        errs: list[float] = []
        errs_dec: list[float] = []
        n = 0
        for p in clip.people:
            det = detections[(clip.id, p.role)]
            b = annotated_boundaries(p.speaking)
            n += len(b)
            errs += boundary_errors(b, det, resolution)
            errs_dec += boundary_errors(annotated_boundaries(decimal_reading(p)), det, resolution)
        rows.append(ClipVad(clip.id, n, tuple(errs), tuple(errs_dec)))
    return VadReport(rows, tolerance)


# --------------------------------------------------------------------------- report
